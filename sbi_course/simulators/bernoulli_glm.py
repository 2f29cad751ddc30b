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

from sbi_course._validation import (
    check_generator,
    flatten_batch,
    paired_batches,
    unflatten_batch,
)
from sbi_course.priors import GaussianPrior
from sbi_course.simulators._spec import SimulatorSpec

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
    "spec",
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
        theta: parameters (offset, 9 filter taps), shape (*, 10).
        generator: random number generator for the spikes.

    Returns:
        Spike trains of 0.0 and 1.0, shape (*, 100), the batch shape of ``theta``.
    """
    check_generator(generator, _NAME)
    theta, batch_shape = flatten_batch(theta, theta_dim, name="theta", owner=_NAME)
    rate = torch.sigmoid(theta @ _design_matrix().to(theta.dtype).T)
    u = torch.rand(rate.shape, generator=generator, dtype=theta.dtype)
    spikes = (u < rate).to(theta.dtype)
    return unflatten_batch(spikes, batch_shape)


def summarize(spikes: Tensor) -> Tensor:
    """Summary statistics ``X^T y``: spike count and stimulus sums at lags 0..8.

    Args:
        spikes: spike trains, shape (*, 100).

    Returns:
        Summaries of shape (*, 10).
    """
    spikes, batch_shape = flatten_batch(spikes, NUM_BINS, name="spikes", owner=_NAME)
    x = spikes @ _design_matrix().to(spikes.dtype)
    return unflatten_batch(x, batch_shape)


def simulate(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Simulate the 10 summary statistics.

    Args:
        theta: parameters (offset, 9 filter taps), shape (*, 10).
        generator: random number generator for the spikes.

    Returns:
        Data ``x`` of shape (*, 10), the batch shape of ``theta``: the spike count, then the
        stimulus summed over spike times at lags 0..8.
    """
    return summarize(simulate_spikes(theta, generator=generator))


def spike_log_likelihood(theta: Tensor, spikes: Tensor) -> Tensor:
    r"""Exact :math:`\log p(y \mid \theta) = \sum_t y_t \psi_t - \log(1 + e^{\psi_t})`,
    :math:`\psi = X\theta`, of raw spike trains, shape (N,).

    Args:
        theta: parameters, shape (*, 10).
        spikes: spike trains, shape (*, 100); the batch shapes must broadcast.
    """
    theta, spikes, batch_shape = paired_batches(
        theta,
        spikes,
        (theta_dim, NUM_BINS),
        names=("theta", "spikes"),
        owner=f"{_NAME}.spike_log_likelihood",
    )
    psi = theta @ _design_matrix().to(theta.dtype).T
    log_lik = (spikes * psi - softplus(psi)).sum(dim=-1)
    return unflatten_batch(log_lik, batch_shape)


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    r"""Log-likelihood of the summaries up to a constant: :math:`\theta^\top x -
    \sum_t \log(1 + e^{X_t \theta})`, shape (N,).

    Since :math:`y^\top X \theta = \theta^\top x`, every spike train with summary :math:`x` has
    this log-probability, and :math:`\log p(x \mid \theta)` adds only the log of their number,
    which does not depend on :math:`\theta`. So this is exact for posteriors and MCMC, and
    differences between two :math:`\theta` are exact likelihood ratios.

    Args:
        theta: parameters, shape (*, 10).
        x: summaries, shape (*, 10); the batch shapes must broadcast (equal, or one a single
            row).

    Returns:
        Log-likelihoods of the broadcast batch shape.

    Raises:
        ValueError: when the rows of ``theta`` and ``x`` do not pair up.
    """
    theta, x, batch_shape = paired_batches(
        theta, x, (theta_dim, x_dim), owner=f"{_NAME}.log_likelihood"
    )
    psi = theta @ _design_matrix().to(theta.dtype).T
    log_lik = (theta * x).sum(dim=-1) - softplus(psi).sum(dim=-1)
    return unflatten_batch(log_lik, batch_shape)


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
