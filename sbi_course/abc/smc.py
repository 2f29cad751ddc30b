r"""Sequential Monte Carlo ABC (population Monte Carlo ABC) with adaptive tolerances.

Rejection ABC proposes from the prior, so at a small tolerance almost every simulation is
wasted. SMC-ABC proposes from the previous, coarser ABC posterior instead and shrinks the
tolerance round by round (Beaumont, Cornuet, Marin & Robert, 2009):

1. Round 0 is rejection ABC: simulate ``population_size / quantile`` prior draws and keep the
   closest ``population_size``, with equal weights.
2. Round t sets :math:`\epsilon_t` to the ``quantile`` of the previous population's
   (weighted) distances, then repeats until ``population_size`` particles are accepted: pick
   a particle :math:`\theta_j` with probability :math:`w_j`, perturb it with a Gaussian kernel
   :math:`K(\theta \mid \theta_j) = N(\theta; \theta_j, \Sigma)`,
   :math:`\Sigma = 2\,\mathrm{Cov}_w(\theta)` (twice the weighted covariance of the previous
   population), simulate, and accept when :math:`d \le \epsilon_t`.
3. Because the proposal is not the prior, each accepted particle gets the importance weight

   .. math::
       w_i \propto \frac{p(\theta_i)}{\sum_j w_j K(\theta_i \mid \theta_j)}.

4. When the effective sample size :math:`1 / \sum_i w_i^2` drops below
   ``ess_threshold * population_size``, the population is resampled (multinomially) to equal
   weights before it proposes the next round.

The budget ``num_simulations`` is hard: the last round stops when it is spent. Its accepted
particles are still a valid importance sample at its tolerance, so they become the final
population when they number at least half the population size; otherwise the last complete
population is returned (``info["last_round_complete"]`` says which happened, and
``info["num_simulations_discarded"]`` counts the simulations of a round so dropped).

Perturbations outside the prior's support have zero prior density and would get zero
weight, so they are rejected *before* simulating: they cost no simulation and are counted in
``info["num_outside_support"]``. Simulations that return NaN cost budget, are rejected and
are counted in ``num_failed``. Scaled distances (``"mad"``, ``"std"``) fix their scale once,
from the round-0 prior-predictive simulations.

References:
    Beaumont, M. A., Cornuet, J.-M., Marin, J.-M., & Robert, C. P. (2009). Adaptive
    approximate Bayesian computation. Biometrika 96(4), 983-990.

    Del Moral, P., Doucet, A., & Jasra, A. (2012). An adaptive sequential Monte Carlo method
    for approximate Bayesian computation. Statistics and Computing 22(5), 1009-1020.

    Sisson, S. A., Fan, Y., & Tanaka, M. M. (2007). Sequential Monte Carlo without
    likelihoods. PNAS 104(6), 1760-1765.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course._validation import check_count, check_generator
from sbi_course.abc.distances import Distance, check_distances, get_distance
from sbi_course.abc.rejection import (
    ABCResult,
    Simulator,
    Summary,
    check_observation,
    simulate_in_blocks,
    summarise_observation,
    weighted_covariance,
)
from sbi_course.priors import in_support, sample_prior

__all__ = ["SMCABCResult", "smc_abc"]

# An incomplete last round replaces the previous population only if it is this full.
_MIN_FINAL_FRACTION = 0.5
# Give up when this many proposal batches in a row all fall outside the prior.
_MAX_EMPTY_BATCHES = 1000


@dataclass(repr=False)
class SMCABCResult(ABCResult):
    """The final SMC-ABC population and the history of the run.

    Attributes (besides those of :class:`ABCResult`):
        epsilons: tolerance of each round, round 0 first (non-increasing).
        ess_history: effective sample size of each round's population.
        simulations_per_round: simulations spent in each round.
        acceptance_rates: accepted particles per simulation in each round.
        populations: ``(samples, weights)`` of each completed round, for plots.
    """

    epsilons: list[float] = field(default_factory=list)
    ess_history: list[float] = field(default_factory=list)
    simulations_per_round: list[int] = field(default_factory=list)
    acceptance_rates: list[float] = field(default_factory=list)
    populations: list[tuple[Tensor, Tensor]] = field(default_factory=list)

    @property
    def num_rounds(self) -> int:
        """Rounds run, round 0 included."""
        return len(self.epsilons)


def smc_abc(
    prior: Distribution,
    simulator: Simulator,
    x_o: Tensor,
    num_simulations: int,
    *,
    population_size: int = 1000,
    quantile: float = 0.5,
    distance: str | Distance = "euclidean",
    summary: Summary | None = None,
    ess_threshold: float = 0.5,
    kernel_scale: float = 2.0,
    max_rounds: int | None = None,
    batch_size: int = 10_000,
    generator: torch.Generator | None = None,
) -> SMCABCResult:
    r"""Population Monte Carlo ABC with adaptive tolerances and a hard simulation budget.

    Args:
        prior: prior with event shape (D,); ``log_prob`` must be ``-inf`` outside its support.
        simulator: ``simulator(theta (N, D), generator=...) -> x (N, L)``.
        x_o: the observation, shape (L,) (or (1, L)).
        num_simulations: the budget, never exceeded; at least
            ``ceil(population_size / quantile)`` for round 0.
        population_size: particles per population.
        quantile: each tolerance is this quantile of the previous population's distances,
            in (0, 1); smaller shrinks faster but accepts less.
        distance: as in :func:`rejection_abc`.
        summary: optional summary statistics ``x (N, L) -> (N, S)``.
        ess_threshold: resample when ESS < ``ess_threshold * population_size``; 0 never, 1
            always.
        kernel_scale: the perturbation covariance is ``kernel_scale`` times the weighted
            population covariance (2 in Beaumont et al., 2009).
        max_rounds: stop after this many rounds (round 0 included), even with budget left.
        batch_size: most simulations per simulator call, a memory bound that does not change
            the result for any ``batch_size`` of at least 1,000 (see
            :func:`~sbi_course.abc.rejection.simulate_in_blocks`).
        generator: random number generator for every draw.

    Returns:
        An :class:`SMCABCResult`: the final weighted population and the run's history.

    Raises:
        ValueError: on bad arguments, a budget too small for round 0, or a wrong ``x_o``.
        RuntimeError: when all round-0 simulations fail.
    """
    owner = "smc_abc"
    num_simulations, population_size, batch_size, max_rounds, num_initial = _check_settings(
        num_simulations,
        population_size,
        batch_size,
        quantile,
        ess_threshold,
        kernel_scale,
        max_rounds,
    )
    check_generator(generator, owner)
    x_o = check_observation(x_o, owner)

    def simulate(theta: Tensor) -> Tensor:
        return simulate_in_blocks(simulator, theta, summary, x_o, generator, batch_size)

    # Round 0: rejection ABC from the prior, keeping the closest population_size.
    theta = sample_prior(prior, num_initial, generator=generator)
    s = simulate(theta)
    ok = torch.isfinite(s).all(dim=-1)
    run = _Run(spent=num_initial, num_failed=int((~ok).sum()))
    if not ok.any():
        raise RuntimeError(f"all {num_initial} round-0 simulations of {owner} failed (NaN)")
    distance_fn = get_distance(distance, s[ok])
    s_o = summarise_observation(summary, x_o, s, owner)

    def distances(s: Tensor) -> Tensor:
        d = check_distances(distance_fn(s, s_o), s.shape[0], "for " + owner)
        return torch.where(torch.isfinite(d), d, torch.full_like(d, math.inf))

    d = distances(s)
    keep = torch.argsort(d, stable=True)[: min(population_size, int(ok.sum()))]
    theta, s, d = theta[keep], s[keep], d[keep]
    weights = torch.full((theta.shape[0],), 1.0 / theta.shape[0], dtype=torch.float64)
    history = {
        "epsilons": [float(d.max())],
        "ess_history": [_ess(weights)],
        "simulations_per_round": [num_initial],
        "acceptance_rates": [theta.shape[0] / num_initial],
        "populations": [(theta, weights.to(theta.dtype))],
    }
    last_round_complete = True
    scale_tril = None  # Cholesky factor of the last perturbation kernel, float64
    discarded = 0  # simulations of a last round too incomplete to use

    while run.spent < num_simulations and (
        max_rounds is None or len(history["epsilons"]) < max_rounds
    ):
        if _ess(weights) < ess_threshold * population_size:
            index = torch.multinomial(
                weights, theta.shape[0], replacement=True, generator=generator
            )
            theta, s, d = theta[index], s[index], d[index]
            weights = torch.full_like(weights, 1.0 / theta.shape[0])
        epsilon = _weighted_quantile(d, weights, quantile)
        scale_tril = _cholesky(kernel_scale * weighted_covariance(theta.double(), weights))
        kept, simulated = _propose_and_accept(
            prior,
            theta,
            weights,
            scale_tril,
            epsilon,
            population_size,
            num_simulations,
            quantile,
            simulate,
            distances,
            run,
            generator,
            owner,
        )
        num_accepted = kept[0].shape[0]
        if num_accepted < population_size:
            last_round_complete = False
            if num_accepted < _MIN_FINAL_FRACTION * population_size:
                discarded = simulated
                break  # too few to replace the last complete population
        # The first population_size accepted, in proposal order, are an unbiased choice.
        new_theta, s, d = (part[:population_size] for part in kept)
        weights = _importance_weights(prior, new_theta, theta, weights, scale_tril)
        theta = new_theta
        history["epsilons"].append(epsilon)
        history["ess_history"].append(_ess(weights))
        history["simulations_per_round"].append(simulated)
        history["acceptance_rates"].append(num_accepted / max(simulated, 1))
        history["populations"].append((theta, weights.to(theta.dtype)))
        if not last_round_complete:
            break

    return SMCABCResult(
        samples=theta,
        weights=weights.to(theta.dtype),
        num_simulations=run.spent,
        distances=d,
        epsilon=history["epsilons"][-1],
        num_failed=run.num_failed,
        x=s,
        x_o=s_o,
        method="smc",
        info={
            "num_outside_support": run.num_outside,
            "last_round_complete": last_round_complete,
            "num_simulations_discarded": discarded,
            "kernel_scale_tril": scale_tril,
        },
        **history,
    )


@dataclass
class _Run:
    """What a run has spent so far: simulations, failed ones, proposals outside the prior."""

    spent: int
    num_failed: int
    num_outside: int = 0


def _check_settings(
    num_simulations: int,
    population_size: int,
    batch_size: int,
    quantile: float,
    ess_threshold: float,
    kernel_scale: float,
    max_rounds: int | None,
) -> tuple[int, int, int, int | None, int]:
    """Validate :func:`smc_abc`'s settings; return the counts and round 0's simulations."""
    owner = "smc_abc"
    num_simulations = check_count(num_simulations, "num_simulations", owner)
    population_size = check_count(population_size, "population_size", owner)
    batch_size = check_count(batch_size, "batch_size", owner)
    if not 0 < quantile < 1:
        raise ValueError(f"quantile for {owner} must be in (0, 1), got {quantile}")
    if not 0 <= ess_threshold <= 1:
        raise ValueError(f"ess_threshold for {owner} must be in [0, 1], got {ess_threshold}")
    if not kernel_scale > 0:
        raise ValueError(f"kernel_scale for {owner} must be > 0, got {kernel_scale}")
    if max_rounds is not None:
        max_rounds = check_count(max_rounds, "max_rounds", owner)
    num_initial = math.ceil(population_size / quantile)
    if num_simulations < num_initial:
        raise ValueError(
            f"num_simulations={num_simulations} is too small for {owner}: round 0 alone "
            f"simulates population_size / quantile = {num_initial}"
        )
    return num_simulations, population_size, batch_size, max_rounds, num_initial


def _propose_and_accept(
    prior: Distribution,
    theta: Tensor,
    weights: Tensor,
    scale_tril: Tensor,
    epsilon: float,
    population_size: int,
    num_simulations: int,
    quantile: float,
    simulate,
    distances,
    run: _Run,
    generator: torch.Generator | None,
    owner: str,
) -> tuple[tuple[Tensor, Tensor, Tensor], int]:
    """One SMC round: perturb particles, simulate and accept until the population is full.

    Proposal batches are sized from the acceptance rate so far, so as to overshoot little,
    and never exceed the budget left. Updates ``run`` in place.

    Returns:
        ``((theta, s, d), simulated)``: the accepted particles in proposal order (possibly
        more than ``population_size``, or fewer when the budget ran out) and the simulations
        this round spent.
    """
    kept_theta: list[Tensor] = []
    kept_s: list[Tensor] = []
    kept_d: list[Tensor] = []
    num_accepted = simulated = empty_batches = 0
    while num_accepted < population_size and run.spent < num_simulations:
        rate = (num_accepted + 1) / (simulated + 2) if simulated else quantile
        need = math.ceil(1.2 * (population_size - num_accepted) / rate)
        n = min(need, num_simulations - run.spent)
        index = torch.multinomial(weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, theta.shape[1], generator=generator, dtype=torch.float64)
        proposal = (theta[index].double() + noise @ scale_tril.T).to(theta.dtype)
        inside = in_support(prior, proposal)
        run.num_outside += int((~inside).sum())
        proposal = proposal[inside]
        if proposal.shape[0] == 0:
            empty_batches += 1
            if empty_batches >= _MAX_EMPTY_BATCHES:
                raise RuntimeError(f"{owner}: every perturbation falls outside the prior")
            continue
        empty_batches = 0
        s_new = simulate(proposal)
        run.spent += proposal.shape[0]
        simulated += proposal.shape[0]
        run.num_failed += int((~torch.isfinite(s_new).all(dim=-1)).sum())
        d_new = distances(s_new)
        hit = d_new <= epsilon
        kept_theta.append(proposal[hit])
        kept_s.append(s_new[hit])
        kept_d.append(d_new[hit])
        num_accepted += int(hit.sum())
    if not kept_theta:
        empty = theta[:0]
        return (empty, empty.new_zeros(0, 0), empty.new_zeros(0)), simulated
    return (torch.cat(kept_theta), torch.cat(kept_s), torch.cat(kept_d)), simulated


def _ess(weights: Tensor) -> float:
    return float(1.0 / (weights**2).sum())


def _weighted_quantile(values: Tensor, weights: Tensor, q: float) -> float:
    """The smallest value whose weighted cumulative share reaches ``q``."""
    order = torch.argsort(values)
    cumulative = torch.cumsum(weights[order].double(), 0)
    position = int(torch.searchsorted(cumulative, torch.tensor([q], dtype=torch.float64)))
    return float(values[order][min(position, values.shape[0] - 1)])


def _cholesky(covariance: Tensor) -> Tensor:
    """Cholesky factor, adding jitter when the population is (nearly) degenerate."""
    jitter = 1e-10 * covariance.diagonal().mean().clamp_min(1e-12)
    eye = torch.eye(covariance.shape[0], dtype=covariance.dtype)
    for _ in range(10):
        factor, info = torch.linalg.cholesky_ex(covariance + jitter * eye)
        if int(info) == 0:
            return factor
        jitter *= 100
    raise RuntimeError("smc_abc: the population covariance is not positive definite")


def _importance_weights(
    prior: Distribution,
    theta: Tensor,
    previous: Tensor,
    previous_weights: Tensor,
    scale_tril: Tensor,
) -> Tensor:
    r"""Normalised :math:`w_i \propto p(\theta_i) / \sum_j w_j K(\theta_i \mid \theta_j)`."""
    log_prior = prior.log_prob(theta).double()
    kernel = torch.distributions.MultivariateNormal(
        torch.zeros(theta.shape[1], dtype=torch.float64), scale_tril=scale_tril
    )
    log_w_prev = previous_weights.log()
    log_proposal = []
    # Chunks of rows keep the (M, M) kernel matrix small in memory.
    for part in theta.double().split(max(1, 2_000_000 // previous.shape[0])):
        log_k = kernel.log_prob(part[:, None, :] - previous.double()[None, :, :])
        log_proposal.append(torch.logsumexp(log_k + log_w_prev, dim=1))
    log_weights = log_prior - torch.cat(log_proposal)
    return torch.softmax(log_weights, dim=0)
