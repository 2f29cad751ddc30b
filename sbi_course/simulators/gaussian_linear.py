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

from sbi_course._validation import (
    check_count,
    check_generator,
    check_memory,
    flatten_batch,
    paired_batches,
    single_observation,
    unflatten_batch,
)
from sbi_course.priors import GaussianPrior
from sbi_course.simulators._spec import SimulatorSpec

__all__ = [
    "theta_dim",
    "x_dim",
    "parameter_labels",
    "prior",
    "simulate",
    "log_likelihood",
    "posterior",
    "sample_posterior",
    "spec",
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
        theta: parameters (the mean), shape (*, 10): (N, 10), (10,) or any batch shape.
        generator: random number generator for the noise.

    Returns:
        Data ``x`` of shape (*, 10), the batch shape of ``theta``.
    """
    check_generator(generator, _NAME)
    theta, batch_shape = flatten_batch(theta, theta_dim, name="theta", owner=_NAME)
    noise = torch.randn(theta.shape, generator=generator, dtype=theta.dtype)
    x = theta + math.sqrt(NOISE_VARIANCE) * noise
    return unflatten_batch(x, batch_shape)


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    r"""Exact :math:`\log N(x;\, \theta, 0.1 I)`, shape (N,).

    Args:
        theta: parameters, shape (*, 10).
        x: data, shape (*, 10); the batch shapes must broadcast (equal, or one a single row).

    Returns:
        Log-likelihoods of the broadcast batch shape: (N,) for (N, 10) inputs, a scalar
        tensor when both inputs are (10,).

    Raises:
        ValueError: when the rows of ``theta`` and ``x`` do not pair up.
    """
    theta, x, batch_shape = paired_batches(
        theta, x, (theta_dim, x_dim), owner=f"{_NAME}.log_likelihood"
    )
    squared = ((x - theta) ** 2).sum(dim=-1)
    log_lik = -0.5 * squared / NOISE_VARIANCE - 0.5 * x_dim * math.log(2 * math.pi * NOISE_VARIANCE)
    return unflatten_batch(log_lik, batch_shape)


def posterior(x_o: Tensor) -> GaussianPrior:
    """The exact posterior :math:`p(\\theta \\mid x_o)` as a Gaussian distribution.

    Args:
        x_o: observed data, shape (10,) or (1, 10).

    Returns:
        A ``GaussianPrior`` (a ``MultivariateNormal`` whose ``sample`` takes a generator) with
        mean ``x_o / 2`` and covariance ``0.05 I``.
    """
    x_o = single_observation(x_o, x_dim, owner=f"{_NAME}.posterior")
    # Precisions add; the mean is the precision-weighted average of prior mean (0) and x_o.
    variance = 1.0 / (1.0 / PRIOR_VARIANCE + 1.0 / NOISE_VARIANCE)
    loc = variance * (x_o / NOISE_VARIANCE)
    covariance = variance * torch.eye(theta_dim, dtype=x_o.dtype)
    return GaussianPrior(loc=loc, covariance_matrix=covariance)


def sample_posterior(
    x_o: Tensor, num_samples: int, generator: torch.Generator | None = None
) -> Tensor:
    """Draw exact posterior samples, shape (num_samples, 10). See :func:`posterior`."""
    owner = f"{_NAME}.sample_posterior"
    check_generator(generator, owner)
    num_samples = check_count(num_samples, "num_samples", owner)
    check_memory(
        num_samples * theta_dim * torch.get_default_dtype().itemsize,
        what=f"{num_samples} posterior samples of {theta_dim} floats",
        owner=owner,
        argument="num_samples",
    )
    return posterior(x_o).sample((num_samples,), generator=generator)


spec = SimulatorSpec(
    name=_NAME,
    theta_dim=theta_dim,
    x_dim=x_dim,
    parameter_labels=parameter_labels,
    prior=prior,
    simulate=simulate,
    log_likelihood=log_likelihood,
    sample_posterior=sample_posterior,
)
