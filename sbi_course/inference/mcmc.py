r"""Markov chain Monte Carlo with many chains in parallel, for NLE, NRE and reference posteriors.

NLE and NRE learn a likelihood or a likelihood-to-evidence ratio, so their posterior is only
known up to a constant,

.. math::
    p(\theta \mid x_o) \propto \exp(\text{potential}(\theta)), \qquad
    \text{potential}(\theta) = \log q(x_o \mid \theta) + \log p(\theta),

and samples come from MCMC. This module runs ``C`` chains at once: the target
``log_prob_fn`` maps a batch of states of shape (C, D) to log-densities of shape (C,), so one
call of a neural network advances every chain.

Two samplers:

* ``"slice"`` (default): slice sampling one direction at a time, with stepping out and
  shrinkage (Neal, 2003). It needs no step size and accepts every move. During warm-up it
  tunes the bracket width of each direction, and halfway through it turns from the coordinate
  axes to the principal axes of the chains' covariance, so that correlated posteriors mix fast.
* ``"mh"``: random-walk Metropolis-Hastings with a Gaussian proposal whose covariance is learnt
  from the chains during warm-up (adaptive Metropolis, Haario et al., 2001) and whose scale is
  tuned towards an acceptance rate of 0.234 (Roberts et al., 1997).

Chains start from the prior, from the best of many prior draws, or (default) by
sampling-importance-resampling (SIR) of prior draws, which already puts about the right share
of chains into each mode of a multimodal posterior. A single chain rarely crosses between
well-separated modes, so with many chains the *share* of chains per mode matters.

Convergence is checked with the split :math:`\hat R` (Gelman et al., 2013; near 1 when the
chains agree, above 1.01-1.1 when they do not) and the effective sample size
(Geyer's initial positive sequence).

Example:
    >>> import torch
    >>> log_prob = lambda theta: -0.5 * (theta**2).sum(-1)
    >>> g = torch.Generator().manual_seed(0)
    >>> result = run_mcmc(log_prob, torch.randn(20, 2, generator=g), 50, generator=g)
    >>> result.samples.shape
    torch.Size([1000, 2])

References:
    Neal (2003), Slice sampling, Annals of Statistics 31(3).
    Haario, Saksman & Tamminen (2001), An adaptive Metropolis algorithm, Bernoulli 7(2).
    Gelman, Carlin, Stern, Dunson, Vehtari & Rubin (2013), Bayesian Data Analysis, 3rd ed.,
    chapter 11 (split R-hat, effective sample size).
    Geyer (1992), Practical Markov chain Monte Carlo, Statistical Science 7(4).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.distributions import Distribution
from tqdm.auto import tqdm

from sbi_course._validation import as_batch, check_generator
from sbi_course.inference.posterior import Posterior, num_samples_from_shape
from sbi_course.priors import sample_prior

__all__ = [
    "MCMCResult",
    "run_mcmc",
    "initial_chains",
    "rhat",
    "effective_sample_size",
    "MCMCPosterior",
]

LogProbFn = Callable[[Tensor], Tensor]


@dataclass
class MCMCResult:
    """Chains and diagnostics of :func:`run_mcmc`.

    Attributes:
        chains: the kept states after warm-up and thinning, shape (C, S, D).
        log_prob: ``log_prob_fn`` at those states, shape (C, S).
        acceptance_rate: share of accepted proposals after warm-up (always 1.0 for slice
            sampling, which never rejects a move).
        evaluations_per_step: mean number of ``log_prob_fn`` evaluations per chain and step.
        method: ``"slice"`` or ``"mh"``.
    """

    chains: Tensor
    log_prob: Tensor
    acceptance_rate: float
    evaluations_per_step: float
    method: str

    @property
    def samples(self) -> Tensor:
        """All kept states, shape (C * S, D), ordered step by step across chains."""
        return self.chains.transpose(0, 1).reshape(-1, self.chains.shape[-1])

    @property
    def rhat(self) -> Tensor:
        """Split R-hat of every dimension, shape (D,)."""
        return rhat(self.chains)

    @property
    def ess(self) -> Tensor:
        """Effective sample size of every dimension, shape (D,)."""
        return effective_sample_size(self.chains)

    def __repr__(self) -> str:
        num_chains, num_steps, dim = self.chains.shape
        return (
            f"MCMCResult(method={self.method!r}, chains={num_chains}, steps={num_steps}, "
            f"dim={dim}, max R-hat={float(self.rhat.max()):.3f}, "
            f"min ESS={float(self.ess.min()):.0f}, acceptance={self.acceptance_rate:.2f})"
        )


def _safe_log_prob(log_prob_fn: LogProbFn, theta: Tensor) -> Tensor:
    """Evaluate the target without gradients; NaN counts as zero density (``-inf``)."""
    with torch.no_grad():
        value = log_prob_fn(theta).reshape(theta.shape[0]).to(theta.dtype)
    return torch.nan_to_num(value, nan=-math.inf, posinf=math.inf, neginf=-math.inf)


def initial_chains(
    log_prob_fn: LogProbFn,
    proposal: Distribution,
    num_chains: int,
    *,
    strategy: str = "sir",
    num_candidates: int = 10_000,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Starting states for ``num_chains`` chains, drawn from ``proposal`` (usually the prior).

    Strategies:

    * ``"prior"``: independent proposal draws (redrawn where the target is zero).
    * ``"sir"``: sampling-importance-resampling: draw ``num_candidates`` states, weigh each
      by :math:`w \propto \exp(\log p(\theta) - \log \text{proposal}(\theta))` and pick
      ``num_chains`` of them with probability proportional to :math:`w`. The chains start
      near the posterior, in each mode about in proportion to its mass.
    * ``"best"``: split the candidates into ``num_chains`` groups and start each chain at the
      candidate of highest weight in its group.

    Args:
        log_prob_fn: unnormalised target log-density, (C, D) -> (C,).
        proposal: a distribution with ``sample`` and ``log_prob`` (the prior).
        num_chains: number of chains C.
        strategy: ``"sir"``, ``"best"`` or ``"prior"``.
        num_candidates: proposal draws for ``"sir"`` and ``"best"`` (at least ``num_chains``).
        generator: random generator.

    Returns:
        Initial states, shape (C, D), each with finite target log-density.

    Raises:
        ValueError: on an unknown strategy, or when no candidate has a finite target density.
    """
    check_generator(generator, "initial_chains")
    if strategy not in ("sir", "best", "prior"):
        raise ValueError(f"strategy must be 'sir', 'best' or 'prior', got {strategy!r}")
    if num_chains < 1:
        raise ValueError(f"num_chains must be a positive integer, got {num_chains}")
    num_candidates = max(num_candidates, num_chains)
    if strategy == "prior":
        num_candidates = 10 * num_chains
    candidates = sample_prior(proposal, num_candidates, generator=generator)
    log_target = _safe_log_prob(log_prob_fn, candidates)
    if not torch.isfinite(log_target).any():
        raise ValueError(
            f"initial_chains: the target log-density is -inf or NaN at all {num_candidates} "
            "proposal draws; check the prior, the observation and the estimator"
        )
    finite = torch.isfinite(log_target)
    if strategy == "prior":
        # Keep proposal order (independent draws), skipping states of zero target density.
        good = candidates[finite]
        rows = torch.arange(num_chains) % good.shape[0]
        return good[rows]
    with torch.no_grad():
        log_weight = log_target - proposal.log_prob(candidates).to(log_target.dtype)
    log_weight = torch.where(finite, log_weight, torch.full_like(log_weight, -math.inf))
    if strategy == "sir":
        weight = torch.softmax(log_weight, dim=0)
        rows = torch.multinomial(weight, num_chains, replacement=True, generator=generator)
        return candidates[rows]
    group_size = num_candidates // num_chains
    groups = log_weight[: group_size * num_chains].reshape(num_chains, group_size)
    best = groups.argmax(dim=1) + group_size * torch.arange(num_chains)
    # A group without any state of positive density falls back to the best state overall.
    best = torch.where(torch.isfinite(log_weight[best]), best, log_weight.argmax())
    return candidates[best]


def _slice_sweep(
    log_prob_fn: LogProbFn,
    theta: Tensor,
    log_p: Tensor,
    directions: Tensor,
    width: Tensor,
    max_steps_out: int,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, int]:
    """One sweep of slice sampling along each row of ``directions``, for all chains at once.

    Along direction ``v`` the chain moves on the line ``theta + s v``; the current state is
    ``s = 0``. Stepping out and shrinkage follow Neal (2003), Figs. 3 and 5.
    """
    num_chains = theta.shape[0]
    theta, log_p = theta.clone(), log_p.clone()
    num_evaluations = 0

    def along(rows: Tensor, v: Tensor, s: Tensor) -> Tensor:
        nonlocal num_evaluations
        num_evaluations += rows.numel()
        return _safe_log_prob(log_prob_fn, theta[rows] + s[:, None] * v)

    def uniform(n: int) -> Tensor:
        return torch.rand(n, generator=generator, dtype=theta.dtype)

    for v, w in zip(directions, width, strict=True):
        # The slice {s : log p(theta + s v) > log_y}, under a uniform height below log p.
        log_y = log_p + torch.log(1.0 - uniform(num_chains))
        # A bracket [left, right] of the tuned width placed at random around s = 0 ...
        left = -w * uniform(num_chains)
        ends = torch.stack([left, left + w])  # (2, C): row 0 the left ends, row 1 the right
        # ... stepped out until both ends leave the slice (at most max_steps_out steps in all).
        # Both ends of all chains are tested in one call of log_prob_fn.
        steps_left = torch.floor(max_steps_out * uniform(num_chains))
        steps = torch.stack([steps_left, (max_steps_out - 1) - steps_left])
        direction = torch.tensor([-1.0, 1.0], dtype=theta.dtype)
        active = torch.nonzero(steps > 0)  # rows (end, chain)
        while active.numel() > 0:
            end, chain = active.unbind(1)
            inside = along(chain, v, ends[end, chain]) >= log_y[chain]
            end, chain = end[inside], chain[inside]
            ends[end, chain] += direction[end] * w
            steps[end, chain] -= 1
            more = steps[end, chain] > 0
            active = torch.stack([end[more], chain[more]], dim=1)
        left, right = ends[0], ends[1]
        # Shrinkage: draw uniformly in the bracket and shrink it towards s = 0 after each miss;
        # s = 0 is inside the slice, so this ends (the cap guards against round-off).
        active = torch.arange(num_chains)
        for _ in range(200):
            if active.numel() == 0:
                break
            s = left[active] + (right[active] - left[active]) * uniform(active.numel())
            trial_log_p = along(active, v, s)
            hit = trial_log_p >= log_y[active]
            done = active[hit]
            theta[done] = theta[done] + s[hit, None] * v
            log_p[done] = trial_log_p[hit]
            missed, s_missed = active[~hit], s[~hit]
            below = s_missed < 0
            left[missed[below]] = s_missed[below]
            right[missed[~below]] = s_missed[~below]
            active = missed
    return theta, log_p, num_evaluations


def _mh_step(
    log_prob_fn: LogProbFn,
    theta: Tensor,
    log_p: Tensor,
    scale_tril: Tensor,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """One random-walk Metropolis-Hastings step for every chain; returns the accept mask."""
    noise = torch.randn(theta.shape, generator=generator, dtype=theta.dtype)
    proposal = theta + noise @ scale_tril.T
    proposal_log_p = _safe_log_prob(log_prob_fn, proposal)
    # The Gaussian proposal is symmetric, so the acceptance ratio is the ratio of densities.
    log_u = torch.log(torch.rand(theta.shape[0], generator=generator, dtype=theta.dtype))
    accept = log_u < proposal_log_p - log_p
    theta = torch.where(accept[:, None], proposal, theta)
    log_p = torch.where(accept, proposal_log_p, log_p)
    return theta, log_p, accept


def _within_chain_covariance(history: Tensor) -> Tensor:
    """Mean over chains of each chain's sample covariance; history has shape (C, T, D).

    Pooling the states of all chains would mix modes (a multimodal posterior would get a huge
    proposal); the within-chain covariance describes the local shape each chain sees.
    """
    centred = history - history.mean(dim=1, keepdim=True)
    cov = torch.einsum("ctd,cte->de", centred, centred) / (
        history.shape[0] * max(history.shape[1] - 1, 1)
    )
    return cov


def run_mcmc(
    log_prob_fn: LogProbFn,
    initial_theta: Tensor,
    num_samples_per_chain: int,
    *,
    method: str = "slice",
    warmup_steps: int = 100,
    thin: int = 1,
    width: Tensor | float | None = None,
    max_steps_out: int = 10,
    generator: torch.Generator | None = None,
    show_progress: bool = False,
) -> MCMCResult:
    r"""Run ``C`` chains of slice sampling or adaptive Metropolis-Hastings in parallel.

    Args:
        log_prob_fn: unnormalised target log-density; maps states (C, D) to (C,). It is called
            without gradients; ``-inf`` (or NaN) marks states of zero density.
        initial_theta: starting states, shape (C, D), with finite log-density (see
            :func:`initial_chains`).
        num_samples_per_chain: states S kept per chain after warm-up and thinning.
        method: ``"slice"`` or ``"mh"``.
        warmup_steps: steps per chain discarded at the start, used to adapt the slice widths
            or the proposal covariance. With 40 or more, slice sampling switches halfway
            through warm-up from the coordinate axes to the principal axes of the chains'
            covariance, which helps a lot for correlated targets.
        thin: keep every ``thin``-th step after warm-up (reduces autocorrelation and memory).
        width: initial slice bracket width, a float or shape (D,) (default: twice the spread of
            the initial states, or 1). Tuned during warm-up.
        max_steps_out: the most steps a slice bracket is stepped out per coordinate.
        generator: random generator; the same seed gives the same chains.
        show_progress: show a tqdm progress bar over steps.

    Returns:
        An :class:`MCMCResult` with chains (C, S, D), their log-densities and diagnostics.

    Raises:
        ValueError: on bad settings or initial states of zero density.
    """
    check_generator(generator, "run_mcmc")
    if method not in ("slice", "mh"):
        raise ValueError(f"method must be 'slice' or 'mh', got {method!r}")
    for name, value, low in (
        ("num_samples_per_chain", num_samples_per_chain, 1),
        ("warmup_steps", warmup_steps, 0),
        ("thin", thin, 1),
        ("max_steps_out", max_steps_out, 1),
    ):
        if int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low} for run_mcmc, got {value}")
    initial_theta = torch.as_tensor(initial_theta)
    if initial_theta.ndim != 2:
        raise ValueError(
            f"initial_theta must have shape (num_chains, D) for run_mcmc, "
            f"got {tuple(initial_theta.shape)}"
        )
    theta, _ = as_batch(
        initial_theta, initial_theta.shape[1], name="initial_theta", owner="run_mcmc"
    )
    num_chains, dim = theta.shape
    log_p = _safe_log_prob(log_prob_fn, theta)
    if not torch.isfinite(log_p).all():
        bad = int((~torch.isfinite(log_p)).sum())
        raise ValueError(
            f"run_mcmc: {bad} of {num_chains} initial states have zero density (log_prob -inf "
            "or NaN); start from states inside the support (see initial_chains)"
        )

    # Slice directions start as the coordinate axes; the spread of the initial states gives a
    # first guess of the width along each.
    directions = torch.eye(dim, dtype=theta.dtype)
    if width is None:
        spread = 2.0 * theta.std(dim=0) if num_chains > 1 else torch.zeros(dim)
        width = torch.where(spread > 0, spread, torch.ones_like(spread)).to(theta)
    width = torch.as_tensor(width, dtype=theta.dtype).expand(dim).clone()
    # Metropolis-Hastings proposal: scale * chol(covariance), 2.38^2 / D is optimal for
    # Gaussian targets (Roberts et al., 1997).
    log_scale = math.log(2.38 / math.sqrt(dim))
    covariance = torch.diag(width**2 / 4)

    num_steps = warmup_steps + thin * num_samples_per_chain
    warmup_history, kept, kept_log_p = [], [], []
    mean_jump, num_jumps = torch.zeros(dim, dtype=theta.dtype), 0
    num_accepted, num_proposed, num_evaluations = 0, 0, 0
    for step in tqdm(range(num_steps), desc=f"MCMC ({method})", disable=not show_progress):
        warming_up = step < warmup_steps
        previous = theta
        if method == "slice":
            theta, log_p, evaluations = _slice_sweep(
                log_prob_fn, theta, log_p, directions, width, max_steps_out, generator
            )
            num_evaluations += evaluations
        else:
            scale_tril = math.exp(log_scale) * torch.linalg.cholesky(
                covariance + 1e-10 * torch.eye(dim, dtype=theta.dtype)
            )
            theta, log_p, accept = _mh_step(log_prob_fn, theta, log_p, scale_tril, generator)
            num_evaluations += num_chains
            if not warming_up:
                num_accepted += int(accept.sum())
                num_proposed += num_chains

        if warming_up:
            warmup_history.append(theta)
            # The within-chain covariance of the second quarter of warm-up on (and, for MH,
            # refreshed every 10 steps after that).
            refresh = step + 1 >= warmup_steps // 2 and (step + 1 - warmup_steps // 2) % 10 == 0
            if step + 1 >= 20 and (refresh if method == "mh" else step + 1 == warmup_steps // 2):
                recent = torch.stack(warmup_history[len(warmup_history) // 2 :], dim=1)
                covariance = _within_chain_covariance(recent)
            if method == "mh":
                # Robbins-Monro: nudge the scale towards an acceptance rate of 0.234.
                log_scale += (float(accept.float().mean()) - 0.234) / math.sqrt(step + 1)
            elif step + 1 == warmup_steps // 2 and step + 1 >= 20:
                # Halfway through warm-up, slice along the principal axes of the chains'
                # covariance: a correlated target is then explored much faster.
                eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
                if torch.isfinite(eigenvalues).all() and (eigenvalues > 0).all():
                    directions = eigenvectors.T.contiguous()
                    width = 2.5 * eigenvalues.sqrt()
                    mean_jump, num_jumps = torch.zeros_like(mean_jump), 0
            else:
                # A slice through a Gaussian is about 3 mean jumps wide: tune the width to it.
                jump = ((theta - previous) @ directions.T).abs().mean(dim=0)
                num_jumps += 1
                mean_jump += (jump - mean_jump) / num_jumps
                width = torch.where(mean_jump > 0, 3.0 * mean_jump, width)
        elif (step - warmup_steps + 1) % thin == 0:
            kept.append(theta)
            kept_log_p.append(log_p)

    if method == "slice":
        acceptance_rate = 1.0
    else:
        acceptance_rate = num_accepted / max(num_proposed, 1)
    return MCMCResult(
        chains=torch.stack(kept, dim=1),
        log_prob=torch.stack(kept_log_p, dim=1),
        acceptance_rate=acceptance_rate,
        evaluations_per_step=num_evaluations / (num_chains * num_steps),
        method=method,
    )


def _as_chains(chains: Tensor) -> Tensor:
    chains = torch.as_tensor(chains, dtype=torch.float64)
    if chains.ndim == 2:
        chains = chains.unsqueeze(-1)
    if chains.ndim != 3 or chains.shape[1] < 4:
        raise ValueError(
            f"chains must have shape (num_chains, num_steps, D) or (num_chains, num_steps) "
            f"with at least 4 steps, got {tuple(chains.shape)}"
        )
    return chains


def _split(chains: Tensor) -> Tensor:
    """Cut each chain into halves: (C, S, D) -> (2C, S // 2, D)."""
    half = chains.shape[1] // 2
    return torch.cat([chains[:, :half], chains[:, -half:]], dim=0)


def rhat(chains: Tensor) -> Tensor:
    r"""Split :math:`\hat R` of each dimension (Gelman et al., 2013, section 11.4).

    Each chain is cut in half, so that a chain that drifts also counts as disagreeing with
    itself. With ``m`` half-chains of length ``n``, within-chain variance ``W`` and
    between-chain variance ``B``,

    .. math::
        \hat R = \sqrt{\frac{(n - 1)/n \, W + B / n}{W}}.

    Values near 1 (below about 1.01 to 1.1) mean the chains agree; larger values mean they have
    not mixed (for example chains stuck in different modes).

    Args:
        chains: shape (C, S, D) or (C, S), at least 4 steps per chain.

    Returns:
        Split R-hat per dimension, shape (D,) (float64).
    """
    halves = _split(_as_chains(chains))
    n = halves.shape[1]
    chain_means = halves.mean(dim=1)
    within = halves.var(dim=1, unbiased=True).mean(dim=0)
    between = n * chain_means.var(dim=0, unbiased=True)
    pooled = (n - 1) / n * within + between / n
    return torch.sqrt(pooled / within)


def effective_sample_size(chains: Tensor) -> Tensor:
    r"""Effective sample size of each dimension across all chains (Gelman et al., 2013).

    Autocorrelations :math:`\rho_t` are estimated from the split chains together, and the
    integrated autocorrelation time :math:`\tau = -1 + 2 \sum_k (\rho_{2k} + \rho_{2k+1})` is
    summed while these pair sums stay positive (Geyer's initial positive sequence);
    ESS :math:`= m n / \tau`. It can exceed the number of samples (anti-correlated chains)
    and is unreliable for chains of only a few tens of steps.

    Args:
        chains: shape (C, S, D) or (C, S), at least 4 steps per chain.

    Returns:
        Effective sample size per dimension, shape (D,) (float64).
    """
    halves = _split(_as_chains(chains))
    m, n, _ = halves.shape
    centred = halves - halves.mean(dim=1, keepdim=True)
    # Autocovariance of every chain via FFT, zero-padded to avoid wrap-around.
    size = 2 ** math.ceil(math.log2(2 * n))
    spectrum = torch.fft.rfft(centred, n=size, dim=1)
    autocov = torch.fft.irfft(spectrum * spectrum.conj(), n=size, dim=1)[:, :n] / n
    within = halves.var(dim=1, unbiased=True).mean(dim=0)
    pooled = (n - 1) / n * within + halves.mean(dim=1).var(dim=0, unbiased=True)
    rho = 1.0 - (within - autocov.mean(dim=0)) / pooled  # (n, D)
    num_pairs = n // 2
    pairs = rho[: 2 * num_pairs].reshape(num_pairs, 2, -1).sum(dim=1)  # (n // 2, D)
    # Keep pair sums up to (not including) the first negative one.
    keep = torch.cumprod((pairs > 0).to(pairs.dtype), dim=0)
    tau = -1.0 + 2.0 * (pairs * keep).sum(dim=0)
    tau = torch.clamp(tau, min=1.0 / math.log10(max(m * n, 10)))
    return m * n / tau


class MCMCPosterior(Posterior):
    r"""A posterior known up to a constant, :math:`\log p(\theta \mid x_o) = \text{potential} + c`,
    sampled with :func:`run_mcmc`.

    NLE and NRE return this class. Each call of :meth:`sample` starts fresh chains (by
    ``init_strategy`` from the prior), runs ``warmup_steps`` steps, then keeps
    ``ceil(n / num_chains)`` states per chain (every ``thin``-th step). The last run's
    :class:`MCMCResult` (with R-hat and ESS) is kept in :attr:`mcmc_result`.

    Args:
        potential_fn: unnormalised log-posterior, (N, D) -> (N,), ``-inf`` outside the prior.
        prior: the prior (also the proposal of the initial states).
        x_o: the observation(s) the potential is conditioned on.
        num_chains: chains run in parallel.
        method: ``"slice"`` or ``"mh"`` (see :func:`run_mcmc`).
        warmup_steps: discarded steps per chain.
        thin: keep every ``thin``-th step.
        init_strategy: ``"sir"``, ``"best"`` or ``"prior"`` (see :func:`initial_chains`).
        num_init_candidates: prior draws for ``"sir"`` and ``"best"``.
        show_progress: show a progress bar while sampling.

    Attributes:
        mcmc_result: the :class:`MCMCResult` of the last :meth:`sample` call (``None`` before).
    """

    def __init__(
        self,
        potential_fn: LogProbFn,
        prior: Distribution,
        x_o: Tensor,
        *,
        num_chains: int = 100,
        method: str = "slice",
        warmup_steps: int = 50,
        thin: int = 1,
        init_strategy: str = "sir",
        num_init_candidates: int = 10_000,
        show_progress: bool = False,
    ):
        super().__init__(prior, x_o)
        if int(num_chains) != num_chains or num_chains < 1:
            raise ValueError(f"num_chains must be a positive integer, got {num_chains}")
        self.potential_fn = potential_fn
        self.num_chains = int(num_chains)
        self.method = method
        self.warmup_steps = warmup_steps
        self.thin = thin
        self.init_strategy = init_strategy
        self.num_init_candidates = num_init_candidates
        self.show_progress = show_progress
        self.mcmc_result: MCMCResult | None = None

    def sample(self, sample_shape=(1,), generator: torch.Generator | None = None) -> Tensor:
        """Draw ``sample_shape + (D,)`` posterior samples by MCMC (see the class docstring)."""
        check_generator(generator, f"{type(self).__name__}.sample")
        num_samples, shape = num_samples_from_shape(sample_shape, f"{type(self).__name__}.sample")
        if num_samples == 0:
            return torch.zeros(*shape, self.theta_dim)
        initial = initial_chains(
            self.potential_fn,
            self.prior,
            self.num_chains,
            strategy=self.init_strategy,
            num_candidates=self.num_init_candidates,
            generator=generator,
        )
        self.mcmc_result = run_mcmc(
            self.potential_fn,
            initial,
            math.ceil(num_samples / self.num_chains),
            method=self.method,
            warmup_steps=self.warmup_steps,
            thin=self.thin,
            generator=generator,
            show_progress=self.show_progress,
        )
        return self.mcmc_result.samples[:num_samples].reshape(*shape, self.theta_dim)

    def log_prob(self, theta: Tensor) -> Tensor:
        """The *unnormalised* log-posterior (the potential) of ``theta`` (N, D), shape (N,).

        It differs from the normalised log-density by an unknown constant: fine for comparing
        parameters (MCMC, HPD regions, coverage), not for absolute densities.
        """
        theta = self._check_theta(theta)
        with torch.no_grad():
            return self.potential_fn(theta)
