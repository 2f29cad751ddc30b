"""Simulator outputs over time: voltage traces, population curves, waveforms.

Looking at raw simulations is the first check of any simulator and of any posterior (a
posterior predictive check): do traces simulated from posterior samples look like the
observation?
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from sbi_course.plotting._style import PALETTE, root_figure, style, to_numpy

__all__ = ["trace_plot"]


def trace_plot(
    t,
    traces,
    *,
    labels: Sequence[str] | None = None,
    channel_labels: Sequence[str] | None = None,
    stacked: bool = False,
    xlabel: str = "time",
    ylabel: str | None = None,
    colors: Sequence[str] | None = None,
    alpha: float = 1.0,
    fig: Figure | None = None,
    ax=None,
) -> Figure:
    """Several simulator traces against time.

    Args:
        t: times, shape (T,); ``None`` for the sample index.
        traces: one trace (T,), N traces (N, T), or N traces of C channels (N, C, T) (e.g.
            prey and predators); NaN entries (failed simulations) leave gaps.
        labels: legend entry of each of the N traces.
        channel_labels: y-axis label of each of the C channels.
        stacked: draw each of the N traces in its own panel (sharing the time axis), as for
            voltage traces; otherwise they overlay.
        xlabel: time-axis label, with units (``"time (ms)"``).
        ylabel: value-axis label, with units (``"voltage (mV)"``).
        colors: a colour per trace (default: the course palette).
        alpha: line opacity (lower it to overlay many traces).
        fig: an empty figure to draw into; default: a new pyplot figure.
        ax: with (N, T) traces and ``stacked=False``: axes to draw into.

    Returns:
        The figure: one axes for overlaid (N, T) traces, N for ``stacked=True``, C for
        (N, C, T) traces.

    Raises:
        ValueError: when the shapes of ``t`` and ``traces`` disagree.
    """
    times, values = _checked_traces(t, traces, labels, channel_labels, stacked)
    num, channels, _ = values.shape
    colors = list(colors) if colors is not None else [PALETTE[i % len(PALETTE)] for i in range(num)]
    panels = num if stacked else channels

    with style():
        fig, axes = _panels(panels, fig, ax)
        for n in range(num):
            for c in range(channels):
                target = axes[n] if stacked else axes[c]
                # One legend entry per trace: on its first channel only.
                label = labels[n] if labels is not None and c == 0 else None
                target.plot(
                    times,
                    values[n, c],
                    color=colors[n % len(colors)],
                    alpha=alpha,
                    lw=1.0 if num > 5 else 1.4,
                    label=label,
                )
        for c, target in enumerate(axes):
            if channel_labels is not None:
                target.set_ylabel(channel_labels[c])
            elif ylabel is not None:
                target.set_ylabel(ylabel)
            target.margins(x=0)
        axes[-1].set_xlabel(xlabel)
        if labels is not None:
            if stacked:
                for target in axes:
                    target.legend(loc="upper right")
            else:
                axes[0].legend(loc="upper right")
    return root_figure(fig)


def _checked_traces(
    t, traces, labels, channel_labels, stacked: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The times (T,) and traces (N, C, T) of :func:`trace_plot`, checked against the labels.

    Raises:
        ValueError: when the shapes of ``t`` and ``traces`` or the numbers of labels disagree.
    """
    values = to_numpy(traces)
    if values.ndim == 1:
        values = values[None, None, :]
    elif values.ndim == 2:
        values = values[:, None, :]
    if values.ndim != 3:
        raise ValueError(
            f"traces for trace_plot must be (T,), (N, T) or (N, C, T), got {values.shape}"
        )
    num, channels, length = values.shape
    times = np.arange(length) if t is None else to_numpy(t).reshape(-1)
    if times.shape[0] != length:
        raise ValueError(f"trace_plot got {times.shape[0]} times for traces of length {length}")
    if labels is not None and len(labels) != num:
        raise ValueError(f"trace_plot got {len(labels)} labels for {num} traces")
    if channel_labels is not None and len(channel_labels) != channels:
        raise ValueError(
            f"trace_plot got {len(channel_labels)} channel_labels for {channels} channels"
        )
    if stacked and channels > 1:
        raise ValueError("trace_plot stacks (N, T) traces only; (N, C, T) gets a panel per channel")
    return times, values


def _panels(panels: int, fig: Figure | None, ax) -> tuple[Figure, list]:
    """The figure and its ``panels`` axes stacked over a shared time axis (or the one ``ax``)."""
    if ax is not None:
        if panels != 1:
            raise ValueError("trace_plot takes ax only for one panel of (N, T) traces")
        return root_figure(ax.figure), [ax]
    if fig is None:
        height = min(1.6 * panels + 1.0, 12.0) if panels > 1 else 3.2
        fig = plt.figure(figsize=(6.5, height), layout="constrained")
    return fig, list(fig.subplots(panels, 1, sharex=True, squeeze=False).ravel())
