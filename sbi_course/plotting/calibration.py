r"""Plots of calibration diagnostics: SBC rank histograms, ECDF differences, coverage.

Simulation-based calibration (SBC) draws :math:`\theta^* \sim p(\theta)`,
:math:`x \sim p(x \mid \theta^*)` and L posterior samples given x, and records the rank of
:math:`\theta^*` among them. For a calibrated posterior the rank is uniform on
:math:`\{0, \dots, L\}`. The histogram shows the ranks with the band that the counts of a
uniform rank would fall into (Talts et al., 2018); the ECDF-difference view shows
:math:`F_N(z) - z` with a simultaneous band, which catches small but systematic deviations
that histograms hide (Säilynoja et al., 2022). Typical shapes:

* overconfident (too narrow) posterior: a U-shaped histogram; the ECDF difference rises
  above zero, then falls below it;
* underconfident (too wide): a hump in the middle; the ECDF difference dips, then rises;
* biased: a sloped histogram; the ECDF difference stays on one side of zero.

References:
    Talts, S., Betancourt, M., Simpson, D., Vehtari, A., & Gelman, A. (2018). Validating
    Bayesian inference algorithms with simulation-based calibration. arXiv:1804.06788.

    Säilynoja, T., Bürkner, P.-C., & Vehtari, A. (2022). Graphical test for discrete
    uniformity and its applications in goodness-of-fit evaluation and multiple sample
    comparison. Statistics and Computing 32(2), 32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from scipy.stats import binom

from sbi_course.diagnostics.sbc import discrete_rank_ecdf_band
from sbi_course.plotting._style import (
    BAND_COLOR,
    PALETTE,
    TRUTH_COLOR,
    figure_and_axes,
    root_figure,
    style,
    to_numpy,
)

__all__ = ["sbc_rank_plot", "coverage_plot", "rank_ecdf_band"]


def sbc_rank_plot(
    ranks,
    num_posterior_samples: int,
    *,
    kind: str = "hist",
    parameter_labels: Sequence[str] | None = None,
    num_bins: int | None = None,
    confidence: float = 0.99,
    fig: Figure | None = None,
) -> Figure:
    r"""SBC ranks per parameter, as histograms or ECDF differences, with uniformity bands.

    Args:
        ranks: SBC ranks, integers in [0, L], shape (N, D) (or (N,) for one parameter).
        num_posterior_samples: L, the posterior samples each rank was computed against.
        kind: ``"hist"`` (rank histogram with a pointwise binomial band) or ``"ecdf"``
            (:math:`F_N(z) - z` with a simultaneous band).
        parameter_labels: names of the D parameters, used as panel titles.
        num_bins: histogram bins (default: about N / 20, so that a bin holds ~20 ranks, at
            most L + 1).
        confidence: probability of the band (pointwise per bin for ``"hist"``,
            simultaneous over the whole curve for ``"ecdf"``).
        fig: an empty figure to draw into; default: a new pyplot figure.

    Returns:
        The figure, with D axes.

    Raises:
        ValueError: on ranks outside [0, L], an unknown ``kind`` or a bad ``confidence``.
    """
    r, names = _checked_ranks(ranks, num_posterior_samples, kind, confidence, parameter_labels)
    num_ranks = int(num_posterior_samples) + 1
    num, dim = r.shape

    with style():
        cols = min(dim, 4)
        rows = math.ceil(dim / cols)
        if fig is None:
            fig = plt.figure(figsize=(2.9 * cols + 0.4, 2.4 * rows), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax in axes[dim:]:
            fig.delaxes(ax)
        for i, ax in enumerate(axes[:dim]):
            if kind == "hist":
                _rank_histogram(ax, r[:, i], num_ranks, num_bins, confidence)
            else:
                _ecdf_difference(ax, r[:, i], num_ranks, confidence)
            ax.set_title(names[i])
            ax.set_xlabel("rank" if kind == "hist" else "fractional rank z")
        axes[0].set_ylabel("count" if kind == "hist" else r"$F_N(z) - z$")
        band = "pointwise" if kind == "hist" else "simultaneous"
        fig.suptitle(
            f"SBC, {num} simulations, L={num_ranks - 1}; {confidence:.0%} {band} band", fontsize=10
        )
    return root_figure(fig)


def _checked_ranks(
    ranks, num_posterior_samples: int, kind: str, confidence: float, parameter_labels
) -> tuple[np.ndarray, list[str]]:
    """The ranks of :func:`sbc_rank_plot` as integers of shape (N, D) and the D panel titles.

    Raises:
        ValueError: on ranks outside [0, L], an unknown ``kind``, a bad ``confidence`` or a
            number of labels other than D.
    """
    r = to_numpy(ranks)
    r = r[:, None] if r.ndim == 1 else r
    num_ranks = int(num_posterior_samples) + 1
    if r.ndim != 2 or r.shape[0] == 0:
        raise ValueError(f"ranks for sbc_rank_plot must have shape (N, D), got {r.shape}")
    if not np.all(np.isfinite(r)) or r.min() < 0 or r.max() > num_ranks - 1:
        raise ValueError(
            f"ranks for sbc_rank_plot must lie in [0, {num_ranks - 1}] "
            f"(num_posterior_samples={num_posterior_samples})"
        )
    if kind not in ("hist", "ecdf"):
        raise ValueError(f"kind for sbc_rank_plot must be 'hist' or 'ecdf', got {kind!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence for sbc_rank_plot must be in (0, 1), got {confidence}")
    dim = r.shape[1]
    names = (
        list(parameter_labels)
        if parameter_labels
        else [rf"$\theta_{{{i + 1}}}$" for i in range(dim)]
    )
    if len(names) != dim:
        raise ValueError(f"sbc_rank_plot got {len(names)} parameter_labels for D={dim}")
    return r.astype(int), names


def _rank_histogram(ax, r, num_ranks: int, num_bins: int | None, confidence: float) -> None:
    num = r.shape[0]
    bins = int(num_bins) if num_bins else max(1, min(num_ranks, round(num / 20)))
    bins = min(bins, num_ranks)
    # Bins hold whole ranks: rank k goes to bin floor(k * bins / num_ranks), so a bin's
    # probability under uniformity is its number of ranks over num_ranks.
    bin_of_rank = np.arange(num_ranks) * bins // num_ranks
    width = np.bincount(bin_of_rank, minlength=bins)
    counts = np.bincount(bin_of_rank[r], minlength=bins)
    left = np.concatenate([[0], np.cumsum(width)[:-1]]) - 0.5
    p = width / num_ranks
    low = binom.ppf((1 - confidence) / 2, num, p)
    high = binom.ppf((1 + confidence) / 2, num, p)
    edges = np.append(left, num_ranks - 0.5)
    ax.fill_between(
        edges,
        np.append(low, low[-1]),
        np.append(high, high[-1]),
        step="post",
        color=BAND_COLOR,
        alpha=0.5,
        lw=0,
    )
    ax.stairs(num * p, edges, color=TRUTH_COLOR, ls="--", lw=0.9)
    ax.bar(
        left,
        counts,
        width=width,
        align="edge",
        color=PALETTE[0],
        alpha=0.75,
        edgecolor="white",
        lw=0.4,
    )
    ax.set_xlim(edges[0], edges[-1])


def rank_ecdf_band(
    num: int, num_ranks: int, confidence: float = 0.99, num_points: int = 100, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Simultaneous band of :math:`F_N(z) - z` for N uniform ranks on {0, ..., num_ranks - 1}.

    The band of :func:`sbi_course.diagnostics.discrete_rank_ecdf_band` (Säilynoja et al.,
    2022; 1000 simulated sets of ranks from a numpy generator seeded with ``seed``), shifted
    by :math:`z` for the ECDF-difference plot.

    Returns:
        ``(z, lower, upper)``: evaluation points in [0, 1], shape (K,), and the band of
        :math:`F_N(z) - z`, each of shape (K,).
    """
    z, lower, upper = discrete_rank_ecdf_band(num, num_ranks, confidence, num_points, seed)
    return z, lower - z, upper - z


def _ecdf_difference(ax, r, num_ranks: int, confidence: float) -> None:
    num = r.shape[0]
    z, lower, upper = rank_ecdf_band(num, num_ranks, confidence)
    k = np.round(z * num_ranks).astype(int)
    ecdf = np.searchsorted(np.sort(r), k, side="left") / num  # share of ranks below k
    ax.fill_between(z, lower, upper, color=BAND_COLOR, alpha=0.5, lw=0)
    ax.axhline(0, color=TRUTH_COLOR, ls="--", lw=0.9)
    ax.plot(z, ecdf - z, color=PALETTE[0], drawstyle="steps-post")
    ax.set_xlim(0, 1)


def coverage_plot(
    nominal,
    empirical,
    *,
    labels: Sequence[str] | None = None,
    num_tests: int | None = None,
    confidence: float = 0.95,
    ax=None,
) -> Figure:
    """Expected coverage: empirical against nominal credibility, with the diagonal.

    Curves above the diagonal are conservative (credible regions too wide), below it
    overconfident (too narrow).

    Args:
        nominal: credibility levels in [0, 1], shape (K,).
        empirical: empirical coverage, shape (K,), or (K, C) for C curves (one per parameter
            or method), or a list/dict of (K,) curves.
        labels: legend entry of each curve (a dict brings its keys).
        num_tests: number of test simulations behind each point; adds the binomial band
            that a calibrated estimator's coverage falls into with probability ``confidence``.
        confidence: probability of that band.
        ax: axes to draw into; default: a new figure.

    Returns:
        The figure.
    """
    levels, curves, labels = _coverage_curves(nominal, empirical, labels)
    with style():
        fig, ax = figure_and_axes(ax, (4.0, 4.0))
        if num_tests:
            _coverage_band(ax, num_tests, confidence)
        ax.plot([0, 1], [0, 1], color=TRUTH_COLOR, ls="--", lw=0.9)
        order = np.argsort(levels)
        for c in range(curves.shape[1]):
            label = labels[c] if labels is not None else None
            ax.plot(
                levels[order],
                curves[order, c],
                marker="o",
                ms=3,
                color=PALETTE[c % len(PALETTE)],
                label=label,
            )
        _label_regions(ax)
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1),
            xlabel="credibility level",
            ylabel="empirical coverage",
            aspect="equal",
        )
        if labels is not None or num_tests:
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 0.08))
    return fig


def _coverage_curves(
    nominal, empirical, labels: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, Sequence[str] | None]:
    """The levels (K,), the curves (K, C) and the labels of :func:`coverage_plot`.

    Raises:
        ValueError: when the curves do not have one value per level or the labels do not
            name every curve.
    """
    levels = to_numpy(nominal).reshape(-1)
    if isinstance(empirical, dict):
        labels = list(empirical) if labels is None else labels
        empirical = list(empirical.values())
    if isinstance(empirical, (list, tuple)):
        curves = np.stack([to_numpy(c).reshape(-1) for c in empirical], axis=1)
    else:
        curves = to_numpy(empirical)
        curves = curves[:, None] if curves.ndim == 1 else curves
    if curves.shape[0] != levels.shape[0]:
        raise ValueError(
            f"coverage_plot needs one empirical value per nominal level: got {levels.shape[0]} "
            f"levels and empirical of shape {curves.shape}"
        )
    if labels is not None and len(labels) != curves.shape[1]:
        raise ValueError(f"coverage_plot got {len(labels)} labels for {curves.shape[1]} curves")
    return levels, curves, labels


def _coverage_band(ax, num_tests: int, confidence: float) -> None:
    """Shade the binomial band a calibrated estimator's coverage from ``num_tests`` tests falls
    into with probability ``confidence``, at every level on a grid of [0, 1]."""
    grid = np.linspace(0, 1, 201)
    low = binom.ppf((1 - confidence) / 2, num_tests, grid) / num_tests
    high = binom.ppf((1 + confidence) / 2, num_tests, grid) / num_tests
    ax.fill_between(
        grid,
        low,
        high,
        color=BAND_COLOR,
        alpha=0.5,
        lw=0,
        label=f"{confidence:.0%} band, {num_tests} tests",
    )


def _label_regions(ax) -> None:
    """Name the two sides of the diagonal: conservative above, overconfident below."""
    for x, y, text, align in (
        (0.04, 0.96, "conservative", {"va": "top"}),
        (0.96, 0.04, "overconfident", {"ha": "right"}),
    ):
        ax.text(
            x, y, text, transform=ax.transAxes, color="0.45", style="italic", fontsize=9, **align
        )
