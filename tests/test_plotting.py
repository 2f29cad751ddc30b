"""Tests of sbi_course.plotting: every function returns a Figure with the expected axes,
creates exactly one figure (or none when given axes), leaves matplotlib's global settings
alone, and fails clearly on bad input."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg", force=True)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sbi_course.abc import ABCResult  # noqa: E402
from sbi_course.plotting import (  # noqa: E402
    abc_epsilon_plot,
    coverage_plot,
    loss_plot,
    pairplot,
    rank_ecdf_band,
    sbc_rank_plot,
    trace_plot,
)


@pytest.fixture(autouse=True)
def no_leaked_figures():
    """Each test starts without figures and must close every figure it makes."""
    plt.close("all")
    yield
    leaked = plt.get_fignums()
    plt.close("all")
    assert not leaked, f"test left {len(leaked)} figures open"


def make(plot, *args, expected_axes: int, draw: bool = False, **kwargs) -> Figure:
    """Call a plot function, check it made one figure with the axes expected, close it."""
    before = set(plt.get_fignums())
    fig = plot(*args, **kwargs)
    assert isinstance(fig, Figure)
    assert len(set(plt.get_fignums()) - before) == 1
    assert len(fig.axes) == expected_axes
    if draw:  # layout and rendering run without errors (slow: only where it matters)
        fig.canvas.draw()
    plt.close(fig)
    return fig


def samples(n=500, d=3, seed=0, shift=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


@pytest.mark.parametrize("dim", [1, 2, 4])
def test_pairplot_has_the_lower_triangle(dim):
    make(pairplot, samples(d=dim), expected_axes=dim * (dim + 1) // 2)


@pytest.mark.parametrize("lower, diag", [("contour", "hist"), ("hist", "kde"), ("scatter", "kde")])
def test_pairplot_overlays_a_list_of_sets(lower, diag):
    sets = [samples(seed=0), samples(seed=1, shift=1.0).numpy(), samples(n=50, seed=2)]
    fig = make(
        pairplot,
        sets,
        ["a", "b", "c"],
        lower=lower,
        diag=diag,
        true_theta=torch.zeros(3),
        parameter_labels=["x", "y", "z"],
        expected_axes=6,
        draw=lower == "contour",
    )
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["a", "b", "c", "true"]
    assert fig.axes[-1].get_xlabel() == "z"


def test_pairplot_takes_weighted_results_and_limits():
    theta = samples(d=2)
    weights = torch.softmax(theta[:, 0], 0)
    result = ABCResult(theta, weights, 1000, torch.zeros(500), 1.0)
    fig = make(pairplot, result, limits=[[-2, 2], [-3, 3]], expected_axes=3)
    assert fig.axes[0].get_xlim() == (-2, 2)
    assert fig.axes[1].get_ylim() == (-3, 3)
    make(pairplot, theta, weights=weights, expected_axes=3)
    make(pairplot, [result, theta], expected_axes=3)


def test_pairplot_handles_degenerate_and_nan_samples():
    theta = torch.zeros(100, 2)
    theta[:10] = float("nan")
    make(pairplot, theta, lower="contour", expected_axes=3)


def test_pairplot_errors():
    with pytest.raises(ValueError, match="one dimension"):
        pairplot([samples(d=2), samples(d=3)])
    with pytest.raises(ValueError, match="labels"):
        pairplot([samples(), samples()], ["only one"])
    with pytest.raises(ValueError, match="true_theta"):
        pairplot(samples(), true_theta=torch.zeros(2))
    with pytest.raises(ValueError, match="lower"):
        pairplot(samples(), lower="violin")
    assert plt.get_fignums() == []  # validation happens before a figure is made


def test_pairplot_draws_into_a_given_figure():
    fig = plt.figure()
    assert pairplot(samples(d=2), fig=fig) is fig
    assert len(fig.axes) == 3
    plt.close(fig)


def uniform_ranks(n=400, dim=3, num_posterior_samples=99, seed=0):
    return np.random.default_rng(seed).integers(0, num_posterior_samples + 1, size=(n, dim))


@pytest.mark.parametrize("kind, dim", [("hist", 1), ("hist", 6), ("ecdf", 3)])
def test_sbc_rank_plot_has_one_axes_per_parameter(kind, dim):
    make(sbc_rank_plot, uniform_ranks(dim=dim), 99, kind=kind, expected_axes=dim, draw=dim == 3)


def test_sbc_rank_plot_accepts_tensors_and_one_parameter():
    make(sbc_rank_plot, torch.as_tensor(uniform_ranks(dim=1)[:, 0]), 99, expected_axes=1)
    make(sbc_rank_plot, uniform_ranks(), 99, num_bins=7, parameter_labels="abc", expected_axes=3)


def test_sbc_rank_plot_errors():
    with pytest.raises(ValueError, match=r"\[0, 10\]"):
        sbc_rank_plot(uniform_ranks(num_posterior_samples=20), 10)
    with pytest.raises(ValueError, match="kind"):
        sbc_rank_plot(uniform_ranks(), 99, kind="violin")


def test_ecdf_band_holds_uniform_ranks_with_its_confidence():
    # The simultaneous band must contain the whole ECDF difference of uniform ranks with
    # probability `confidence`: check on 500 fresh rank sets (binomial standard error of
    # the share ~0.013 at 0.9, so +-0.06 is over 4 of them).
    num, num_ranks, confidence = 100, 21, 0.9
    z, lower, upper = rank_ecdf_band(num, num_ranks, confidence)
    assert z[0] == 0 and z[-1] == 1 and (lower <= 0).all() and (upper >= 0).all()
    k = np.round(z * num_ranks).astype(int)
    ranks = np.random.default_rng(123).integers(0, num_ranks, size=(500, num))
    ecdf = (ranks[:, :, None] < k[None, None, :]).mean(axis=1) - z
    inside = ((ecdf >= lower - 1e-12) & (ecdf <= upper + 1e-12)).all(axis=1).mean()
    assert abs(inside - confidence) < 0.06


def test_coverage_plot_variants():
    levels = np.linspace(0.05, 0.95, 10)
    make(coverage_plot, levels, levels, expected_axes=1, draw=True)
    make(coverage_plot, torch.as_tensor(levels), np.stack([levels, levels**2], 1), expected_axes=1)
    fig = make(
        coverage_plot, levels, {"npe": levels, "abc": levels**2}, num_tests=200, expected_axes=1
    )
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "npe" in texts and "abc" in texts
    with pytest.raises(ValueError, match="one empirical value per nominal level"):
        coverage_plot(levels, levels[:5])


class History:
    def __init__(self):
        self.train_loss = [3.0, 2.0, 1.5, 1.2, 1.0]
        self.validation_loss = [3.1, 2.2, 1.8, 1.9, 2.0]
        self.best_epoch = 3


def test_loss_plot_marks_the_best_epoch():
    fig = make(loss_plot, History(), expected_axes=1, draw=True)
    marker = [line for line in fig.axes[0].lines if line.get_label().startswith("best epoch")]
    assert marker and marker[0].get_xdata()[0] == 3 and marker[0].get_ydata()[0] == 1.8
    # A dict without best_epoch: the lowest validation loss; a plain list: training only.
    fig = make(loss_plot, {"train_loss": [2, 1], "val_loss": [3, 2.5]}, expected_axes=1)
    assert any(line.get_label() == "best epoch (2)" for line in fig.axes[0].lines)
    make(loss_plot, [3.0, 2.0, 2.5], log_scale=True, expected_axes=1)
    with pytest.raises(ValueError, match="training loss"):
        loss_plot({"validation_loss": [1.0]})


def test_trace_plot_shapes():
    t = np.linspace(0, 10, 200)
    traces = np.sin(t[None] * np.arange(1, 4)[:, None])
    make(trace_plot, t, traces[0], expected_axes=1)
    make(trace_plot, t, traces, labels=["a", "b", "c"], expected_axes=1)
    tensors = (torch.as_tensor(t), torch.as_tensor(traces))
    make(trace_plot, *tensors, stacked=True, expected_axes=3, draw=True)
    both = np.stack([traces, 2 * traces], axis=1)  # (N=3, C=2, T)
    make(trace_plot, None, both, channel_labels=["prey", "predators"], expected_axes=2)
    with pytest.raises(ValueError, match="times"):
        trace_plot(t[:10], traces)


def test_plots_draw_into_given_axes():
    fig, axes = plt.subplots(1, 3)
    levels = np.linspace(0.1, 0.9, 5)
    assert coverage_plot(levels, levels, ax=axes[0]) is fig
    assert loss_plot([1.0, 0.5], ax=axes[1]) is fig
    assert trace_plot(None, np.zeros((2, 5)), ax=axes[2]) is fig
    assert plt.get_fignums() == [fig.number] and len(fig.axes) == 3
    plt.close(fig)


def test_abc_epsilon_plot():
    class Run:
        epsilons = [2.0, 1.0, 0.5]
        simulations_per_round = [100, 150, 200]
        acceptance_rates = [0.5, 0.3, 0.2]

    make(abc_epsilon_plot, Run(), expected_axes=2, draw=True)
    make(abc_epsilon_plot, [2.0, 1.0, 0.5], expected_axes=1)


def test_plots_leave_global_settings_alone(tmp_path):
    before = dict(matplotlib.rcParams)
    fig = pairplot(samples(d=2))
    fig.savefig(tmp_path / "pairplot.png")
    plt.close(fig)
    assert (tmp_path / "pairplot.png").stat().st_size > 1000
    assert dict(matplotlib.rcParams) == before
