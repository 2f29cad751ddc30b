"""Corner plots of posterior samples: marginals on the diagonal, pairs below it.

A D-dimensional posterior cannot be drawn, but its 1-D and 2-D marginals can. The
diagonal shows each parameter's marginal (histogram or kernel density estimate); the panel
in row i, column j < i shows the joint marginal of parameters j and i (a 2-D histogram,
density contours or a scatter). Several sample sets (two estimators, or a posterior and its
reference) overlay in different colours.

References:
    Foreman-Mackey, D. (2016). corner.py: Scatterplot matrices in Python. Journal of Open
    Source Software 1(2), 24.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from scipy.ndimage import gaussian_filter
from scipy.stats import gaussian_kde

from sbi_course.plotting._style import (
    PALETTE,
    TRUTH_COLOR,
    light_colormap,
    root_figure,
    style,
    to_numpy,
)

__all__ = ["pairplot"]

# Contours enclose these shares of the probability mass (1 and 2 sigma for a Gaussian).
_CONTOUR_MASS = (0.393, 0.865)


def pairplot(
    samples,
    labels: Sequence[str] | None = None,
    *,
    weights=None,
    true_theta=None,
    limits=None,
    parameter_labels: Sequence[str] | None = None,
    diag: str = "hist",
    lower: str | None = None,
    bins: int | None = None,
    max_points: int = 2000,
    figsize: tuple[float, float] | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Corner plot of one or several sets of samples.

    Args:
        samples: samples of shape (M, D) (tensor or array), an object with ``.samples`` and
            ``.weights`` (an ABC result), or a list of those to overlay.
        labels: legend entry of each sample set.
        weights: weights of shape (M,) for one set, or a list with one entry (or ``None``)
            per set; objects with ``.weights`` bring their own.
        true_theta: the true parameters, shape (D,), drawn as dashed lines.
        limits: axis limits, shape (D, 2); default: the central 99% of all sets, padded.
        parameter_labels: names of the D parameters (default ``theta_1 ... theta_D``).
        diag: ``"hist"`` or ``"kde"`` for the marginals on the diagonal.
        lower: ``"hist"`` (2-D histogram), ``"contour"`` (39% and 86% mass, the 1- and
            2-sigma regions of a Gaussian) or ``"scatter"``; default ``"hist"`` for one set and
            ``"contour"`` for several.
        bins: histogram bins per axis; default: from each set's (effective) sample size,
            between 12 and 50.
        max_points: most points per set in a scatter.
        figsize: figure size in inches (default grows with D).
        fig: an empty figure (or subfigure) to draw into; default: a new pyplot figure.

    Returns:
        The figure, with D (D + 1) / 2 axes: the panels on and below the diagonal. In
        Jupyter, assign it (``fig = pairplot(...)``) so that it is shown once.

    Raises:
        ValueError: on sets of different dimension, or unknown ``diag`` or ``lower``.
    """
    sets = _sample_sets(samples, weights)
    dim = sets[0][0].shape[1]
    if lower is None:
        lower = "hist" if len(sets) == 1 else "contour"
    _check_options(diag, lower, labels, len(sets))
    truth = None if true_theta is None else to_numpy(true_theta).reshape(-1)
    if truth is not None and truth.shape[0] != dim:
        raise ValueError(f"true_theta for pairplot must have shape ({dim},), got {truth.shape}")
    names = _parameter_labels(parameter_labels, dim)
    bounds = _limits(sets, truth, limits, dim)

    with style():
        if fig is None:
            size = figsize or (max(3.0, min(1.9 * dim + 1.0, 13.0)),) * 2
            fig = plt.figure(figsize=size, layout="constrained")
        axes = fig.subplots(dim, dim, squeeze=False)
        for i in range(dim):
            for j in range(dim):
                ax = axes[i, j]
                if j > i:
                    fig.delaxes(ax)
                    continue
                for k, (theta, w) in enumerate(sets):
                    color = PALETTE[k % len(PALETTE)]
                    if i == j:
                        _diagonal(ax, theta[:, i], w, bounds[i], diag, bins, color, len(sets))
                    else:
                        x, y = theta[:, j], theta[:, i]
                        _pair(ax, x, y, w, bounds[j], bounds[i], lower, bins, color, max_points)
                _decorate(ax, i, j, dim, bounds, names, truth)
        if len(sets) > 1 or labels is not None:
            _legend(fig, axes, len(sets), labels, truth is not None)
    return root_figure(fig)


def _legend(fig: Figure, axes, num_sets: int, labels, with_truth: bool) -> None:
    """One legend entry per sample set (and one for the true parameters): in the only panel
    of a 1-D plot, at the figure's upper right otherwise."""
    handles = [Line2D([], [], color=PALETTE[k % len(PALETTE)], lw=3) for k in range(num_sets)]
    text = list(labels) if labels is not None else [f"set {k + 1}" for k in range(num_sets)]
    if with_truth:
        handles.append(Line2D([], [], color=TRUTH_COLOR, ls="--", lw=1.2))
        text.append("true")
    if axes.shape[0] == 1:
        axes[0, 0].legend(handles, text, loc="upper right")
    else:
        fig.legend(handles, text, loc="upper right", bbox_to_anchor=(0.98, 0.98))


def _check_options(diag: str, lower: str, labels, num_sets: int) -> None:
    """Raise a ValueError for an unknown ``diag`` or ``lower``, or a label count other than
    the number of sample sets."""
    if diag not in ("hist", "kde"):
        raise ValueError(f"diag for pairplot must be 'hist' or 'kde', got {diag!r}")
    if lower not in ("hist", "contour", "scatter"):
        raise ValueError(
            f"lower for pairplot must be 'hist', 'contour' or 'scatter', got {lower!r}"
        )
    if labels is not None and len(labels) != num_sets:
        raise ValueError(f"pairplot got {len(labels)} labels for {num_sets} sample sets")


def _sample_sets(samples, weights) -> list[tuple[np.ndarray, np.ndarray]]:
    """A list of (theta (M, D), normalised weights (M,)) with finite rows only."""
    # A list of tensors/arrays/results is several sets; anything else is one set.
    many = isinstance(samples, (list, tuple)) and all(
        hasattr(s, "shape") or hasattr(s, "samples") for s in samples
    )
    items = list(samples) if many else [samples]
    if not items:
        raise ValueError("pairplot got an empty list of sample sets")
    if not many or weights is None:
        weights = [weights] if not many else [None] * len(items)
    if len(weights) != len(items):
        raise ValueError(f"pairplot got {len(weights)} weights for {len(items)} sample sets")
    sets = []
    for item, w in zip(items, weights, strict=True):
        if hasattr(item, "samples"):
            w = getattr(item, "weights", None) if w is None else w
            item = item.samples
        theta = to_numpy(item)
        theta = theta[:, None] if theta.ndim == 1 else theta
        if theta.ndim != 2:
            raise ValueError(f"pairplot needs samples of shape (M, D), got {theta.shape}")
        w = np.ones(theta.shape[0]) if w is None else to_numpy(w).reshape(-1)
        if w.shape[0] != theta.shape[0]:
            raise ValueError(f"pairplot got {w.shape[0]} weights for {theta.shape[0]} samples")
        ok = np.isfinite(theta).all(axis=1) & np.isfinite(w)
        if not ok.any() or w[ok].sum() <= 0:
            raise ValueError("pairplot got a sample set without finite samples")
        sets.append((theta[ok], w[ok] / w[ok].sum()))
    if len({theta.shape[1] for theta, _ in sets}) > 1:
        raise ValueError(
            f"pairplot needs sample sets of one dimension, got {[t.shape[1] for t, _ in sets]}"
        )
    return sets


def _parameter_labels(parameter_labels, dim: int) -> list[str]:
    if parameter_labels is None:
        return [rf"$\theta_{{{i + 1}}}$" for i in range(dim)]
    if len(parameter_labels) != dim:
        raise ValueError(f"pairplot got {len(parameter_labels)} parameter_labels for D={dim}")
    return list(parameter_labels)


def _limits(sets, truth, limits, dim: int) -> np.ndarray:
    if limits is not None:
        bounds = to_numpy(limits).reshape(-1, 2) if np.ndim(limits) > 1 else to_numpy(limits)
        bounds = np.broadcast_to(bounds.reshape(-1, 2), (dim, 2)).copy()
        return bounds
    lows = np.min([np.quantile(t, 0.005, axis=0) for t, _ in sets], axis=0)
    highs = np.max([np.quantile(t, 0.995, axis=0) for t, _ in sets], axis=0)
    if truth is not None:
        lows, highs = np.minimum(lows, truth), np.maximum(highs, truth)
    pad = 0.08 * (highs - lows)
    pad = np.where(pad > 0, pad, 0.5)
    return np.stack([lows - pad, highs + pad], axis=1)


def _diagonal(ax, x, w, bounds, diag, bins, color, num_sets) -> None:
    if diag == "kde" and np.ptp(x) > 0 and x.shape[0] > 1:
        grid = np.linspace(*bounds, 256)
        density = gaussian_kde(x, weights=w)(grid)
        ax.plot(grid, density, color=color)
        ax.fill_between(grid, density, color=color, alpha=0.25 if num_sets == 1 else 0.12, lw=0)
    else:
        edges = np.linspace(*bounds, (bins or _auto_bins(w, 1.0, 50)) + 1)
        alpha = 0.35 if num_sets == 1 else 0.15
        ax.hist(x, edges, weights=w, density=True, color=color, alpha=alpha, lw=0)
        ax.hist(x, edges, weights=w, density=True, color=color, histtype="step", lw=1.3)
    ax.set_ylim(bottom=0)


def _pair(ax, x, y, w, xb, yb, lower, bins, color, max_points) -> None:
    if lower == "scatter":
        keep = np.linspace(0, x.shape[0] - 1, min(max_points, x.shape[0])).astype(int)
        ax.scatter(x[keep], y[keep], s=4, color=color, alpha=0.4, lw=0, rasterized=True)
        return
    bins = bins or _auto_bins(w, 0.8, 40)
    hist, xe, ye = np.histogram2d(x, y, bins=bins, range=[xb, yb], weights=w)
    if lower == "hist":
        masked = np.ma.masked_where(hist.T <= 0, hist.T)
        ax.pcolormesh(xe, ye, masked, cmap=light_colormap(color), rasterized=True)
        return
    # Contours of a lightly smoothed histogram, at the levels enclosing _CONTOUR_MASS.
    smooth = gaussian_filter(hist, sigma=1.0)
    levels = _mass_levels(smooth, _CONTOUR_MASS)
    if levels is None:  # too concentrated for contours (e.g. a point mass): fall back
        _pair(ax, x, y, w, xb, yb, "scatter", bins, color, max_points)
        return
    centres = (0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1]))
    ax.contourf(
        *centres, smooth.T, levels=[levels[1], levels[0], np.inf], colors=[color], alpha=0.18
    )
    ax.contour(
        *centres, smooth.T, levels=[levels[1], levels[0]], colors=[color], linewidths=[1.0, 1.6]
    )


def _auto_bins(w: np.ndarray, factor: float, most: int) -> int:
    """Fewer bins for fewer samples (Kish's effective size), so histograms are not ragged."""
    ess = 1.0 / np.sum(w**2)
    return int(np.clip(round(factor * np.sqrt(ess)), 12, most))


def _mass_levels(density: np.ndarray, masses) -> list[float] | None:
    """Density levels above which the given shares of the total mass lie (descending)."""
    values = np.sort(density.ravel())[::-1]
    cumulative = np.cumsum(values) / values.sum()
    levels = [values[min(np.searchsorted(cumulative, m), values.size - 1)] for m in masses]
    if not levels[0] > levels[1] > 0:
        return None
    return levels


def _decorate(ax, i, j, dim, bounds, names, truth) -> None:
    ax.set_xlim(bounds[j])
    ax.xaxis.set_major_locator(MaxNLocator(4, prune="both"))
    if i == j:
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
        if truth is not None:
            ax.axvline(truth[j], color=TRUTH_COLOR, ls="--", lw=1.2)
    else:
        ax.set_ylim(bounds[i])
        ax.yaxis.set_major_locator(MaxNLocator(4, prune="both"))
        if truth is not None:
            ax.axvline(truth[j], color=TRUTH_COLOR, ls="--", lw=0.9)
            ax.axhline(truth[i], color=TRUTH_COLOR, ls="--", lw=0.9)
            ax.plot(truth[j], truth[i], "o", ms=4, color=TRUTH_COLOR)
        if j == 0:
            ax.set_ylabel(names[i])
        else:
            ax.tick_params(labelleft=False)
    if i == dim - 1:
        ax.set_xlabel(names[j])
    else:
        ax.tick_params(labelbottom=False)
