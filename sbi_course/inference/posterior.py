r"""The posteriors that the inference methods return are torch distributions.

Every posterior of the course is a :class:`torch.distributions.Distribution` over the
parameters (event shape (D,)), so it can stand where a prior or a proposal is expected:

* ``sample(sample_shape=torch.Size(), generator=None)``: draws of shape
  ``sample_shape + batch_shape + (D,)``;
* normalised posteriors (NPE) have ``log_prob(theta)``, broadcasting ``theta`` of shape
  ``(*, D)``;
* posteriors known up to a constant (NLE, NRE) are an :class:`UnnormalizedPosterior`: they
  have ``unnormalized_log_prob(theta)`` instead (named so that nobody mistakes it for a
  density) and sample by MCMC.

A posterior keeps its ``prior`` and the observation ``x_o`` it is conditioned on, and is
restricted to the prior's support (``support`` is the prior's).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

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


class Posterior(Distribution):
    """Base class of the course's posteriors: a torch distribution over the parameters.

    Args:
        prior: the prior, a distribution with event shape (D,).
        x_o: the observation, shape (L,) or (1, L) (or several, for batched posteriors).
        batch_shape: the posterior's batch shape (``()`` for one observation).

    Attributes:
        prior: the prior.
        x_o: the observation, shape (L,) (one observation given as (1, L) is flattened).
        theta_dim: D.

    Subclasses implement :meth:`sample` and :meth:`log_prob` (or, when known only up to a
    constant, ``unnormalized_log_prob``).
    """

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(self, prior: Distribution, x_o: Tensor, batch_shape=torch.Size()):
        self.prior = prior
        x_o = torch.as_tensor(x_o)
        self.x_o = x_o.reshape(-1) if x_o.ndim == 2 and x_o.shape[0] == 1 else x_o
        self.theta_dim = int(prior.event_shape[0]) if len(prior.event_shape) else 1
        super().__init__(torch.Size(batch_shape), torch.Size([self.theta_dim]), validate_args=False)

    @property
    def support(self):
        """The prior's support (a posterior puts no mass where the prior has none)."""
        try:
            return self.prior.support
        except NotImplementedError:
            return constraints.real_vector

    def sample(self, sample_shape=torch.Size(), generator: torch.Generator | None = None) -> Tensor:
        """Draw posterior samples of shape ``sample_shape + batch_shape + (D,)``."""
        raise NotImplementedError

    def log_prob(self, theta: Tensor) -> Tensor:
        """Posterior log-density of ``theta`` (N, D), shape (N,); ``-inf`` outside the prior."""
        raise NotImplementedError

    def _check_theta(self, theta: Tensor) -> Tensor:
        theta, _ = as_batch(theta, self.theta_dim, name="theta", owner=type(self).__name__)
        return theta

    def __repr__(self) -> str:
        return f"{type(self).__name__}(x_o={self.x_o.tolist()})"
