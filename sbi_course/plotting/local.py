"""Plots of the local diagnostics, the misspecification tests and the failure matrix.

* :func:`tarp_plot`: TARP's expected coverage probability against credibility;
* :func:`null_test_plot`: a test statistic against its null distribution (L-C2ST, MMD, the
  marginal log-density test), with the p-value;
* :func:`lc2st_plot`: L-C2ST's classifier probabilities at ``x_o`` beside its null test;
* :func:`failure_matrix_plot`: the failure x diagnostic matrix as a table of powers.

Each takes the numbers a diagnostic returned and returns a matplotlib Figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from sbi_course.plotting._style import (
    BAND_COLOR,
    PALETTE,
    TRUTH_COLOR,
    figure_and_axes,
    style,
    to_numpy,
)

__all__ = ["tarp_plot", "null_test_plot", "lc2st_plot", "failure_matrix_plot"]


def tarp_plot(results, *, labels: Sequence[str] | None = None, ax=None) -> Figure:
    """TARP curves: expected coverage probability against credibility level.

    Args:
        results: one :class:`~sbi_course.diagnostics.TARPResult`, a list of them, or a dict
            ``label -> result``; anything with ``alpha`` and ``ecp`` of shape (K,).
        labels: legend entries (a dict brings its keys).
        ax: axes to draw into; default: a new figure.

    Returns:
        The figure. Below the diagonal: over-confident; above: under-confident.
    """
    if isinstance(results, Mapping):
        labels = list(results) if labels is None else labels
        results = list(results.values())
    elif hasattr(results, "ecp"):
        results = [results]
    results = list(results)
    if labels is not None and len(labels) != len(results):
        raise ValueError(f"tarp_plot got {len(labels)} labels for {len(results)} curves")
    with style():
        fig, ax = figure_and_axes(ax, (4.0, 4.0))
        ax.plot([0, 1], [0, 1], color=TRUTH_COLOR, ls="--", lw=0.9)
        for i, result in enumerate(results):
            label = None if labels is None else labels[i]
            ax.plot(to_numpy(result.alpha), to_numpy(result.ecp), label=label)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=r"credibility level $\alpha$")
        ax.set(ylabel="expected coverage probability", title="TARP")
        if labels is not None:
            ax.legend(loc="upper left")
    return fig


def null_test_plot(result, *, name: str = "statistic", ax=None) -> Figure:
    """Histogram of a test's null statistics, the observed statistic and its p-value.

    Args:
        result: anything with ``statistic`` (scalar), ``null`` (B,) and ``pvalue`` (scalar):
            an :class:`~sbi_course.diagnostics.LC2STResult` or a
            :class:`~sbi_course.diagnostics.MisspecificationTest`.
        name: what the statistic is, for the axis label.
        ax: axes to draw into; default: a new figure.

    Returns:
        The figure.
    """
    null = to_numpy(result.null).reshape(-1)
    statistic = float(to_numpy(result.statistic))
    with style():
        fig, ax = figure_and_axes(ax, (4.5, 3.2))
        ax.hist(null, bins=min(30, max(5, len(null) // 5)), color=BAND_COLOR, label="null")
        ax.axvline(statistic, color=PALETTE[5], lw=2, label="observed")
        ax.set(xlabel=name, ylabel="count", title=f"p = {float(to_numpy(result.pvalue)):.3g}")
        ax.legend()
    return fig


def lc2st_plot(result, *, fig=None) -> Figure:
    """L-C2ST at one observation: the classifier's probabilities and the null test.

    Args:
        result: an :class:`~sbi_course.diagnostics.LC2STResult`.
        fig: figure to draw into (two axes are added); default: a new figure.

    Returns:
        The figure: left, the class-0 probability at the evaluation samples (a spike at 1/2
        for a correct posterior); right, the statistic against its null distribution.
    """
    import matplotlib.pyplot as plt

    with style():
        if fig is None:
            fig = plt.figure(figsize=(8.5, 3.2), layout="constrained")
        left, right = fig.subplots(1, 2)
        left.hist(to_numpy(result.probabilities), bins=30, range=(0, 1), color=PALETTE[0])
        left.axvline(0.5, color=TRUTH_COLOR, ls="--", lw=0.9)
        left.set(
            xlabel=r"classifier's $P(\theta \sim q \mid x_o)$",
            ylabel="count",
            title=f"accuracy {float(to_numpy(result.accuracy)):.2f}",
        )
    null_test_plot(result, name="L-C2ST statistic", ax=right)
    return fig


def failure_matrix_plot(matrix, *, ax=None) -> Figure:
    """The failure x diagnostic matrix: the share of seeds in which each diagnostic detects
    each failure.

    Args:
        matrix: a :class:`~sbi_course.diagnostics.FailureMatrix`.
        ax: axes to draw into; default: a new figure.

    Returns:
        The figure: one cell per failure (row) and diagnostic (column), coloured and labelled
        by its power (in the first row, the false-alarm rate).
    """
    power = to_numpy(matrix.power)
    with style():
        fig, ax = figure_and_axes(ax, (1.0 + 0.95 * power.shape[1], 0.8 + 0.5 * power.shape[0]))
        ax.imshow(power, vmin=0, vmax=1, cmap="Blues", aspect="auto")
        for (i, j), value in np.ndenumerate(power):
            color = "white" if value > 0.6 else "black"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color=color, fontsize=9)
        ax.set_xticks(range(len(matrix.diagnostics)), matrix.diagnostics, rotation=30, ha="right")
        ax.set_yticks(range(len(matrix.failures)), matrix.failures)
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_title(
            f"share of {matrix.num_repeats} seeds detected at level {matrix.alpha:g}\n"
            f"({matrix.num_simulations} simulations)",
            fontsize=10,
        )
    return fig
