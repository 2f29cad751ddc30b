r"""Gaussian linear: a 10-D Gaussian with unknown mean, the conjugate textbook case.

.. math::

    \theta \sim N(0,\; 0.1\, I_{10}), \qquad x \mid \theta \sim N(\theta,\; 0.1\, I_{10})

(both 0.1 are variances). Shapes: ``theta`` (N, 10) -> ``x`` (N, 10); no units.

Prior and likelihood are conjugate, so the posterior is Gaussian in closed form:

.. math::

    \Sigma_{post} = (\Sigma_0^{-1} + \Sigma^{-1})^{-1} = 0.05\, I, \qquad
    \mu_{post} = \Sigma_{post}(\Sigma^{-1} x_o + \Sigma_0^{-1}\mu_0) = x_o / 2.

This module follows sbibm's ``gaussian_linear`` task to the letter, so sbibm's reference
posteriors check it.

References:
    Lueckmann et al. (2021). Benchmarking simulation-based inference. AISTATS.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sbi_course._validation import as_batch, check_generator
from sbi_course.priors import GaussianPrior

__all__ = [
    "theta_dim",
    "x_dim",
    "parameter_labels",
    "prior",
    "simulate",
    "log_likelihood",
    "posterior",
    "sample_posterior",
]

theta_dim: int = 10
x_dim: int = 10
parameter_labels: tuple[str, ...] = tuple(f"theta_{i}" for i in range(1, 11))

PRIOR_VARIANCE = 0.1
NOISE_VARIANCE = 0.1
_NAME = "gaussian_linear"


def prior() -> GaussianPrior:
    """Gaussian prior :math:`N(0, 0.1 I)` on the 10-D mean."""
    return GaussianPrior(
        loc=torch.zeros(theta_dim), covariance_matrix=PRIOR_VARIANCE * torch.eye(10)
    )


def simulate(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Simulate ``x ~ N(theta, 0.1 I)``.

    Args:
        theta: parameters (the mean), shape (N, 10) or (10,).
        generator: random number generator for the noise.

    Returns:
        Data ``x`` of shape (N, 10), or (10,) for unbatched input.
    """
    check_generator(generator, _NAME)
    theta, unbatched = as_batch(theta, theta_dim, name="theta", owner=_NAME)
    noise = torch.randn(theta.shape, generator=generator, dtype=theta.dtype)
    x = theta + math.sqrt(NOISE_VARIANCE) * noise
    return x[0] if unbatched else x


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    r"""Exact :math:`\log N(x;\, \theta, 0.1 I)`, shape (N,).

    Args:
        theta: parameters, shape (N, 10) or (10,).
        x: data, shape (N, 10) or (10,); a single ``x`` is broadcast against all ``theta``.

    Returns:
        Log-likelihoods of shape (N,) (a scalar tensor when both inputs are unbatched).
    """
    theta, theta_unbatched = as_batch(theta, theta_dim, name="theta", owner=_NAME)
    x, x_unbatched = as_batch(x, x_dim, name="x", owner=_NAME, dtype=theta.dtype)
    squared = ((x - theta) ** 2).sum(dim=-1)
    log_lik = -0.5 * squared / NOISE_VARIANCE - 0.5 * x_dim * math.log(2 * math.pi * NOISE_VARIANCE)
    return log_lik[0] if (theta_unbatched and x_unbatched) else log_lik


def posterior(x_o: Tensor) -> GaussianPrior:
    """The exact posterior :math:`p(\\theta \\mid x_o)` as a Gaussian distribution.

    Args:
        x_o: observed data, shape (10,) or (1, 10).

    Returns:
        A ``GaussianPrior`` (a ``MultivariateNormal`` whose ``sample`` takes a generator) with
        mean ``x_o / 2`` and covariance ``0.05 I``.
    """
    x_o = _single_observation(x_o)
    # Precisions add; the mean is the precision-weighted average of prior mean (0) and x_o.
    variance = 1.0 / (1.0 / PRIOR_VARIANCE + 1.0 / NOISE_VARIANCE)
    loc = variance * (x_o / NOISE_VARIANCE)
    covariance = variance * torch.eye(theta_dim, dtype=x_o.dtype)
    return GaussianPrior(loc=loc, covariance_matrix=covariance)


def sample_posterior(
    x_o: Tensor, num_samples: int, generator: torch.Generator | None = None
) -> Tensor:
    """Draw exact posterior samples, shape (num_samples, 10). See :func:`posterior`."""
    check_generator(generator, _NAME)
    if num_samples < 1:
        raise ValueError(f"num_samples must be positive for {_NAME}, got {num_samples}")
    return posterior(x_o).sample((num_samples,), generator=generator)


def _single_observation(x_o: Tensor) -> Tensor:
    """Return ``x_o`` as shape (10,), accepting (10,) or (1, 10)."""
    x_o, _ = as_batch(x_o, x_dim, name="x_o", owner=_NAME)
    if x_o.shape[0] != 1:
        raise ValueError(
            f"x_o must be a single observation of shape (10,) or (1, 10) for {_NAME}, "
            f"got {tuple(x_o.shape)}"
        )
    return x_o[0]
