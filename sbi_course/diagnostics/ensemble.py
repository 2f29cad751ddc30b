r"""Ensemble posteriors: the equal-weight mixture of K independently trained estimators.

Train the same estimator K times (other seeds, other initialisations, possibly other
bootstrap resamples of the simulations) and average the densities,

.. math::
    q_{\mathrm{ens}}(\theta \mid x) = \sum_{k=1}^K w_k\, q_k(\theta \mid x),
    \qquad w_k = \tfrac1K .

Where the members agree the mixture is as sharp as each of them; where they disagree (little
training data, extrapolation far from the simulations) it is as wide as their spread. This is
why ensembles make neural posteriors *more conservative* (Hermans et al., 2022; Lakshminarayanan
et al., 2017): the spread between members is a measure of the estimator's own uncertainty,
which a single member ignores. An ensemble does not remove a bias that every member shares,
nor does it help when the simulator itself is wrong.

The mixture is a :class:`torch.distributions.Distribution` with ``sample(sample_shape,
generator=)`` and ``log_prob``, so every diagnostic of the course accepts it; an
:class:`Ensemble` of trained inference objects has ``posterior(x_o)`` like each of them.

Example:
    >>> import torch
    >>> from torch.distributions import Independent, Normal
    >>> class Gauss(Independent):  # a Normal whose sample takes a generator
    ...     def sample(self, sample_shape=torch.Size(), generator=None):
    ...         shape = torch.Size(sample_shape) + self.batch_shape + self.event_shape
    ...         noise = torch.randn(shape, generator=generator)
    ...         return self.base_dist.loc + self.base_dist.scale * noise
    >>> members = [Gauss(Normal(torch.full((2,), m), 1.0), 1) for m in (-1.0, 1.0)]
    >>> mixture = EnsemblePosterior(members)
    >>> mixture.sample((5,), generator=torch.Generator().manual_seed(0)).shape
    torch.Size([5, 2])

References:
    Lakshminarayanan, Pritzel & Blundell (2017), Simple and scalable predictive uncertainty
    estimation using deep ensembles, NeurIPS.
    Hermans, Delaunoy, Rozet, Wehenkel, Begy & Louppe (2022), A trust crisis in simulation-based
    inference? Your posterior approximations can be unfaithful, TMLR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from sbi_course._validation import check_generator
from sbi_course.diagnostics._draws import posterior_of

__all__ = ["EnsemblePosterior", "Ensemble"]


class EnsemblePosterior(Distribution):
    """Mixture of K posteriors for the same observation(s).

    Args:
        posteriors: K distributions with equal ``batch_shape`` and ``event_shape == (D,)``,
            each with ``sample(sample_shape, generator=)``; ``log_prob`` is needed only for
            :meth:`log_prob`.
        weights: mixture weights, shape (K,), non-negative (default: equal); normalised here.
    """

    arg_constraints: dict = {}
    support = constraints.real_vector

    def __init__(self, posteriors: Sequence[Any], weights: Tensor | None = None):
        posteriors = list(posteriors)
        if not posteriors:
            raise ValueError("EnsemblePosterior needs at least one posterior, got none")
        for k, member in enumerate(posteriors):
            if not callable(getattr(member, "sample", None)):
                raise TypeError(
                    f"EnsemblePosterior: member {k} has no sample method "
                    f"(got {type(member).__name__})"
                )
        if weights is None:
            weights = torch.full((len(posteriors),), 1.0 / len(posteriors))
        weights = torch.as_tensor(weights, dtype=torch.float64)
        if weights.shape != (len(posteriors),) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(
                f"EnsemblePosterior: weights must be non-negative with shape ({len(posteriors)},), "
                f"got {tuple(weights.shape)}"
            )
        self.posteriors = posteriors
        self.weights = weights / weights.sum()
        first = posteriors[0]
        batch_shape = getattr(first, "batch_shape", torch.Size())
        event_shape = getattr(first, "event_shape", torch.Size())
        super().__init__(batch_shape, event_shape, validate_args=False)

    @property
    def num_members(self) -> int:
        """K, the number of members."""
        return len(self.posteriors)

    def sample(
        self, sample_shape: torch.Size = torch.Size(), generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw from the mixture: a member chosen by weight for each draw, then its sample.

        Args:
            sample_shape: leading shape of the draws.
            generator: random generator for the member choice and the members' draws.

        Returns:
            Samples of shape ``sample_shape + batch_shape + (D,)``.
        """
        check_generator(generator, "EnsemblePosterior.sample")
        sample_shape = torch.Size(sample_shape)
        num = max(1, math.prod(sample_shape))
        # every member draws all num samples; one is kept per draw (simple, any batch shape)
        draws = [torch.as_tensor(m.sample((num,), generator=generator)) for m in self.posteriors]
        draws = torch.stack(draws)  # (K, num, *batch, D)
        choice_shape = draws.shape[1:-1]
        choice = torch.multinomial(
            self.weights.float(), math.prod(choice_shape), replacement=True, generator=generator
        ).reshape(choice_shape)
        index = choice.unsqueeze(0).unsqueeze(-1).expand(1, *draws.shape[1:])
        chosen = torch.gather(draws, 0, index)[0]
        return chosen.reshape(sample_shape + chosen.shape[1:])

    def log_prob(self, theta: Tensor) -> Tensor:
        r"""Mixture log-density :math:`\log \sum_k w_k q_k(\theta)`.

        Args:
            theta: parameters, shape (*, D), broadcast against ``batch_shape``.

        Returns:
            Log-densities of shape (*,) (broadcast with ``batch_shape``).
        """
        logs = []
        for k, member in enumerate(self.posteriors):
            if not callable(getattr(member, "log_prob", None)):
                raise TypeError(
                    f"EnsemblePosterior.log_prob: member {k} ({type(member).__name__}) has no "
                    "log_prob; an ensemble of unnormalised posteriors can only be sampled"
                )
            logs.append(torch.as_tensor(member.log_prob(theta)))
        logs = torch.stack(torch.broadcast_tensors(*logs))
        log_w = self.weights.log().to(logs.dtype).reshape(-1, *([1] * (logs.ndim - 1)))
        return torch.logsumexp(logs + log_w, dim=0)


class Ensemble:
    """K trained estimators used as one: ``posterior(x_o)`` is their :class:`EnsemblePosterior`.

    Args:
        members: K trained inference objects with ``posterior(x_o)`` (``NPE``, ...) or
            functions ``x_o -> posterior``.
        weights: mixture weights, shape (K,) (default: equal).
    """

    def __init__(self, members: Sequence[Any], weights: Tensor | None = None):
        members = list(members)
        if not members:
            raise ValueError("Ensemble needs at least one member, got none")
        self._factories = [posterior_of(m, "Ensemble") for m in members]
        self.members = members
        self.weights = weights

    def posterior(self, x_o: Tensor) -> EnsemblePosterior:
        """The mixture of the members' posteriors at ``x_o`` (shape (L,) or (M, L))."""
        return EnsemblePosterior([f(x_o) for f in self._factories], self.weights)

    def __call__(self, x_o: Tensor) -> EnsemblePosterior:
        return self.posterior(x_o)

    def __len__(self) -> int:
        return len(self.members)
