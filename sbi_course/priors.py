r"""Prior distributions as ``torch.distributions`` with ``event_shape == (D,)``.

``torch.distributions`` draw from the global random number generator; the course passes an
explicit ``torch.Generator`` instead, so the priors here add an optional ``generator``
argument to :meth:`sample`. For any other distribution, :func:`sample_prior` falls back to
drawing inside a forked, seeded global RNG, so the same generator still gives the same
numbers.

Example:
    >>> import torch
    >>> prior = BoxUniform(low=-torch.ones(2), high=torch.ones(2))
    >>> prior.sample((5,), generator=torch.Generator().manual_seed(0)).shape
    torch.Size([5, 2])
    >>> prior.log_prob(torch.zeros(5, 2)).shape
    torch.Size([5])
"""

from __future__ import annotations

import inspect

import torch
from torch import Tensor
from torch.distributions import (
    Distribution,
    Independent,
    LogNormal,
    MultivariateNormal,
    Normal,
    Uniform,
)

__all__ = [
    "BoxUniform",
    "GaussianPrior",
    "LogNormalPrior",
    "sample_prior",
    "in_support",
]


def _shape(sample_shape) -> torch.Size:
    if isinstance(sample_shape, int):
        return torch.Size((sample_shape,))
    return torch.Size(sample_shape)


class BoxUniform(Independent):
    r"""Uniform prior on the box :math:`\prod_i [\mathrm{low}_i, \mathrm{high}_i]`.

    Args:
        low: lower bounds, shape (D,).
        high: upper bounds, shape (D,), each larger than ``low``.
    """

    def __init__(self, low: Tensor, high: Tensor, validate_args: bool | None = None):
        low = torch.as_tensor(low, dtype=torch.get_default_dtype())
        high = torch.as_tensor(high, dtype=torch.get_default_dtype())
        if low.ndim != 1 or low.shape != high.shape:
            raise ValueError(
                f"BoxUniform needs low and high of the same shape (D,), got "
                f"{tuple(low.shape)} and {tuple(high.shape)}"
            )
        if not (high > low).all():
            raise ValueError("BoxUniform needs high > low in every dimension")
        super().__init__(Uniform(low, high, validate_args=False), 1, validate_args=validate_args)
        self.low, self.high = low, high

    def sample(self, sample_shape=torch.Size(), generator: torch.Generator | None = None) -> Tensor:
        """Draw samples of shape ``sample_shape + (D,)`` with an optional generator."""
        shape = _shape(sample_shape) + self.low.shape
        u = torch.rand(shape, generator=generator, dtype=self.low.dtype)
        return self.low + (self.high - self.low) * u

    def log_prob(self, value: Tensor) -> Tensor:
        """Log-density, ``-inf`` outside the box (never raises for points outside)."""
        inside = ((value >= self.low) & (value <= self.high)).all(dim=-1)
        log_volume = torch.log(self.high - self.low).sum()
        out = torch.full(inside.shape, -float("inf"), dtype=value.dtype)
        out[inside] = -log_volume.to(value.dtype)
        return out


class GaussianPrior(MultivariateNormal):
    """Multivariate normal prior with a generator-aware :meth:`sample`.

    Args:
        loc: mean, shape (D,).
        covariance_matrix, precision_matrix, scale_tril: one of them, shape (D, D).
    """

    def sample(self, sample_shape=torch.Size(), generator: torch.Generator | None = None) -> Tensor:
        shape = _shape(sample_shape) + self.loc.shape
        eps = torch.randn(shape, generator=generator, dtype=self.loc.dtype)
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)


class LogNormalPrior(Independent):
    r"""Independent log-normal prior: :math:`\log \theta_i \sim N(\mu_i, \sigma_i^2)`.

    Args:
        mu: location of :math:`\log\theta`, shape (D,).
        sigma: scale of :math:`\log\theta`, shape (D,).
    """

    def __init__(self, mu: Tensor, sigma: Tensor, validate_args: bool | None = None):
        mu = torch.as_tensor(mu, dtype=torch.get_default_dtype())
        sigma = torch.as_tensor(sigma, dtype=torch.get_default_dtype()).expand_as(mu).clone()
        super().__init__(LogNormal(mu, sigma, validate_args=False), 1, validate_args=validate_args)
        self.mu, self.sigma = mu, sigma

    def sample(self, sample_shape=torch.Size(), generator: torch.Generator | None = None) -> Tensor:
        shape = _shape(sample_shape) + self.mu.shape
        eps = torch.randn(shape, generator=generator, dtype=self.mu.dtype)
        return torch.exp(self.mu + self.sigma * eps)

    def log_prob(self, value: Tensor) -> Tensor:
        """Log-density, ``-inf`` for non-positive values (never raises)."""
        positive = (value > 0).all(dim=-1)
        safe = torch.where(value > 0, value, torch.ones_like(value))
        lp = Normal(self.mu, self.sigma).log_prob(torch.log(safe)) - torch.log(safe)
        return torch.where(positive, lp.sum(-1), torch.full_like(lp[..., 0], -float("inf")))


def sample_prior(
    prior: Distribution, num_samples: int, generator: torch.Generator | None = None
) -> Tensor:
    """Draw ``(num_samples, D)`` parameters from any prior, reproducibly.

    Priors from this module take ``generator`` directly. For other ``torch.distributions``
    (for example the ``sbi`` library's ``BoxUniform``) the draw happens inside a forked global
    RNG seeded from ``generator``, so the global state is left untouched.
    """
    if generator is None:
        return prior.sample((num_samples,))
    if "generator" in inspect.signature(prior.sample).parameters:
        return prior.sample((num_samples,), generator=generator)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return prior.sample((num_samples,))


def in_support(prior: Distribution, theta: Tensor) -> Tensor:
    """Boolean mask of shape (N,): rows of ``theta`` where the prior density is positive."""
    with torch.no_grad():
        lp = prior.log_prob(theta)
    return torch.isfinite(lp)
