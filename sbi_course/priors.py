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
import math

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
    "log_prob_in_support",
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
    """Boolean mask of shape ``theta.shape[:-1]``: where the prior density is positive.

    Works for any ``torch.distributions`` prior, including plain ones such as
    ``Independent(Uniform(lo, hi), 1)`` that validate their arguments: the prior's support is
    checked first and ``log_prob`` is evaluated only at points inside it (see
    :func:`log_prob_in_support`).
    """
    return log_prob_in_support(prior, theta)[0]


def _support_mask(prior: Distribution, theta: Tensor) -> Tensor:
    """Rows of ``theta`` (N, D) inside ``prior.support`` and free of NaN, shape (N,)."""
    inside = ~torch.isnan(theta).any(dim=-1)
    try:
        support = prior.support
    except NotImplementedError:
        return inside
    if support is None:
        return inside
    ok = support.check(theta)
    if ok.ndim == theta.ndim:  # an element-wise support: every coordinate must be inside
        ok = ok.all(dim=-1)
    return inside & ok


def log_prob_in_support(prior: Distribution, theta: Tensor) -> tuple[Tensor, Tensor]:
    """The prior's log-density, evaluated inside its support only, and where it is finite.

    This is where the course masks by the prior: posteriors of NPE, NLE and NRE all call it.
    A plain ``torch.distributions`` prior raises when ``log_prob`` sees a point outside its
    support, so the support is checked first (``prior.support.check``) and ``log_prob`` runs
    on the rows inside (on all rows at once when all are inside, which keeps the numbers of a
    single call).

    Args:
        prior: a distribution with event shape (D,).
        theta: parameters, shape (*, D).

    Returns:
        ``(inside, log_prob)``, both of shape ``theta.shape[:-1]``: a boolean mask of finite
        prior density, and the log-density (``-inf`` outside the support).
    """
    theta = torch.as_tensor(theta)
    batch_shape = theta.shape[:-1]
    flat = theta.reshape(-1, theta.shape[-1]) if theta.ndim else theta.reshape(1, 1)
    with torch.no_grad():
        candidates = _support_mask(prior, flat)
        if bool(candidates.all()):
            log_prob = prior.log_prob(flat)
        else:
            log_prob = torch.full(candidates.shape, -math.inf, dtype=flat.dtype)
            if bool(candidates.any()):
                log_prob[candidates] = prior.log_prob(flat[candidates]).to(log_prob.dtype)
    inside = torch.isfinite(log_prob)
    return inside.reshape(batch_shape), log_prob.reshape(batch_shape)
