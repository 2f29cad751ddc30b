"""The posterior interface that every inference method of the course returns.

A posterior is conditioned on one observation ``x_o`` and offers

* ``sample(sample_shape, generator=None)``: draws of shape ``sample_shape + (D,)``;
* ``log_prob(theta)``: log-densities, shape (N,), for ``theta`` of shape (N, D);

plus the attributes ``prior`` and ``x_o``. NPE evaluates a flow directly; NLE and NRE combine
a learned likelihood or ratio with the prior and sample by MCMC.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course._validation import as_batch

__all__ = ["Posterior", "num_samples_from_shape", "check_observation"]


def num_samples_from_shape(sample_shape, owner: str) -> tuple[int, torch.Size]:
    """Turn ``(n,)``, ``n`` or ``(n, m, ...)`` into the total count and the shape."""
    shape = (
        torch.Size((sample_shape,)) if isinstance(sample_shape, int) else torch.Size(sample_shape)
    )
    if any(size < 0 for size in shape):
        raise ValueError(f"sample_shape for {owner} must be non-negative, got {tuple(shape)}")
    return math.prod(shape), shape


def check_observation(x_o: Tensor, x_dim: int, owner: str) -> Tensor:
    """Return a single observation as shape (1, x_dim), with a clear error otherwise."""
    x_o, _ = as_batch(x_o, x_dim, name="x_o", owner=owner)
    if x_o.shape[0] != 1:
        raise ValueError(
            f"x_o for {owner} must be one observation of shape ({x_dim},) or (1, {x_dim}), "
            f"got {x_o.shape[0]} rows; build one posterior per observation"
        )
    return x_o


class Posterior:
    """Base class of posteriors conditioned on one observation.

    Args:
        prior: the prior, a distribution with event shape (D,).
        x_o: the observation, shape (L,) or (1, L).

    Attributes:
        prior: the prior.
        x_o: the observation, shape (L,).
        theta_dim: D.

    Subclasses implement :meth:`sample` and :meth:`log_prob`.
    """

    def __init__(self, prior: Distribution, x_o: Tensor):
        self.prior = prior
        x_o = torch.as_tensor(x_o)
        self.x_o = x_o.reshape(-1) if x_o.ndim == 2 and x_o.shape[0] == 1 else x_o
        self.theta_dim = int(prior.event_shape[0]) if len(prior.event_shape) else 1

    def sample(self, sample_shape=(1,), generator: torch.Generator | None = None) -> Tensor:
        """Draw posterior samples of shape ``sample_shape + (D,)``."""
        raise NotImplementedError

    def log_prob(self, theta: Tensor) -> Tensor:
        """Posterior log-density of ``theta`` (N, D), shape (N,); ``-inf`` outside the prior."""
        raise NotImplementedError

    def _check_theta(self, theta: Tensor) -> Tensor:
        theta, _ = as_batch(theta, self.theta_dim, name="theta", owner=type(self).__name__)
        return theta

    def __repr__(self) -> str:
        return f"{type(self).__name__}(x_o={self.x_o.tolist()})"
