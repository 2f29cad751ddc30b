r"""Starting states for many MCMC chains: prior draws, the best of them, or SIR.

A single chain rarely crosses between well-separated modes, so with many chains the *share*
of chains per mode matters: sampling-importance-resampling of prior draws (the default)
already puts about the right share into each mode of a multimodal posterior.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course._validation import check_generator
from sbi_course.inference.mcmc_sampler import LogProbFn, _safe_log_prob
from sbi_course.priors import sample_prior

__all__ = ["initial_chains"]


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
    return candidates[_best_of_groups(log_weight, num_chains)]


def _best_of_groups(log_weight: Tensor, num_groups: int) -> Tensor:
    """Index of the highest weight in each of ``num_groups`` consecutive groups of candidates.

    Args:
        log_weight: log importance weights of the candidates, shape (K,), K >= ``num_groups``;
            a tail of fewer than ``num_groups`` candidates is left out.
        num_groups: number of groups C.

    Returns:
        Indices into the candidates, shape (C,). A group without any state of positive
        density falls back to the best state overall.
    """
    group_size = log_weight.shape[0] // num_groups
    groups = log_weight[: group_size * num_groups].reshape(num_groups, group_size)
    best = groups.argmax(dim=1) + group_size * torch.arange(num_groups)
    return torch.where(torch.isfinite(log_weight[best]), best, log_weight.argmax())
