r"""SLCP: a simple likelihood with a complex posterior.

Four independent draws from a 2-D Gaussian whose mean and covariance depend on
:math:`\theta \in \mathbb{R}^5`:

.. math::

    m = (\theta_1, \theta_2), \quad s_1 = \theta_3^2, \quad s_2 = \theta_4^2, \quad
    \rho = \tanh \theta_5, \quad
    S = \begin{pmatrix} s_1^2 & \rho s_1 s_2 \\ \rho s_1 s_2 & s_2^2 \end{pmatrix}
        + 10^{-6} I,

    x_j \sim N(m, S), \quad j = 1..4, \qquad x = (x_{1,1}, x_{1,2}, x_{2,1}, \dots, x_{4,2}).

Prior: uniform on :math:`[-3, 3]^5`. Shapes: ``theta`` (N, 5) -> ``x`` (N, 8), the four 2-D
draws one after the other; no units. The likelihood is a plain Gaussian, but the signs of
:math:`\theta_3` and :math:`\theta_4` are not identified, so the posterior has four modes.

This module follows sbibm's ``slcp`` task to the letter, so sbibm's reference posteriors
check it.

References:
    Papamakarios, Sterratt & Murray (2019). Sequential neural likelihood: fast
    likelihood-free inference with autoregressive flows. AISTATS.

    Lueckmann et al. (2021). Benchmarking simulation-based inference. AISTATS.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sbi_course._validation import (
    check_generator,
    flatten_batch,
    paired_batches,
    unflatten_batch,
)
from sbi_course.priors import BoxUniform
from sbi_course.simulators._spec import SimulatorSpec

__all__ = [
    "theta_dim",
    "x_dim",
    "parameter_labels",
    "prior",
    "simulate",
    "log_likelihood",
    "mean_and_covariance",
    "spec",
]

theta_dim: int = 5
x_dim: int = 8
parameter_labels: tuple[str, ...] = tuple(f"theta_{i}" for i in range(1, 6))

PRIOR_BOUND = 3.0
NUM_DRAWS = 4
JITTER = 1e-6  # added to the covariance diagonal so that it stays positive definite
_NAME = "slcp"


def prior() -> BoxUniform:
    """Uniform prior on :math:`[-3, 3]^5`."""
    return BoxUniform(low=-PRIOR_BOUND * torch.ones(5), high=PRIOR_BOUND * torch.ones(5))


def mean_and_covariance(theta: Tensor) -> tuple[Tensor, Tensor]:
    """The Gaussian's mean, shape (N, 2), and covariance, shape (N, 2, 2), for each row.

    Args:
        theta: parameters, shape (*, 5).

    Returns:
        ``(mean, cov)`` of shapes (*, 2) and (*, 2, 2).
    """
    theta, batch_shape = flatten_batch(theta, theta_dim, name="theta", owner=_NAME)
    mean = theta[:, :2]
    s1, s2 = theta[:, 2] ** 2, theta[:, 3] ** 2
    rho = torch.tanh(theta[:, 4])
    cov = torch.stack(
        (
            torch.stack((s1**2 + JITTER, rho * s1 * s2), dim=-1),
            torch.stack((rho * s1 * s2, s2**2 + JITTER), dim=-1),
        ),
        dim=-2,
    )
    return unflatten_batch(mean, batch_shape), unflatten_batch(cov, batch_shape)


def _cholesky(cov: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Entries ``(L11, L21, L22)`` of the 2x2 Cholesky factor, each of shape (N,).

    Written out by hand in float64: strongly correlated covariances (``|rho|`` near 1) would
    otherwise lose the small ``L22`` to rounding.
    """
    cov = cov.to(torch.float64)
    l11 = torch.sqrt(cov[:, 0, 0])
    l21 = cov[:, 1, 0] / l11
    l22 = torch.sqrt((cov[:, 1, 1] - l21**2).clamp_min(0.0))
    return l11, l21, l22


def simulate(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Simulate four 2-D Gaussian draws per parameter row, flattened.

    Args:
        theta: parameters, shape (*, 5): (N, 5), (5,) or any batch shape.
        generator: random number generator for the noise.

    Returns:
        Data ``x`` of shape (*, 8), the batch shape of ``theta``: draw ``j`` is
        ``x[..., 2 * j : 2 * j + 2]``.
    """
    check_generator(generator, _NAME)
    theta, batch_shape = flatten_batch(theta, theta_dim, name="theta", owner=_NAME)
    mean, cov = mean_and_covariance(theta)
    l11, l21, l22 = (v.to(theta.dtype)[:, None] for v in _cholesky(cov))
    eps = torch.randn(theta.shape[0], NUM_DRAWS, 2, generator=generator, dtype=theta.dtype)
    # x = m + L eps, with L lower triangular: one matrix-vector product per draw.
    first = mean[:, None, 0] + l11 * eps[..., 0]
    second = mean[:, None, 1] + l21 * eps[..., 0] + l22 * eps[..., 1]
    x = torch.stack((first, second), dim=-1).reshape(theta.shape[0], x_dim)
    return unflatten_batch(x, batch_shape)


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    r"""Exact :math:`\log p(x \mid \theta) = \sum_{j=1}^4 \log N(x_j; m, S)`, shape (N,).

    Args:
        theta: parameters, shape (*, 5).
        x: data, shape (*, 8); the batch shapes must broadcast (equal, or one a single row).

    Returns:
        Log-likelihoods of the broadcast batch shape: (N,) for (N, ...) inputs, a scalar
        tensor when both inputs are unbatched.

    Raises:
        ValueError: when the rows of ``theta`` and ``x`` do not pair up.
    """
    theta, x, batch_shape = paired_batches(
        theta, x, (theta_dim, x_dim), owner=f"{_NAME}.log_likelihood"
    )
    mean, cov = mean_and_covariance(theta)
    l11, l21, l22 = (v[:, None] for v in _cholesky(cov))
    draws = x.reshape(x.shape[0], NUM_DRAWS, 2).to(torch.float64)
    mean = mean.to(torch.float64)[:, None, :]
    # Whiten each draw with the Cholesky factor: e = L^{-1} (x_j - m).
    e1 = (draws[..., 0] - mean[..., 0]) / l11
    e2 = (draws[..., 1] - mean[..., 1] - l21 * e1) / l22
    log_det = torch.log(l11) + torch.log(l22)
    log_lik = (-0.5 * (e1**2 + e2**2) - log_det - math.log(2 * math.pi)).sum(dim=-1)
    return unflatten_batch(log_lik.to(theta.dtype), batch_shape)


spec = SimulatorSpec(
    name=_NAME,
    theta_dim=theta_dim,
    x_dim=x_dim,
    parameter_labels=parameter_labels,
    prior=prior,
    simulate=simulate,
    log_likelihood=log_likelihood,
    sample_posterior=None,
)
