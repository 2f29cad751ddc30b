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
import numbers

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

from sbi_course._validation import check_count, check_generator

__all__ = [
    "BoxUniform",
    "GaussianPrior",
    "LogNormalPrior",
    "sample_prior",
    "in_support",
    "log_prob_in_support",
]


def _shape(sample_shape, owner: str) -> torch.Size:
    """``sample_shape`` as a ``torch.Size`` of non-negative integers (numpy integers too)."""
    if isinstance(sample_shape, numbers.Number):
        sample_shape = (sample_shape,)
    try:
        sizes = tuple(sample_shape)
    except TypeError:
        raise TypeError(
            f"sample_shape for {owner} must be a tuple of counts such as (1000,), got "
            f"{type(sample_shape).__name__}"
        ) from None
    return torch.Size(check_count(n, "sample_shape", owner, minimum=0) for n in sizes)


def _parameter(value, name: str, owner: str, *, ndim: int) -> Tensor:
    """A finite floating tensor with ``ndim`` dimensions, or a ValueError naming it."""
    try:
        value = torch.as_tensor(value, dtype=torch.get_default_dtype())
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{name} for {owner} must be a tensor: {error}") from None
    if value.ndim != ndim:
        shape = "(D,)" if ndim == 1 else "(D, D)"
        raise ValueError(f"{name} for {owner} must have shape {shape}, got {tuple(value.shape)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} for {owner} must be finite, got {value.tolist()}")
    return value


def _check_value(value: Tensor, dim: int, owner: str) -> Tensor:
    """``value`` of shape (*, dim) for ``log_prob``; a width mismatch is an error, not a
    broadcast."""
    value = torch.as_tensor(value)
    if value.ndim == 0 or value.shape[-1] != dim:
        raise ValueError(
            f"value for {owner}.log_prob must have shape (*, {dim}), got {tuple(value.shape)}"
        )
    return value


class BoxUniform(Independent):
    r"""Uniform prior on the box :math:`\prod_i [\mathrm{low}_i, \mathrm{high}_i]`.

    Args:
        low: lower bounds, shape (D,).
        high: upper bounds, shape (D,), each larger than ``low``.
    """

    def __init__(self, low: Tensor, high: Tensor, validate_args: bool | None = None):
        low = _parameter(low, "low", "BoxUniform", ndim=1)
        high = _parameter(high, "high", "BoxUniform", ndim=1)
        if low.shape != high.shape:
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
        check_generator(generator, "BoxUniform.sample")
        shape = _shape(sample_shape, "BoxUniform.sample") + self.low.shape
        u = torch.rand(shape, generator=generator, dtype=self.low.dtype)
        return self.low + (self.high - self.low) * u

    def log_prob(self, value: Tensor) -> Tensor:
        """Log-density, ``-inf`` outside the box (never raises for points outside).

        Args:
            value: points of shape (*, D); another width is an error, not a broadcast.
        """
        value = _check_value(value, self.low.shape[0], "BoxUniform")
        if not value.is_floating_point():
            value = value.to(self.low.dtype)
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

    def __init__(
        self,
        loc: Tensor,
        covariance_matrix: Tensor | None = None,
        precision_matrix: Tensor | None = None,
        scale_tril: Tensor | None = None,
        validate_args: bool | None = None,
    ):
        loc = _parameter(loc, "loc", "GaussianPrior", ndim=1)
        given = {
            name: _parameter(matrix, name, "GaussianPrior", ndim=2)
            for name, matrix in (
                ("covariance_matrix", covariance_matrix),
                ("precision_matrix", precision_matrix),
                ("scale_tril", scale_tril),
            )
            if matrix is not None
        }
        if len(given) != 1:
            raise ValueError(
                "GaussianPrior needs exactly one of covariance_matrix, precision_matrix and "
                f"scale_tril, got {len(given)}"
            )
        ((name, matrix),) = given.items()
        if matrix.shape != (loc.shape[0], loc.shape[0]):
            raise ValueError(
                f"{name} for GaussianPrior must have shape ({loc.shape[0]}, {loc.shape[0]}) "
                f"to match loc, got {tuple(matrix.shape)}"
            )
        try:
            super().__init__(loc, **given, validate_args=validate_args)
        except (ValueError, RuntimeError) as error:  # not positive definite
            raise ValueError(f"{name} for GaussianPrior is not valid: {error}") from None

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(GaussianPrior, _instance)
        return super().expand(batch_shape, _instance=new)

    def sample(self, sample_shape=torch.Size(), generator: torch.Generator | None = None) -> Tensor:
        """Draw samples of shape ``sample_shape + (D,)`` with an optional generator."""
        check_generator(generator, "GaussianPrior.sample")
        shape = _shape(sample_shape, "GaussianPrior.sample") + self.loc.shape
        eps = torch.randn(shape, generator=generator, dtype=self.loc.dtype)
        # scale_tril is the public Cholesky factor (torch's private one is not read here).
        return self.loc + (self.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, value: Tensor) -> Tensor:
        """Log-density of ``value`` of shape (*, D): ``-inf`` for infinite, NaN for NaN rows."""
        value = _check_value(value, self.loc.shape[0], "GaussianPrior")
        if value.numel() == 0:  # torch cannot reshape an empty batch
            return torch.zeros(value.shape[:-1], dtype=self.loc.dtype)
        # Infinite coordinates have density 0 (-inf); NaN rows give NaN, not a deep torch error.
        finite = torch.isfinite(value)
        log_prob = super().log_prob(torch.where(finite, value, torch.zeros_like(value)))
        log_prob = torch.where(finite.all(dim=-1), log_prob, -math.inf)
        return torch.where(value.isnan().any(dim=-1), math.nan, log_prob)


class LogNormalPrior(Independent):
    r"""Independent log-normal prior: :math:`\log \theta_i \sim N(\mu_i, \sigma_i^2)`.

    Args:
        mu: location of :math:`\log\theta`, shape (D,).
        sigma: scale of :math:`\log\theta`, shape (D,).
    """

    def __init__(self, mu: Tensor, sigma: Tensor, validate_args: bool | None = None):
        mu = _parameter(mu, "mu", "LogNormalPrior", ndim=1)
        sigma = torch.as_tensor(sigma, dtype=torch.get_default_dtype())
        if not torch.isfinite(sigma).all() or not (sigma > 0).all():
            raise ValueError(f"sigma for LogNormalPrior must be positive and finite, got {sigma}")
        try:
            sigma = sigma.expand_as(mu).clone()
        except RuntimeError:
            raise ValueError(
                f"sigma for LogNormalPrior must have the shape of mu {tuple(mu.shape)} (or be a "
                f"scalar), got {tuple(sigma.shape)}"
            ) from None
        super().__init__(LogNormal(mu, sigma, validate_args=False), 1, validate_args=validate_args)
        self.mu, self.sigma = mu, sigma

    def sample(self, sample_shape=torch.Size(), generator: torch.Generator | None = None) -> Tensor:
        """Draw samples of shape ``sample_shape + (D,)`` with an optional generator."""
        check_generator(generator, "LogNormalPrior.sample")
        shape = _shape(sample_shape, "LogNormalPrior.sample") + self.mu.shape
        eps = torch.randn(shape, generator=generator, dtype=self.mu.dtype)
        return torch.exp(self.mu + self.sigma * eps)

    def log_prob(self, value: Tensor) -> Tensor:
        """Log-density of ``value`` (*, D), ``-inf`` for non-positive values."""
        value = _check_value(value, self.mu.shape[0], "LogNormalPrior")
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

    Raises:
        ValueError: for a count that is not a positive integer.
        TypeError: for a generator that is not a ``torch.Generator``.
    """
    num_samples = check_count(num_samples, "num_samples", "sample_prior")
    check_generator(generator, "sample_prior")
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
