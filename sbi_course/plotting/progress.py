"""How a run progressed: training and validation losses, SMC-ABC tolerances.

A training curve answers "did it converge, and did it overfit?": the training loss keeps
falling when the network memorises its rows, the validation loss turns up, and early
stopping keeps the weights of the best validation epoch. An SMC-ABC schedule answers "how
much did each smaller tolerance cost?".
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from sbi_course.plotting._style import (
    PALETTE,
    TRUTH_COLOR,
    figure_and_axes,
    root_figure,
    style,
    to_numpy,
)

__all__ = ["loss_plot", "abc_epsilon_plot"]

_TRAIN_NAMES = ("train_loss", "training_loss", "train", "loss")
_VALIDATION_NAMES = ("validation_loss", "val_loss", "valid_loss", "validation")


def loss_plot(history, *, ax=None, log_scale: bool = False, title: str | None = None) -> Figure:
    """Training and validation loss per epoch, with the best epoch marked.

    Args:
        history: a :class:`~sbi_course.inference.training.TrainingHistory` or any object or
            dict with ``train_loss`` and optionally ``validation_loss`` (also accepted:
            ``training_loss``, ``val_loss``) and ``best_epoch`` (counted from 1); or a plain
            sequence of training losses.
        ax: axes to draw into; default: a new figure.
        log_scale: logarithmic loss axis (only for positive losses).
        title: axes title.

    Returns:
        The figure.

    Raises:
        ValueError: when no training loss is found.
    """
    train, validation, best = _losses(history)
    epochs = np.arange(1, train.shape[0] + 1)
    with style():
        fig, ax = figure_and_axes(ax, (5.0, 3.2))
        ax.plot(epochs, train, color=PALETTE[0], label="training")
        if validation.size:
            ax.plot(
                np.arange(1, validation.shape[0] + 1),
                validation,
                color=PALETTE[1],
                label="validation",
            )
        if best is not None:
            curve = validation if validation.size else train
            ax.axvline(best, color=TRUTH_COLOR, ls=":", lw=1.0)
            ax.plot(
                best, curve[best - 1], "o", color=TRUTH_COLOR, ms=5, label=f"best epoch ({best})"
            )
        if log_scale:
            ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel="loss")
        if title:
            ax.set_title(title)
        ax.legend(loc="upper right")
    return fig


def _log_axis(ax) -> None:
    # Plain numbers on the ticks: a schedule often spans less than a decade.
    ax.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:.3g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)


def _losses(history) -> tuple[np.ndarray, np.ndarray, int | None]:
    def find(names):
        for name in names:
            value = history.get(name) if isinstance(history, dict) else getattr(history, name, None)
            if value is not None:
                return to_numpy(value).reshape(-1)
        return None

    if isinstance(history, dict) or any(hasattr(history, n) for n in _TRAIN_NAMES):
        train, validation = find(_TRAIN_NAMES), find(_VALIDATION_NAMES)
        best = (
            history.get("best_epoch")
            if isinstance(history, dict)
            else getattr(history, "best_epoch", None)
        )
    else:
        train, validation, best = to_numpy(history).reshape(-1), None, None
    if train is None or train.size == 0:
        raise ValueError("loss_plot needs a non-empty training loss (train_loss)")
    validation = np.empty(0) if validation is None else validation
    curve = validation if validation.size else train
    if not best:  # None or 0 (not trained yet): the lowest finite loss
        finite = np.where(np.isfinite(curve), curve, np.inf)
        best = int(np.argmin(finite)) + 1 if np.isfinite(finite).any() else None
    elif not 1 <= int(best) <= curve.shape[0]:
        best = None
    return train, validation, None if best is None else int(best)


def abc_epsilon_plot(result, *, fig: Figure | None = None) -> Figure:
    """The tolerance schedule of an SMC-ABC run against the simulations spent.

    Args:
        result: an :class:`~sbi_course.abc.SMCABCResult` (or any object with ``epsilons``,
            ``simulations_per_round`` and optionally ``acceptance_rates``), or a plain
            sequence of tolerances (plotted against the round).
        fig: an empty figure to draw into; default: a new pyplot figure.

    Returns:
        The figure: one axes (tolerance against cumulative simulations), and a second with
        the acceptance rate per round when the result has one.
    """
    if hasattr(result, "epsilons"):
        epsilons = to_numpy(result.epsilons)
        spent = np.cumsum(to_numpy(getattr(result, "simulations_per_round", [])))
        rates = getattr(result, "acceptance_rates", None)
        rates = None if rates is None or len(rates) == 0 else to_numpy(rates)
    else:
        epsilons, spent, rates = to_numpy(result).reshape(-1), np.empty(0), None
    if epsilons.size == 0:
        raise ValueError("abc_epsilon_plot needs at least one tolerance")
    by_simulations = spent.shape[0] == epsilons.shape[0]
    x = spent if by_simulations else np.arange(epsilons.shape[0])
    with style():
        if fig is None:
            width = 8.0 if rates is not None else 4.5
            fig = plt.figure(figsize=(width, 3.2), layout="constrained")
        axes = fig.subplots(1, 2 if rates is not None else 1, squeeze=False).ravel()
        axes[0].plot(x, epsilons, marker="o", color=PALETTE[0])
        if (epsilons > 0).all():
            _log_axis(axes[0])
        axes[0].set(xlabel="simulations" if by_simulations else "round", ylabel=r"$\epsilon$")
        axes[0].set_title("tolerance")
        if rates is not None:
            axes[1].plot(np.arange(rates.shape[0]), rates, marker="o", color=PALETTE[1])
            _log_axis(axes[1])
            axes[1].set(xlabel="round", ylabel="acceptance rate")
            axes[1].set_title("acceptance rate")
    return root_figure(fig)
