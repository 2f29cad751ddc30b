r"""Bernoulli GLM: a neuron that spikes in response to a white-noise stimulus.

A generalised linear model of a neuron: in each of 100 time bins the neuron spikes with
probability :math:`\sigma(X_t \theta)`, where row :math:`X_t` of the design matrix holds a
constant 1 (for the offset :math:`\theta_1`) and the stimulus at lags 0..8 (for the 9-tap
filter :math:`\theta_{2..10}`):

.. math::

    y_t \sim \mathrm{Bernoulli}(\sigma(X_t \theta)), \quad t = 1..100, \qquad x = X^\top y.

The stimulus is fixed: ``numpy.random.RandomState(42).randn(100)`` in float32. The data are
the spike count and the spike-triggered sums of the stimulus at lags 0..8, which are the
sufficient statistics :math:`X^\top y` (sbibm computes the same numbers with
``conv1d(y, stimulus, padding=8)[-9:]``). Shapes: ``theta`` (N, 10) -> ``x`` (N, 10).

Prior: Gaussian with mean 0 and precision matrix :math:`B`, :math:`B_{11} = 0.5` for the
offset and :math:`F^\top F` for the filter, :math:`F = D D + \mathrm{diag}(\sqrt{i/9})`,
:math:`i = 0..8`, with :math:`D` the first-difference matrix: it favours smooth filters.

Because :math:`x` is sufficient, :math:`p(x \mid \theta) \propto \exp(\theta^\top x -
\sum_t \log(1 + e^{X_t\theta}))`: see :func:`log_likelihood`. This module follows sbibm's
``bernoulli_glm`` task to the letter, so sbibm's reference posteriors check it.

References:
    Lueckmann, Goncalves, Bassetto, Öcal, Nonnenmacher & Macke (2017). Flexible statistical
    inference for mechanistic models of neural dynamics. NeurIPS.

    Lueckmann et al. (2021). Benchmarking simulation-based inference. AISTATS.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor
from torch.nn.functional import softplus

from sbi_course._validation import as_batch, check_generator
from sbi_course.priors import GaussianPrior

__all__ = [
    "theta_dim",
    "x_dim",
    "parameter_labels",
    "prior",
    "prior_precision",
    "stimulus",
    "design_matrix",
    "simulate",
    "simulate_spikes",
    "summarize",
    "log_likelihood",
    "spike_log_likelihood",
]

theta_dim: int = 10
x_dim: int = 10
parameter_labels: tuple[str, ...] = ("offset",) + tuple(f"filter_{i}" for i in range(1, 10))

NUM_BINS = 100
FILTER_LENGTH = 9
STIMULUS_SEED = 42
_NAME = "bernoulli_glm"


@lru_cache(maxsize=1)
def _stimulus() -> Tensor:
    values = np.random.RandomState(STIMULUS_SEED).randn(NUM_BINS).astype(np.float32)
    return torch.from_numpy(values)


def stimulus() -> Tensor:
    """The fixed white-noise stimulus, shape (100,), float32 (starts 0.4967, -0.1383, ...)."""
    return _stimulus().clone()


@lru_cache(maxsize=1)
def _design_matrix() -> Tensor:
    s = _stimulus()
    X = torch.zeros(NUM_BINS, theta_dim)
    X[:, 0] = 1.0  # the offset
    for lag in range(FILTER_LENGTH):
        # Column 1 + lag holds the stimulus delayed by `lag` bins (zero before the start).
        X[lag:, 1 + lag] = s[: NUM_BINS - lag]
    return X


def design_matrix() -> Tensor:
    """The design matrix ``X``, shape (100, 10): ones, then the stimulus at lags 0..8."""
    return _design_matrix().clone()


def prior_precision() -> Tensor:
    """The prior's precision matrix ``B``, shape (10, 10)."""
    m = FILTER_LENGTH
    D = torch.eye(m) - torch.diag(torch.ones(m - 1), -1)  # first differences
    F = D @ D + torch.diag(torch.sqrt(torch.arange(m) / m))
    B = torch.zeros(theta_dim, theta_dim)
    B[0, 0] = 0.5
    B[1:, 1:] = F.T @ F
    return B


def prior() -> GaussianPrior:
    """Gaussian prior with mean 0 and precision :func:`prior_precision`."""
    return GaussianPrior(loc=torch.zeros(theta_dim), precision_matrix=prior_precision())


def simulate_spikes(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Simulate the raw spike trains.

    Args:
        theta: parameters (offset, 9 filter taps), shape (N, 10) or (10,).
        generator: random number generator for the spikes.

    Returns:
        Spike trains of 0.0 and 1.0, shape (N, 100) (or (100,) for unbatched input).
    """
    check_generator(generator, _NAME)
    theta, unbatched = as_batch(theta, theta_dim, name="theta", owner=_NAME)
    rate = torch.sigmoid(theta @ _design_matrix().to(theta.dtype).T)
    u = torch.rand(rate.shape, generator=generator, dtype=theta.dtype)
    spikes = (u < rate).to(theta.dtype)
    return spikes[0] if unbatched else spikes


def summarize(spikes: Tensor) -> Tensor:
    """Summary statistics ``X^T y``: spike count and stimulus sums at lags 0..8.

    Args:
        spikes: spike trains, shape (N, 100) or (100,).

    Returns:
        Summaries of shape (N, 10) (or (10,)).
    """
    spikes, unbatched = as_batch(spikes, NUM_BINS, name="spikes", owner=_NAME)
    x = spikes @ _design_matrix().to(spikes.dtype)
    return x[0] if unbatched else x


def simulate(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Simulate the 10 summary statistics.

    Args:
        theta: parameters (offset, 9 filter taps), shape (N, 10) or (10,).
        generator: random number generator for the spikes.

    Returns:
        Data ``x`` of shape (N, 10) (or (10,) for unbatched input): the spike count, then the
        stimulus summed over spike times at lags 0..8.
    """
    return summarize(simulate_spikes(theta, generator=generator))


def spike_log_likelihood(theta: Tensor, spikes: Tensor) -> Tensor:
    r"""Exact :math:`\log p(y \mid \theta) = \sum_t y_t \psi_t - \log(1 + e^{\psi_t})`,
    :math:`\psi = X\theta`, of raw spike trains, shape (N,).

    Args:
        theta: parameters, shape (N, 10) or (10,).
        spikes: spike trains, shape (N, 100) or (100,); a single train is broadcast.
    """
    theta, theta_unbatched = as_batch(theta, theta_dim, name="theta", owner=_NAME)
    spikes, s_unbatched = as_batch(spikes, NUM_BINS, name="spikes", owner=_NAME, dtype=theta.dtype)
    psi = theta @ _design_matrix().to(theta.dtype).T
    log_lik = (spikes * psi - softplus(psi)).sum(dim=-1)
    return log_lik[0] if (theta_unbatched and s_unbatched) else log_lik


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    r"""Log-likelihood of the summaries up to a constant: :math:`\theta^\top x -
    \sum_t \log(1 + e^{X_t \theta})`, shape (N,).

    Since :math:`y^\top X \theta = \theta^\top x`, every spike train with summary :math:`x` has
    this log-probability, and :math:`\log p(x \mid \theta)` adds only the log of their number,
    which does not depend on :math:`\theta`. So this is exact for posteriors and MCMC, and
    differences between two :math:`\theta` are exact likelihood ratios.

    Args:
        theta: parameters, shape (N, 10) or (10,).
        x: summaries, shape (N, 10) or (10,); a single ``x`` is broadcast against all ``theta``.
    """
    theta, theta_unbatched = as_batch(theta, theta_dim, name="theta", owner=_NAME)
    x, x_unbatched = as_batch(x, x_dim, name="x", owner=_NAME, dtype=theta.dtype)
    psi = theta @ _design_matrix().to(theta.dtype).T
    log_lik = (theta * x).sum(dim=-1) - softplus(psi).sum(dim=-1)
    return log_lik[0] if (theta_unbatched and x_unbatched) else log_lik
