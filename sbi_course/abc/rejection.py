r"""Rejection ABC: keep the prior draws whose simulations land close to the observation.

Draw :math:`\theta_i \sim p(\theta)`, simulate :math:`x_i \sim p(x \mid \theta_i)`, compute
summaries :math:`s_i = S(x_i)` and :math:`s_o = S(x_o)`, and keep :math:`\theta_i` when
:math:`d(s_i, s_o) \le \epsilon`. The kept parameters are independent draws from the ABC
posterior

.. math::
    p_\epsilon(\theta \mid x_o) \propto p(\theta) \,
    P\big(d(S(x), S(x_o)) \le \epsilon \mid \theta\big),

which tends to the true posterior as :math:`\epsilon \to 0` when the summaries are
sufficient. Choosing :math:`\epsilon` trades bias (large :math:`\epsilon`) against variance
(few accepted draws). :func:`rejection_abc` lets you fix :math:`\epsilon`, or set it after the
fact as a quantile of the distances, or by the number of draws to keep.

The simulator is any callable ``simulator(theta, generator=...)`` mapping parameters (N, D)
to data (N, L); it must accept the ``generator`` keyword (every simulator of
:mod:`sbi_course.simulators` does). A simulation that fails returns a row of NaN: it counts
against the budget, is dropped, and is reported in ``num_failed``.

Example:
    >>> import torch
    >>> from sbi_course.priors import GaussianPrior
    >>> prior = GaussianPrior(torch.zeros(1), torch.eye(1))
    >>> def simulator(theta, generator=None):
    ...     return theta + 0.5 * torch.randn(theta.shape, generator=generator)
    >>> result = rejection_abc(prior, simulator, torch.tensor([1.0]), 10_000, quantile=0.05,
    ...                        generator=torch.Generator().manual_seed(0))
    >>> result.samples.shape
    torch.Size([500, 1])

References:
    Pritchard, J. K., Seielstad, M. T., Perez-Lezaun, A., & Feldman, M. W. (1999). Population
    growth of human Y chromosomes: a study of Y chromosome microsatellites. Molecular Biology
    and Evolution 16(12), 1791-1798.

    Sisson, S. A., Fan, Y., & Beaumont, M. A. (Eds.) (2018). Handbook of Approximate Bayesian
    Computation. CRC Press.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course._validation import check_count, check_generator, check_memory, single_observation
from sbi_course.abc.distances import Distance, check_distances, get_distance
from sbi_course.priors import sample_prior

__all__ = ["ABCResult", "rejection_abc"]

Simulator = Callable[..., Tensor]
Summary = Callable[[Tensor], Tensor]


@dataclass(repr=False)
class ABCResult:
    """Weighted samples from an ABC posterior, with what it cost to get them.

    Attributes:
        samples: accepted parameters, shape (M, D).
        weights: normalised importance weights, shape (M,), summing to 1 (uniform for
            rejection ABC).
        num_simulations: simulations spent, failed ones included.
        distances: distance of each accepted simulation to the observation, shape (M,).
        epsilon: the tolerance the samples satisfy (for a quantile or a number of accepted
            draws, the largest accepted distance).
        num_failed: simulations that returned NaN (dropped).
        x: summaries of the accepted simulations, shape (M, S); regression adjustment needs
            them.
        x_o: summary of the observation, shape (S,).
        method: ``"rejection"``, ``"smc"``, or with ``"+regression"`` after adjustment.
        info: method-specific extras (regression coefficients, ...).
    """

    samples: Tensor
    weights: Tensor
    num_simulations: int
    distances: Tensor
    epsilon: float
    num_failed: int = 0
    x: Tensor | None = None
    x_o: Tensor | None = None
    method: str = "rejection"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_accepted(self) -> int:
        """Number of samples M."""
        return int(self.samples.shape[0])

    @property
    def acceptance_rate(self) -> float:
        """Accepted samples per simulation spent."""
        return self.num_accepted / max(self.num_simulations, 1)

    @property
    def ess(self) -> float:
        r"""Effective sample size :math:`1 / \sum_i w_i^2` of the normalised weights."""
        return float(1.0 / (self.weights.double() ** 2).sum())

    def mean(self) -> Tensor:
        """Weighted posterior mean, shape (D,)."""
        return (self.weights[:, None] * self.samples).sum(0)

    def covariance(self) -> Tensor:
        """Weighted posterior covariance, shape (D, D)."""
        return weighted_covariance(self.samples, self.weights)

    def resample(self, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``num_samples`` parameters (num_samples, D) with replacement, by weight."""
        index = torch.multinomial(self.weights, num_samples, replacement=True, generator=generator)
        return self.samples[index]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(method={self.method!r}, samples={tuple(self.samples.shape)}, "
            f"num_simulations={self.num_simulations}, epsilon={self.epsilon:.4g}, "
            f"acceptance_rate={self.acceptance_rate:.3g}, ess={self.ess:.1f}, "
            f"num_failed={self.num_failed})"
        )


def rejection_abc(
    prior: Distribution,
    simulator: Simulator,
    x_o: Tensor,
    num_simulations: int,
    *,
    epsilon: float | None = None,
    quantile: float | None = None,
    num_accepted: int | None = None,
    distance: str | Distance = "euclidean",
    summary: Summary | None = None,
    batch_size: int = 10_000,
    generator: torch.Generator | None = None,
) -> ABCResult:
    r"""Rejection ABC with a fixed budget of simulations.

    Give exactly one acceptance criterion: ``epsilon`` (keep :math:`d \le \epsilon`),
    ``quantile`` (keep the closest fraction of the successful simulations) or
    ``num_accepted`` (keep the closest ``num_accepted``).

    Args:
        prior: prior with event shape (D,), e.g. from :mod:`sbi_course.priors`.
        simulator: ``simulator(theta (N, D), generator=...) -> x (N, L)``.
        x_o: the observation, shape (L,) (or (1, L)).
        num_simulations: how many simulations to run.
        epsilon: tolerance, > 0.
        quantile: fraction of simulations to keep, in (0, 1].
        num_accepted: number of simulations to keep.
        distance: ``"euclidean"``, ``"manhattan"``, ``"chebyshev"``, ``"mad"``/``"std"``
            (Euclidean on summaries scaled by the spread of all simulated summaries), or a
            callable ``(x (N, S), x_o (S,)) -> (N,)``.
        summary: optional summary statistics ``x (N, L) -> (N, S)`` (or (N,)), applied to the
            simulations and to ``x_o``.
        batch_size: most simulations per simulator call, to bound memory. It does not change
            the result (for any ``batch_size`` of at least :data:`SEED_BLOCK`): all parameters
            are drawn from the prior first, then each block of :data:`SEED_BLOCK` simulations
            runs with its own generator seeded from ``generator``. Only the summaries and
            parameters of all simulations are kept, shape (num_simulations, S + D).
        generator: random number generator for the prior and the simulator.

    Returns:
        An :class:`ABCResult` with uniform weights.

    Raises:
        ValueError: on no or several acceptance criteria, bad values, or an ``x_o`` whose
            shape does not match the simulations.
        MemoryError: when the parameters and summaries of all simulations would not fit (see
            :func:`sbi_course._validation.check_memory`); before anything is simulated.
        RuntimeError: when no simulation is accepted or too few succeed.
    """
    owner = "rejection_abc"
    criteria = {"epsilon": epsilon, "quantile": quantile, "num_accepted": num_accepted}
    given = [name for name, value in criteria.items() if value is not None]
    if len(given) != 1:
        raise ValueError(
            f"{owner} needs exactly one acceptance criterion of epsilon, quantile or "
            f"num_accepted, got {given or 'none'}"
        )
    num_simulations = check_count(num_simulations, "num_simulations", owner)
    batch_size = check_count(batch_size, "batch_size", owner)
    if epsilon is not None and not epsilon > 0:
        raise ValueError(f"epsilon for {owner} must be > 0, got {epsilon}")
    if quantile is not None and not 0 < quantile <= 1:
        raise ValueError(f"quantile for {owner} must be in (0, 1], got {quantile}")
    if num_accepted is not None:
        num_accepted = check_count(num_accepted, "num_accepted", owner)
        if num_accepted > num_simulations:
            raise ValueError(
                f"num_accepted={num_accepted} exceeds num_simulations={num_simulations} "
                f"for {owner}: the budget is too small"
            )
    check_generator(generator, owner)
    x_o = check_observation(x_o, owner)
    dim = prior.event_shape[0] if len(prior.event_shape) else 1
    check_memory(
        2 * num_simulations * (dim + x_o.shape[0]) * 4,
        what=f"{num_simulations} parameters and summaries (about {dim + x_o.shape[0]} floats each)",
        owner=owner,
        argument="num_simulations",
    )

    theta = sample_prior(prior, num_simulations, generator=generator)
    s = simulate_in_blocks(simulator, theta, summary, x_o, generator, batch_size)
    s_o = summarise_observation(summary, x_o, s, owner)

    # Failed simulations (NaN rows) cost budget but can be neither accepted nor rejected.
    ok = torch.isfinite(s).all(dim=-1)
    num_failed = int((~ok).sum())
    if not ok.any():
        raise RuntimeError(f"all {num_simulations} simulations of {owner} failed (NaN)")
    theta, s = theta[ok], s[ok]
    distance_fn = get_distance(distance, s)
    d = check_distances(distance_fn(s, s_o), s.shape[0], "for " + owner)
    d = torch.where(torch.isfinite(d), d, torch.full_like(d, math.inf))

    if epsilon is not None:
        keep = torch.nonzero(d <= epsilon).squeeze(-1)
        if keep.numel() == 0:
            raise RuntimeError(
                f"{owner} accepted none of {num_simulations} simulations at epsilon={epsilon:.4g}; "
                f"the smallest distance was {float(d.min()):.4g}. Increase epsilon or use quantile."
            )
        tolerance = float(epsilon)
    else:
        k = num_accepted if num_accepted is not None else math.ceil(quantile * d.shape[0])
        if k > d.shape[0]:
            raise RuntimeError(
                f"{owner} was asked for {k} accepted draws, but only {d.shape[0]} of "
                f"{num_simulations} simulations succeeded ({num_failed} returned NaN)"
            )
        keep = torch.argsort(d, stable=True)[:k]
        tolerance = float(d[keep].max())
        # Keep simulation order, so that the samples read like independent draws.
        keep = keep.sort().values

    samples = theta[keep]
    return ABCResult(
        samples=samples,
        weights=torch.full((samples.shape[0],), 1.0 / samples.shape[0], dtype=samples.dtype),
        num_simulations=num_simulations,
        distances=d[keep],
        epsilon=tolerance,
        num_failed=num_failed,
        x=s[keep],
        x_o=s_o,
        method="rejection",
        info={"distance": getattr(distance_fn, "__name__", str(distance))},
    )


# --- helpers shared with smc.py and regression.py ---------------------------------------


#: Simulations that share one generator; each block's generator is seeded from the caller's,
#: so that ``batch_size`` (a memory bound) does not change seeded results.
SEED_BLOCK = 1000


def simulate_in_blocks(
    simulator: Simulator,
    theta: Tensor,
    summary: Summary | None,
    x_o: Tensor,
    generator: torch.Generator | None,
    batch_size: int,
) -> Tensor:
    """Summaries (N, S) of ``theta`` (N, D), simulated block by block.

    One seed per block of :data:`SEED_BLOCK` rows is drawn from ``generator`` up front; block
    ``b`` is simulated with a fresh generator seeded with seed ``b``, in calls of at most
    ``batch_size`` rows. The numbers therefore do not depend on ``batch_size`` as long as it is
    at least :data:`SEED_BLOCK` (a smaller one splits a block into several calls that share its
    generator, which most simulators, but not all, turn into the same draws).
    """
    num_blocks = math.ceil(theta.shape[0] / SEED_BLOCK)
    seeds = torch.randint(0, 2**62, (num_blocks,), generator=generator).tolist()
    chunks = []
    for block, seed in zip(theta.split(SEED_BLOCK), seeds, strict=True):
        block_generator = torch.Generator().manual_seed(seed)
        for part in block.split(batch_size):
            chunks.append(simulate_summaries(simulator, part, summary, x_o, block_generator))
    return torch.cat(chunks)


def check_observation(x_o: Tensor, owner: str) -> Tensor:
    """The observation as a float tensor of shape (L,), or a ValueError."""
    x_o = torch.as_tensor(x_o)
    return single_observation(x_o, x_o.shape[-1] if x_o.ndim else 1, owner=owner)


def summarise_observation(summary: Summary | None, x_o: Tensor, s: Tensor, owner: str) -> Tensor:
    """The summary of ``x_o`` (S,), checked against simulated summaries ``s`` (N, S).

    Called after the first simulations, which have already checked that ``x_o`` has the
    simulator's shape (so a summary written for that shape does not fail on ``x_o``).
    """
    s_o = _summarise(summary, x_o[None], owner)[0].to(s.dtype)
    if s_o.shape[0] != s.shape[1]:
        raise ValueError(
            f"summary for {owner} returns {s.shape[1]} statistics for x but {s_o.shape[0]} for x_o"
        )
    if not torch.isfinite(s_o).all():
        raise ValueError(f"the summary of x_o for {owner} contains NaN or infinite values")
    return s_o


def simulate_summaries(
    simulator: Simulator,
    theta: Tensor,
    summary: Summary | None,
    x_o: Tensor,
    generator: torch.Generator | None,
) -> Tensor:
    """Simulate ``theta`` (N, D) and return summaries (N, S), NaN rows for failures.

    Raises a ValueError when the simulations do not have the shape of ``x_o`` (L,).
    """
    owner = getattr(simulator, "__name__", "the simulator")
    x = torch.as_tensor(simulator(theta, generator=generator))
    if x.ndim == 1 and x_o.shape[0] == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != theta.shape[0]:
        raise ValueError(
            f"{owner} must map theta of shape {tuple(theta.shape)} to x of shape "
            f"({theta.shape[0]}, L), got {tuple(x.shape)}"
        )
    if x.shape[1] != x_o.shape[0]:
        raise ValueError(
            f"x_o has shape {tuple(x_o.shape)} but {owner} returns x of shape "
            f"{tuple(x.shape)}: x_o must have shape ({x.shape[1]},)"
        )
    failed = ~torch.isfinite(x).all(dim=-1)
    s = _summarise(summary, x, owner)
    failed |= ~torch.isfinite(s).all(dim=-1)
    return torch.where(failed[:, None], torch.full_like(s, math.nan), s)


def _summarise(summary: Summary | None, x: Tensor, owner: str) -> Tensor:
    if summary is None:
        return x
    s = torch.as_tensor(summary(x))
    if not s.is_floating_point():
        s = s.to(torch.get_default_dtype())
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2 or s.shape[0] != x.shape[0]:
        raise ValueError(
            f"summary for {owner} must map x of shape {tuple(x.shape)} to "
            f"({x.shape[0]}, S), got {tuple(s.shape)}"
        )
    return s


def weighted_covariance(theta: Tensor, weights: Tensor) -> Tensor:
    """Covariance (D, D) of ``theta`` (M, D) under normalised ``weights`` (M,)."""
    centred = theta - (weights[:, None] * theta).sum(0)
    # Unbiased for importance weights: divide by 1 - sum w^2 (equals (M-1)/M for uniform).
    norm = (1.0 - (weights**2).sum()).clamp_min(torch.finfo(theta.dtype).eps)
    return (weights[:, None] * centred).T @ centred / norm
