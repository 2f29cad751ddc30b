"""The shared look of the course's plots: a colour-blind friendly palette and rc settings.

The settings apply only while a plot is being made (:func:`style` is a context manager
around ``matplotlib.rc_context``), so importing or calling the plotting functions leaves the
user's global matplotlib configuration alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib.pyplot as plt
import numpy as np
from cycler import cycler
from matplotlib.colors import LinearSegmentedColormap, to_rgb
from matplotlib.figure import Figure, SubFigure

__all__ = [
    "PALETTE",
    "TRUTH_COLOR",
    "BAND_COLOR",
    "style",
    "use_style",
    "to_numpy",
    "light_colormap",
    "figure_and_axes",
    "root_figure",
]

# Okabe & Ito (2008), "Color universal design": distinguishable with every common form of
# colour blindness, and in greyscale print by lightness.
PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
TRUTH_COLOR = "#222222"
BAND_COLOR = "#BBBBBB"

RC = {
    "axes.prop_cycle": cycler(color=PALETTE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "font.size": 10,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "lines.linewidth": 1.5,
    "image.cmap": "viridis",
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
}


@contextmanager
def style() -> Iterator[None]:
    """Apply the course's rc settings inside a ``with`` block only."""
    with plt.rc_context(RC):
        yield


def use_style() -> None:
    """Apply the course's look to every later plot (for notebooks: one call at the top).

    Unlike the plotting functions, which restore the settings they change, this updates the
    global ``matplotlib.rcParams`` on purpose, so that a notebook's own figures match.
    """
    plt.rcParams.update(RC)


def to_numpy(value) -> np.ndarray:
    """A float numpy array from a tensor, array or nested list (detached, on the CPU)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def light_colormap(color: str) -> LinearSegmentedColormap:
    """A colormap from white to ``color``, for 2-D histograms of one sample set."""
    return LinearSegmentedColormap.from_list("course", [(1.0, 1.0, 1.0), to_rgb(color)])


def figure_and_axes(ax, figsize: tuple[float, float]):
    """``(fig, ax)``: the given axes and its figure, or a new pyplot figure with one axes."""
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return root_figure(ax.figure), ax


def root_figure(fig) -> Figure:
    """The top-level figure of a figure or subfigure."""
    return fig.figure if isinstance(fig, SubFigure) else fig
