r"""Truncated sequential neural posterior estimation (TSNPE; Deistler et al., 2022).

Amortised NPE spends its simulations all over the prior. When only one observation
:math:`x_o` matters, later simulations can be spent where its posterior lives. Plain
sequential NPE draws them from the current posterior estimate, which biases the standard NPE
loss and needs a correction (lecture 5). TSNPE avoids the correction: it draws from the
**prior truncated** to the current estimate's highest-probability region,

.. math::

    \tilde p_r(\theta) \propto p(\theta)\, \mathbb{1}\big[q_{r-1}(\theta \mid x_o) \ge
    \tau_{r-1}\big],

where :math:`\tau_{r-1}` is the :math:`\epsilon` quantile of :math:`q_{r-1}(\theta \mid x_o)`
over samples of :math:`q_{r-1}` (the region holds :math:`1 - \epsilon` of its mass). Inside the
region the proposal is proportional to the prior, so for every :math:`x` with posterior
support inside the region the NPE minimiser is still the true posterior: the ordinary NPE loss
on all simulations so far is consistent at :math:`x_o` as long as the region contains the
true posterior's support. Each round: truncate, simulate, retrain a fresh estimator on all
pairs.

Sampling the truncated prior is rejection sampling from the prior, so it is cheap while the
region holds a reasonable share of the prior (the acceptance rate is reported per round).

References:
    Deistler, M., Goncalves, P. J. & Macke, J. H. (2022). Truncated proposals for scalable and
    hassle-free simulation-based inference. NeurIPS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course.inference.npe import NPE

__all__ = ["TSNPEResult", "truncated_sequential_npe"]


@dataclass
class TSNPEResult:
    """The last round's NPE and what happened in each round.

    Attributes:
        npe: the NPE trained in the last round on all simulations.
        theta, x: all simulated pairs, shapes (N, D) and (N, L), in the order simulated.
        rounds: per round, a dict with ``num_simulations`` (this round), ``acceptance_rate``
            (of the truncated-prior rejection sampler; 1.0 in round 1) and ``threshold`` (the
            log-density threshold used to truncate, ``-inf`` in round 1).
    """

    npe: NPE
    theta: Tensor
    x: Tensor
    rounds: list[dict[str, float]] = field(default_factory=list)


def _truncated_prior_sample(
    prior: Distribution,
    log_q: Callable[[Tensor], Tensor],
    threshold: float,
    num_samples: int,
    generator: torch.Generator | None,
    batch_size: int,
    max_proposals: int,
) -> tuple[Tensor, float]:
    accepted, proposed, kept = [], 0, 0
    while kept < num_samples:
        if proposed >= max_proposals:
            raise RuntimeError(
                f"truncated_sequential_npe: only {kept} of {num_samples} prior draws fell in the "
                f"truncated region after {proposed} proposals; use a smaller epsilon or fewer "
                "rounds"
            )
        candidates = prior.sample((batch_size,), generator=generator)
        with torch.no_grad():
            inside = log_q(candidates) >= threshold
        proposed += batch_size
        kept += int(inside.sum())
        accepted.append(candidates[inside])
    return torch.cat(accepted)[:num_samples], kept / proposed


def truncated_sequential_npe(
    prior: Distribution,
    simulator: Callable[..., Tensor],
    x_o: Tensor,
    simulations_per_round: list[int],
    *,
    density_estimator: str = "maf",
    estimator_kwargs: dict | None = None,
    train_kwargs: dict | None = None,
    epsilon: float = 1e-4,
    num_threshold_samples: int = 10_000,
    generator: torch.Generator | None = None,
    batch_size: int = 10_000,
    max_proposals: int = 10_000_000,
) -> TSNPEResult:
    """Run TSNPE for ``len(simulations_per_round)`` rounds and return the last estimator.

    Args:
        prior: the prior, with ``sample(shape, generator=...)``.
        simulator: ``simulator(theta, generator=...)`` mapping (N, D) to (N, L).
        x_o: the observation, shape (L,).
        simulations_per_round: simulations of each round, e.g. ``[1000, 1000, 1000]``.
        density_estimator: name passed to :class:`~sbi_course.inference.NPE`.
        estimator_kwargs: keyword arguments of :class:`~sbi_course.inference.NPE`.
        train_kwargs: keyword arguments of :meth:`NPE.train` (besides ``generator``).
        epsilon: mass of the current estimate left outside the truncated region.
        num_threshold_samples: estimate samples used to set the threshold.
        generator: the one random generator for simulations, training and sampling.
        batch_size: prior draws per rejection-sampling batch.
        max_proposals: give up (RuntimeError) after this many prior draws in one round.

    Returns:
        A :class:`TSNPEResult`.

    Raises:
        ValueError: on an empty or non-positive ``simulations_per_round`` or an ``epsilon``
            outside (0, 1).
    """
    rounds = list(simulations_per_round)
    if not rounds or any(int(n) < 1 for n in rounds):
        raise ValueError(
            "truncated_sequential_npe: simulations_per_round must be a non-empty list of "
            f"positive integers, got {simulations_per_round!r}"
        )
    if not 0.0 < epsilon < 1.0:
        raise ValueError(f"truncated_sequential_npe: epsilon must be in (0, 1), got {epsilon}")
    x_o = torch.as_tensor(x_o).reshape(-1)
    estimator_kwargs = dict(estimator_kwargs or {})
    train_kwargs = dict(train_kwargs or {})
    thetas: list[Tensor] = []
    xs: list[Tensor] = []
    info: list[dict[str, float]] = []
    npe: NPE | None = None
    for r, num in enumerate(rounds):
        if npe is None:
            theta = prior.sample((int(num),), generator=generator)
            rate, threshold = 1.0, float("-inf")
        else:
            estimator = npe.estimator

            def log_q(theta: Tensor, estimator=estimator) -> Tensor:
                return estimator.log_prob(theta, x_o.expand(len(theta), -1))

            with torch.no_grad():
                draws = npe.posterior(x_o).sample((num_threshold_samples,), generator=generator)
                threshold = float(torch.quantile(log_q(draws), epsilon))
            theta, rate = _truncated_prior_sample(
                prior, log_q, threshold, int(num), generator, batch_size, max_proposals
            )
        thetas.append(theta)
        xs.append(simulator(theta, generator=generator))
        npe = NPE(prior, density_estimator, **estimator_kwargs)
        npe.train(torch.cat(thetas), torch.cat(xs), generator=generator, **train_kwargs)
        info.append(
            {
                "round": r + 1,
                "num_simulations": int(num),
                "acceptance_rate": rate,
                "threshold": threshold,
            }
        )
    return TSNPEResult(npe=npe, theta=torch.cat(thetas), x=torch.cat(xs), rounds=info)
