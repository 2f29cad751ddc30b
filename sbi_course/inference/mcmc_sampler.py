r"""Slice sampling and adaptive Metropolis-Hastings, many chains in parallel.

The target ``log_prob_fn`` maps a batch of states of shape (C, D) to log-densities of shape
(C,), so one call of a neural network advances every chain (see
:mod:`~sbi_course.inference.mcmc` for the overview).

References:
    Neal (2003), Slice sampling, Annals of Statistics 31(3).
    Haario, Saksman & Tamminen (2001), An adaptive Metropolis algorithm, Bernoulli 7(2).
    Roberts, Gelman & Gilks (1997), Weak convergence and optimal scaling of random walk
    Metropolis algorithms, Annals of Applied Probability 7(1).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from sbi_course._validation import as_batch, check_generator
from sbi_course.inference.mcmc_diagnostics import MCMCResult

__all__ = ["run_mcmc"]

LogProbFn = Callable[[Tensor], Tensor]


def _safe_log_prob(log_prob_fn: LogProbFn, theta: Tensor) -> Tensor:
    """Evaluate the target without gradients; NaN counts as zero density (``-inf``)."""
    with torch.no_grad():
        value = log_prob_fn(theta).reshape(theta.shape[0]).to(theta.dtype)
    return torch.nan_to_num(value, nan=-math.inf, posinf=math.inf, neginf=-math.inf)


def _step_out(
    along: Callable[[Tensor, Tensor, Tensor], Tensor],
    v: Tensor,
    log_y: Tensor,
    w: Tensor,
    max_steps_out: int,
    uniform: Callable[[int], Tensor],
) -> tuple[Tensor, Tensor]:
    """A bracket ``[left, right]`` around ``s = 0`` on every chain's line, Neal (2003), Fig. 3.

    The bracket of width ``w`` is placed at random around ``s = 0``, then stepped out until
    both ends leave the slice ``{s : along(chains, v, s) > log_y}`` (at most
    ``max_steps_out`` steps in all). Both ends of all chains are tested in one call of
    ``along``.

    Args:
        along: ``(chains, v, s) -> log-density`` at ``theta[chains] + s v``, for chain
            indices and offsets of shape (M,).
        v: the direction, shape (D,).
        log_y: height of each chain's slice, shape (C,).
        w: bracket width along this direction (a scalar tensor).
        max_steps_out: the most steps per chain, both ends together.
        uniform: ``n -> U(0, 1)`` draws of shape (n,).

    Returns:
        The left and right ends, each of shape (C,).
    """
    num_chains = log_y.shape[0]
    left = -w * uniform(num_chains)
    ends = torch.stack([left, left + w])  # (2, C): row 0 the left ends, row 1 the right
    steps_left = torch.floor(max_steps_out * uniform(num_chains))
    steps = torch.stack([steps_left, (max_steps_out - 1) - steps_left])
    direction = torch.tensor([-1.0, 1.0], dtype=log_y.dtype)
    active = torch.nonzero(steps > 0)  # rows (end, chain)
    while active.numel() > 0:
        end, chain = active.unbind(1)
        inside = along(chain, v, ends[end, chain]) >= log_y[chain]
        end, chain = end[inside], chain[inside]
        ends[end, chain] += direction[end] * w
        steps[end, chain] -= 1
        more = steps[end, chain] > 0
        active = torch.stack([end[more], chain[more]], dim=1)
    return ends[0], ends[1]


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
        left, right = _step_out(along, v, log_y, w, max_steps_out, uniform)
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


def _recent_covariance(warmup_history: list[Tensor]) -> Tensor:
    """Within-chain covariance (D, D) of the second half of the warm-up states (C, D) so far."""
    recent = torch.stack(warmup_history[len(warmup_history) // 2 :], dim=1)
    return _within_chain_covariance(recent)


def _checked_start(
    log_prob_fn: LogProbFn,
    initial_theta: Tensor,
    method: str,
    num_samples_per_chain: int,
    warmup_steps: int,
    thin: int,
    max_steps_out: int,
) -> tuple[Tensor, Tensor]:
    """Check the settings of :func:`run_mcmc`; the initial states (C, D) and their log-density.

    Raises:
        ValueError: on bad settings or initial states of zero density.
    """
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
    return theta, log_p


class _SliceAxes:
    """The directions slice sampling steps along and the bracket width on each, tuned in warm-up.

    The directions start as the coordinate axes; the spread of the initial states gives a first
    guess of the width along each (or ``width`` when given).
    """

    def __init__(self, theta: Tensor, width: Tensor | float | None) -> None:
        num_chains, dim = theta.shape
        self.directions = torch.eye(dim, dtype=theta.dtype)
        if width is None:
            spread = 2.0 * theta.std(dim=0) if num_chains > 1 else torch.zeros(dim)
            width = torch.where(spread > 0, spread, torch.ones_like(spread)).to(theta)
        self.width = torch.as_tensor(width, dtype=theta.dtype).expand(dim).clone()
        self.mean_jump, self.num_jumps = torch.zeros(dim, dtype=theta.dtype), 0

    def rotate(self, covariance: Tensor) -> None:
        """Slice along the principal axes of ``covariance`` (D, D) from now on.

        A correlated target is then explored much faster. Left unchanged when the covariance
        is not positive definite.
        """
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        if torch.isfinite(eigenvalues).all() and (eigenvalues > 0).all():
            self.directions = eigenvectors.T.contiguous()
            self.width = 2.5 * eigenvalues.sqrt()
            self.mean_jump, self.num_jumps = torch.zeros_like(self.mean_jump), 0

    def record_jump(self, theta: Tensor, previous: Tensor) -> None:
        """Tune the width to the running mean jump along each direction (states of shape (C, D)).

        A slice through a Gaussian is about 3 mean jumps wide.
        """
        jump = ((theta - previous) @ self.directions.T).abs().mean(dim=0)
        self.num_jumps += 1
        self.mean_jump += (jump - self.mean_jump) / self.num_jumps
        self.width = torch.where(self.mean_jump > 0, 3.0 * self.mean_jump, self.width)


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
    theta, log_p = _checked_start(
        log_prob_fn, initial_theta, method, num_samples_per_chain, warmup_steps, thin, max_steps_out
    )
    num_chains, dim = theta.shape

    slice_axes = _SliceAxes(theta, width)
    # Metropolis-Hastings proposal: scale * chol(covariance), 2.38^2 / D is optimal for
    # Gaussian targets (Roberts et al., 1997).
    log_scale = math.log(2.38 / math.sqrt(dim))
    covariance = torch.diag(slice_axes.width**2 / 4)

    num_steps = warmup_steps + thin * num_samples_per_chain
    warmup_history, kept, kept_log_p = [], [], []
    num_accepted, num_proposed, num_evaluations = 0, 0, 0
    for step in tqdm(range(num_steps), desc=f"MCMC ({method})", disable=not show_progress):
        warming_up = step < warmup_steps
        previous = theta
        if method == "slice":
            theta, log_p, evaluations = _slice_sweep(
                log_prob_fn,
                theta,
                log_p,
                slice_axes.directions,
                slice_axes.width,
                max_steps_out,
                generator,
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
            # From halfway through warm-up on (at least 20 steps in), the covariance of the
            # second half of the warm-up states so far shapes the moves: MH refreshes it every
            # 10 steps, slice sampling turns to its principal axes once.
            halfway = warmup_steps // 2
            if method == "mh":
                if step + 1 >= max(20, halfway) and (step + 1 - halfway) % 10 == 0:
                    covariance = _recent_covariance(warmup_history)
                # Robbins-Monro: nudge the scale towards an acceptance rate of 0.234.
                log_scale += (float(accept.float().mean()) - 0.234) / math.sqrt(step + 1)
            elif step + 1 == halfway and step + 1 >= 20:
                slice_axes.rotate(_recent_covariance(warmup_history))
            else:
                slice_axes.record_jump(theta, previous)
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
