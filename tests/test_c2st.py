"""C2ST: 0.5 for equal distributions, 1.0 for disjoint ones, fast mode agrees with sbibm's."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from sbi_course.diagnostics import c2st


def _gaussians(n, shift, generator, dim=2):
    X = torch.randn(n, dim, generator=generator)
    Y = torch.randn(n, dim, generator=generator)
    Y[:, 0] += shift
    return X, Y


def _crescent_and_gaussian(n, generator):
    """A two-moons-like crescent and the Gaussian with the same mean and covariance."""
    angle = (torch.rand(n, generator=generator) - 0.5) * math.pi
    radius = 1.0 + 0.1 * torch.randn(n, generator=generator)
    crescent = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)
    chol = torch.linalg.cholesky(torch.cov(crescent.T))
    gaussian = crescent.mean(0) + torch.randn(n, 2, generator=generator) @ chol.T
    return crescent, gaussian


def test_identical_distributions_give_one_half(generator):
    X, Y = _gaussians(2000, 0.0, generator)
    assert c2st(X, Y) == pytest.approx(0.5, abs=0.03)


def test_disjoint_samples_give_one(generator):
    X, Y = _gaussians(1000, 20.0, generator)
    assert c2st(X, Y) > 0.99


def test_shifted_gaussians_reach_the_bayes_accuracy(generator):
    # For N(0, 1) against N(delta, 1) the best accuracy is Phi(delta / 2).
    X, Y = _gaussians(2000, 1.0, generator)
    best = 0.5 * (1 + math.erf(0.5 / math.sqrt(2)))
    assert c2st(X, Y) == pytest.approx(best, abs=0.025)


def test_reproducible_and_float(generator):
    X, Y = _gaussians(500, 0.5, generator)
    first, second = c2st(X, Y, seed=3), c2st(X, Y, seed=3)
    assert isinstance(first, float) and first == second


def test_unbatched_and_numpy_inputs(generator):
    X, Y = _gaussians(300, 0.5, generator, dim=1)
    assert c2st(X[:, 0], Y[:, 0].numpy()) == c2st(X, Y)


def test_clear_errors(generator):
    X, Y = _gaussians(100, 0.0, generator)
    with pytest.raises(ValueError, match="mode"):
        c2st(X, Y, mode="slow")
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        c2st(X, torch.randn(100, 3))
    with pytest.raises(ValueError, match="NaN"):
        c2st(X, torch.full((100, 2), math.nan))
    with pytest.raises(ValueError, match="num_folds"):
        c2st(X[:3], Y[:3])


@pytest.mark.slow
@pytest.mark.parametrize("case", ["identical", "shifted", "crescent"])
def test_fast_mode_agrees_with_sbibm_mode(case, generator):
    n = 1500
    if case == "crescent":
        X, Y = _crescent_and_gaussian(n, generator)
    else:
        X, Y = _gaussians(n, 0.0 if case == "identical" else 1.0, generator)
    fast, sbibm = c2st(X, Y, mode="fast"), c2st(X, Y, mode="sbibm")
    assert fast == pytest.approx(sbibm, abs=0.02)


def test_sbibm_mode_speed_up_changes_no_number(generator):
    """The quicker ReLU backward step reproduces scikit-learn's MLP bit for bit."""
    from sklearn.neural_network import MLPClassifier

    from sbi_course.diagnostics.c2st import _c2st_sbibm, _quick_relu_backward

    _base = pytest.importorskip("sklearn.neural_network._base")
    if not isinstance(getattr(_base, "DERIVATIVES", None), dict):
        pytest.skip("this scikit-learn has no table of derivatives: nothing is swapped")

    X, Y = _crescent_and_gaussian(300, generator)
    data = torch.cat([X, Y]).numpy()
    target = np.concatenate([np.zeros(300), np.ones(300)])

    def fit():
        classifier = MLPClassifier(hidden_layer_sizes=(20, 20), max_iter=60, random_state=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 60 epochs do not converge; the test wants that
            return classifier.fit(data, target)

    plain = fit()
    original = _base.DERIVATIVES["relu"]
    with _quick_relu_backward():
        assert _base.DERIVATIVES["relu"] is not original
        quick = fit()
    assert _base.DERIVATIVES["relu"] is original  # restored
    assert plain.n_iter_ == quick.n_iter_ and plain.loss_curve_ == quick.loss_curve_
    for a, b in zip(
        plain.coefs_ + plain.intercepts_, quick.coefs_ + quick.intercepts_, strict=True
    ):
        np.testing.assert_array_equal(a, b)
    # ... and so the whole sbibm-mode score, trained to convergence, is the same number.
    assert _c2st_sbibm(data, target, 1, 5, quick=True) == _c2st_sbibm(
        data, target, 1, 5, quick=False
    )

    with pytest.raises(RuntimeError), _quick_relu_backward():
        raise RuntimeError("a failing fit")
    assert _base.DERIVATIVES["relu"] is original  # restored after an error too


# --- issue #14, item 1: each used to give a plausible wrong number or a deep error ----------------


def test_unequal_sizes_are_balanced_with_a_warning(generator):
    """10,000 against 1,000 draws of one distribution used to score about 0.91."""
    X = torch.randn(10_000, 2, generator=generator)
    Y = torch.randn(1_000, 2, generator=generator)
    with pytest.warns(UserWarning, match="1000 of the 10000 rows of X"):
        score = c2st(X, Y)
    assert 0.44 < score < 0.56


def test_shared_rows_warn(generator):
    A = torch.randn(200, 2, generator=generator)
    with pytest.warns(UserWarning, match="200 of the 200 rows of Y also occur in X"):
        c2st(A, A, num_epochs=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_folds": 1}, ValueError, "num_folds for c2st must be an integer of at least 2"),
        ({"batch_size": 0}, ValueError, "batch_size for c2st must be a positive integer"),
        ({"seed": None}, ValueError, "seed"),
        ({"num_epochs": 0}, ValueError, "num_epochs for c2st"),
        ({"learning_rate": float("nan")}, ValueError, "learning_rate for c2st"),
        ({"generator": 3}, ValueError, "generator for c2st"),
    ],
)
def test_bad_settings_are_named(kwargs, error, match, generator):
    X, Y = torch.randn(50, 2, generator=generator), torch.randn(50, 2, generator=generator)
    with pytest.raises(error, match=match):
        c2st(X, Y, **kwargs)


def test_generator_gives_the_seed(generator):
    X, Y = torch.randn(100, 2, generator=generator), torch.randn(100, 2, generator=generator) + 1
    a = c2st(X, Y, generator=torch.Generator().manual_seed(7), num_epochs=2)
    b = c2st(X, Y, generator=torch.Generator().manual_seed(7), num_epochs=2)
    assert a == b


def test_float64_default_dtype(generator):
    X, Y = torch.randn(100, 2, generator=generator), torch.randn(100, 2, generator=generator) + 3
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        score = c2st(X.double(), Y.double(), num_epochs=100)
    finally:
        torch.set_default_dtype(previous)
    assert score > 0.9


def test_finite_float64_above_float32_range(generator):
    X = torch.randn(100, 2, generator=generator, dtype=torch.float64) * 1e39
    Y = torch.randn(100, 2, generator=generator, dtype=torch.float64) * 1e39 + 5e39
    assert c2st(X, Y, num_epochs=100) > 0.9
    with pytest.raises(ValueError, match="float32's range|largest value"):
        c2st(X, Y, z_score=False)
    with pytest.raises(ValueError, match="NaN or infinite"):
        c2st(X, torch.full((100, 2), float("inf"), dtype=torch.float64))
