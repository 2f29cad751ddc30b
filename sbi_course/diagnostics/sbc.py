r"""Simulation-based calibration (SBC): are the posteriors right *on average*?

Draw :math:`\theta_i \sim p(\theta)` and :math:`x_i \sim p(x \mid \theta_i)`, then
:math:`L` posterior samples :math:`\theta_i^{(1)}, \dots, \theta_i^{(L)} \sim q(\theta \mid x_i)`.
If :math:`q` is the true posterior, :math:`\theta_i` is just one more draw from the same
distribution as the :math:`L` samples, so its rank

.. math::
    r_{i,d} = \#\{\ell : \theta^{(\ell)}_{i,d} < \theta_{i,d}\} \in \{0, \dots, L\}

is uniformly distributed, in every dimension :math:`d` (Talts et al., 2018). Departures have a
shape that says what is wrong:

* U shape (true values often below or above all samples): the posterior is too narrow,
  *overconfident*;
* hump in the middle: the posterior is too wide, *underconfident*;
* slope: the posterior is *biased* (shifted in one direction).

Uniform ranks are necessary, not sufficient: the prior itself used as "posterior" passes SBC.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> theta = torch.randn(200, 1, generator=g)
    >>> x = theta + torch.randn(200, 1, generator=g)
    >>> def exact(x_o, n, generator):  # N(x/2, 1/2) is the posterior of this model
    ...     return x_o / 2 + (0.5**0.5) * torch.randn(n, 1, generator=generator)
    >>> ranks = sbc_ranks(exact, theta, x, num_posterior_samples=100, generator=g)
    >>> ranks.shape
    torch.Size([200, 1])

References:
    Talts, Betancourt, Simpson, Vehtari & Gelman (2018), Validating Bayesian inference
    algorithms with simulation-based calibration, arXiv:1804.06788.
    Saeilynoja, Buerkner & Vehtari (2022), Graphical test for discrete uniformity and its
    applications in goodness-of-fit evaluation and multiple sample comparison, Statistics and
    Computing 32(32) (the simultaneous ECDF band).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from scipy import stats
from torch import Tensor
from tqdm.auto import tqdm

from sbi_course._validation import check_generator
from sbi_course.diagnostics._posteriors import (
    PosteriorSource,
    check_count,
    check_finite_samples,
    simulation_pairs,
)

__all__ = [
    "sbc_ranks",
    "sbc_uniformity",
    "SBCTest",
    "rank_ecdf",
    "ecdf_band",
    "discrete_rank_ecdf_band",
]


def sbc_ranks(
    posterior: Any,
    theta: Tensor,
    x: Tensor,
    num_posterior_samples: int = 100,
    generator: torch.Generator | None = None,
    show_progress: bool = False,
    *,
    batch_size: int | None = None,
) -> Tensor:
    """Rank of each true parameter among posterior samples, per dimension.

    Args:
        posterior: an inference object with ``posterior(x_o)`` (``NPE``, ``NLE``, ``NRE``), a
            function ``x_o -> posterior`` (anything with ``sample(shape, generator=)``), or a
            sampler ``(x_o, num_samples, generator) -> Tensor (num_samples, D)``.
        theta: true parameters drawn from the prior, shape (N, D).
        x: data simulated from them, shape (N, L). Rows with NaN or inf (failed simulations)
            are dropped with their theta, with a warning saying how many.
        num_posterior_samples: posterior draws L per observation (ranks lie in 0..L).
        generator: random generator for the posterior draws.
        show_progress: show a progress bar over the N observations.
        batch_size: sample the posteriors of this many observations in one call of an
            amortised posterior (``posterior(x[rows])`` with ``batch_shape == (rows,)``, as
            NPE gives) instead of one at a time: much faster, other random draws. ``None``
            (default): one observation at a time, the numbers of earlier versions.

    Returns:
        Integer ranks, shape (N, D) (fewer rows if some were dropped), each in
        ``0..num_posterior_samples``.

    Raises:
        ValueError: on a posterior that returns NaN or inf samples (naming the row of ``x``).
    """
    check_generator(generator, "sbc_ranks")
    num_samples = check_count(num_posterior_samples, "num_posterior_samples", "sbc_ranks")
    step = 1 if batch_size is None else check_count(batch_size, "batch_size", "sbc_ranks")
    theta, x, kept = simulation_pairs(theta, x, "sbc_ranks")
    source = PosteriorSource(posterior, "sbc_ranks")
    ranks = torch.empty(theta.shape, dtype=torch.long)
    for start in tqdm(range(0, theta.shape[0], step), desc="SBC", disable=not show_progress):
        rows = slice(start, start + step)
        samples, _ = source.samples(x[rows], num_samples, generator, batched=step > 1)
        samples = samples.reshape(num_samples, -1, theta.shape[1])
        check_finite_samples(samples, kept[rows], "sbc_ranks")
        ranks[rows] = (samples < theta[rows]).sum(dim=0)
    return ranks


class SBCTest(NamedTuple):
    """p-values of two uniformity tests of SBC ranks, one per dimension (numpy arrays (D,)).

    Small p-values (below 0.05 or, with many dimensions, 0.05 / D) flag miscalibration.
    """

    chi2_pvalue: np.ndarray
    ks_pvalue: np.ndarray


def sbc_uniformity(
    ranks: Tensor,
    num_posterior_samples: int,
    num_bins: int | None = None,
    generator: torch.Generator | None = None,
) -> SBCTest:
    r"""Test whether SBC ranks are uniform on ``0..num_posterior_samples``, per dimension.

    * Chi-squared test on a histogram of the ranks: ``num_bins`` bins (default: about N / 10,
      at most 20, so that each bin expects ten or more counts).
    * Kolmogorov-Smirnov test on :math:`u = (r + v) / (L + 1)` with :math:`v \sim U(0, 1)`:
      the jitter turns a uniform discrete rank into an exactly uniform number in (0, 1).

    Args:
        ranks: ranks from :func:`sbc_ranks`, shape (N, D) or (N,).
        num_posterior_samples: L, the number of posterior draws the ranks were computed with.
        num_bins: histogram bins of the chi-squared test.
        generator: random generator for the jitter of the KS test.

    Returns:
        An :class:`SBCTest` with ``chi2_pvalue`` and ``ks_pvalue``, arrays of shape (D,).
    """
    check_generator(generator, "sbc_uniformity")
    ranks = torch.as_tensor(ranks)
    ranks = ranks.unsqueeze(1) if ranks.ndim == 1 else ranks
    num_values = int(num_posterior_samples) + 1
    if ranks.ndim != 2 or ranks.min() < 0 or ranks.max() >= num_values:
        raise ValueError(
            f"ranks must have shape (N, D) with values in 0..{num_values - 1}, "
            f"got shape {tuple(ranks.shape)} and range {int(ranks.min())}..{int(ranks.max())}"
        )
    num_runs = ranks.shape[0]
    if num_bins is None:
        num_bins = int(np.clip(num_runs // 10, 2, 20))
    num_bins = min(num_bins, num_values)
    # Bin b holds the ranks r with floor(r * B / (L + 1)) == b; bins can differ in size by one
    # value, so the expected counts are proportional to the number of values in each bin.
    bin_of_value = np.arange(num_values) * num_bins // num_values
    expected = np.bincount(bin_of_value, minlength=num_bins) * num_runs / num_values
    jitter = torch.rand(ranks.shape, generator=generator, dtype=torch.float64)
    pit = ((ranks.double() + jitter) / num_values).numpy()
    chi2, ks = [], []
    for d in range(ranks.shape[1]):
        observed = np.bincount(bin_of_value[ranks[:, d].numpy()], minlength=num_bins)
        chi2.append(stats.chisquare(observed, expected).pvalue)
        ks.append(stats.kstest(pit[:, d], "uniform").pvalue)
    return SBCTest(np.asarray(chi2), np.asarray(ks))


def rank_ecdf(ranks: Tensor, num_posterior_samples: int, z: np.ndarray) -> np.ndarray:
    r"""Empirical CDF of the normalised ranks at points ``z``, unbiased for calibrated ranks.

    A rank :math:`r \in \{0, \dots, L\}` is discrete, so the plain ECDF of
    :math:`r / (L + 1)` lies above the diagonal by up to :math:`1 / (L + 1)` even for a
    perfect posterior. Instead each rank is spread uniformly over its cell,
    :math:`u = (r + v) / (L + 1)` with :math:`v \sim U(0, 1)` (exactly uniform for a
    calibrated posterior), and the jitter is averaged out: the value at :math:`z` is the mean
    of :math:`\min(\max(z (L + 1) - r, 0), 1)`. Its expectation is exactly :math:`z` for a
    calibrated posterior, and it is deterministic, so compare it with :func:`ecdf_band`.

    Args:
        ranks: shape (N, D) or (N,).
        num_posterior_samples: L.
        z: evaluation points in [0, 1], shape (K,).

    Returns:
        ECDF values, shape (K, D).
    """
    ranks = torch.as_tensor(ranks)
    ranks = ranks.unsqueeze(1) if ranks.ndim == 1 else ranks
    z = np.asarray(z, dtype=float)
    position = z[:, None, None] * (num_posterior_samples + 1) - ranks.double().numpy()[None]
    return np.clip(position, 0.0, 1.0).mean(axis=1)


def _band(
    simulated: np.ndarray, num_runs: int, z_simulated: np.ndarray, z: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    r"""The simultaneous band of Saeilynoja et al. (2022) from simulated uniform ECDF counts.

    ``simulated`` (S, K') holds the counts of S uniform samples at the points ``z_simulated``.
    Each count gets its two-sided binomial tail probability; the smallest per sample measures
    how extreme that ECDF is. The per-point level :math:`\gamma` is the ``1 - confidence``
    quantile of these, so that a uniform ECDF leaves the pointwise :math:`1 - \gamma` band
    somewhere with probability ``1 - confidence``.

    Returns:
        ``(lower, upper)``: ECDF values at ``z``, each of shape (K,).
    """
    lower_tail = stats.binom.cdf(simulated, num_runs, z_simulated)
    upper_tail = stats.binom.sf(simulated - 1, num_runs, z_simulated)
    smallest = np.minimum(2 * np.minimum(lower_tail, upper_tail), 1).min(axis=1)
    gamma = float(np.quantile(smallest, 1.0 - confidence))
    lower = stats.binom.ppf(gamma / 2, num_runs, z) / num_runs
    upper = stats.binom.ppf(1 - gamma / 2, num_runs, z) / num_runs
    return lower, upper


def ecdf_band(
    num_runs: int,
    num_points: int = 100,
    confidence: float = 0.95,
    simultaneous: bool = True,
    num_simulations: int = 1000,
    generator: torch.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Band that the ECDF of ``num_runs`` uniform values stays in with probability ``confidence``.

    At a point :math:`z` the ECDF of N uniform values is :math:`\mathrm{Binomial}(N, z) / N`.
    The *pointwise* band uses these binomial quantiles at each :math:`z`. Checking K points at
    once, some point leaves a pointwise band far more often than 5%; the *simultaneous* band
    (Saeilynoja et al., 2022) widens the per-point level :math:`\gamma` until uniform ECDFs,
    simulated ``num_simulations`` times, stay inside at all points with probability
    ``confidence``. This is the band for :func:`rank_ecdf` (jittered ranks);
    :func:`discrete_rank_ecdf_band` is the same construction for the ECDF of the integer ranks.

    Plot ``rank_ecdf(ranks, L, z)`` (or its difference to ``z``) inside ``[lower, upper]``.

    Args:
        num_runs: N, the number of SBC runs (rows of ``ranks``).
        num_points: K evaluation points :math:`z = 1/(K+1), \dots, K/(K+1)`.
        confidence: coverage of the band, for example 0.95.
        simultaneous: calibrate for all points jointly (default) or per point.
        num_simulations: simulated uniform ECDFs for the simultaneous band.
        generator: random generator for the simulations.

    Returns:
        ``(z, lower, upper)``, numpy arrays of shape (K,) with ECDF values.
    """
    check_generator(generator, "ecdf_band")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    z = np.arange(1, num_points + 1) / (num_points + 1)
    if not simultaneous:
        gamma = 1.0 - confidence
        lower = stats.binom.ppf(gamma / 2, num_runs, z) / num_runs
        upper = stats.binom.ppf(1 - gamma / 2, num_runs, z) / num_runs
        return z, lower, upper
    u = torch.rand(num_simulations, num_runs, generator=generator, dtype=torch.float64)
    counts = (u.numpy()[:, :, None] <= z[None, None, :]).sum(axis=1)  # (M, K)
    lower, upper = _band(counts, num_runs, z, z, confidence)
    return z, lower, upper


def discrete_rank_ecdf_band(
    num_runs: int,
    num_ranks: int,
    confidence: float = 0.99,
    num_points: int = 100,
    seed: int = 0,
    num_simulations: int = 1000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Simultaneous band for the ECDF of N uniform integer ranks on {0, ..., num_ranks - 1}.

    The construction of :func:`ecdf_band` (one shared implementation), with the simulated
    ECDFs those of ``num_simulations`` sets of uniform integer ranks, evaluated at the rank
    boundaries :math:`z = k / \text{num\_ranks}` (at most ``num_points + 1`` of them).

    Args:
        num_runs: N, the number of ranks.
        num_ranks: the number of possible rank values, L + 1.
        confidence: coverage of the band.
        num_points: the most evaluation points.
        seed: seed of the numpy generator of the simulations (the band is deterministic).
        num_simulations: simulated sets of ranks.

    Returns:
        ``(z, lower, upper)``: points in [0, 1] and the band of ECDF values, shape (K,).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    k = np.unique(np.round(np.linspace(0, num_ranks, min(num_points, num_ranks) + 1)).astype(int))
    z = k / num_ranks
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, num_ranks, size=(num_simulations, num_runs))
    offsets = (np.arange(num_simulations) * num_ranks)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=num_simulations * num_ranks)
    cumulative = np.concatenate(
        [
            np.zeros((num_simulations, 1)),
            np.cumsum(counts.reshape(num_simulations, num_ranks), axis=1),
        ],
        axis=1,
    )[:, k]
    inner = slice(1, -1)  # at z = 0 and z = 1 the ECDF is fixed
    lower, upper = _band(cumulative[:, inner], num_runs, z[inner], z, confidence)
    return z, lower, upper
