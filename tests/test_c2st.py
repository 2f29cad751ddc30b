"""C2ST: 0.5 for equal distributions, 1.0 for disjoint ones, fast mode agrees with sbibm's."""

from __future__ import annotations

import math

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
