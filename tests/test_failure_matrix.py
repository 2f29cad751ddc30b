"""The failure x diagnostic matrix: the entries that theory fixes, and its figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from sbi_course.diagnostics import DIAGNOSTICS, FAILURES, failure_matrix, tarp
from sbi_course.plotting import failure_matrix_plot, lc2st_plot, null_test_plot, tarp_plot


@pytest.fixture(scope="module")
def matrix():
    return failure_matrix(num_repeats=4, generator=torch.Generator().manual_seed(0))


def _power(matrix, failure, diagnostic):
    return float(matrix.power[matrix.failures.index(failure), DIAGNOSTICS.index(diagnostic)])


def test_shapes(matrix):
    assert matrix.failures == FAILURES and matrix.diagnostics == DIAGNOSTICS
    assert matrix.pvalues.shape == (4, len(FAILURES), len(DIAGNOSTICS))
    assert ((matrix.pvalues >= 0) & (matrix.pvalues <= 1)).all()


def test_what_theory_fixes(matrix):
    passes, detects = [], []
    # the correct posterior: every rejection would be a false alarm
    passes += [("correct", d) for d in DIAGNOSTICS]
    # calibrated on average: the prior and a lossy summary pass the global diagnostics
    passes += [(f, d) for f in ("prior", "lossy summary") for d in ("SBC", "coverage", "TARP")]
    # ... but not the tests at one observation
    detects += [(f, d) for f in ("prior", "lossy summary") for d in ("C2ST", "L-C2ST")]
    # the estimator is exact for the model: only tests that look at x_o see misspecification
    passes += [("misspecified", d) for d in ("SBC", "coverage", "TARP", "C2ST", "L-C2ST")]
    detects += [("misspecified", d) for d in ("predictive", "MMD")]
    # x_o comes from the model for every other failure: MMD has nothing to find
    passes += [(f, "MMD") for f in FAILURES if f != "misspecified"]
    # wrong widths and a shift: every calibration diagnostic and the local tests see them
    detects += [
        (f, d)
        for f in ("over-confident", "under-confident", "biased")
        for d in ("SBC", "coverage", "TARP", "C2ST", "L-C2ST")
    ]
    # (at most one false alarm in 4 seeds; every seed detects)
    wrong = [(f, d, _power(matrix, f, d)) for f, d in passes if _power(matrix, f, d) > 0.25]
    wrong += [(f, d, _power(matrix, f, d)) for f, d in detects if _power(matrix, f, d) < 1.0]
    assert not wrong, wrong


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown failures"):
        failure_matrix(failures=("wrong prior",))
    with pytest.raises(ValueError, match="num_repeats"):
        failure_matrix(num_repeats=0)


def test_plots_return_figures(matrix):
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(100, 2, generator=g)
    result = tarp(theta + torch.randn(50, 100, 2, generator=g), theta, theta, generator=g)
    figures = [
        failure_matrix_plot(matrix),
        tarp_plot({"a": result, "b": result}),
        null_test_plot(_fake_test()),
        lc2st_plot(_fake_lc2st()),
    ]
    assert len(figures[0].axes) == 1 and len(figures[0].axes[0].texts) == matrix.power.numel()
    assert len(figures[1].axes[0].lines) == 3  # the diagonal and two curves
    assert len(figures[3].axes) == 2
    for fig in figures:
        plt.close(fig)
    with pytest.raises(ValueError, match="1 labels for 2 curves"):
        tarp_plot([result, result], labels=["a"])


def _fake_test():
    from sbi_course.diagnostics import MisspecificationTest

    return MisspecificationTest(torch.tensor(2.0), torch.tensor(0.01), torch.randn(100))


def _fake_lc2st():
    from sbi_course.diagnostics import LC2STResult

    return LC2STResult(
        torch.tensor(0.05),
        torch.tensor(0.02),
        torch.rand(20) * 0.01,
        torch.tensor(0.7),
        torch.rand(300),
    )
