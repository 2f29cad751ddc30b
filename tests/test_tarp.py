"""TARP: by hand, on posteriors that are right or wrong by construction, and against sbi."""

from __future__ import annotations

import math

import pytest
import torch

from sbi_course.diagnostics import tarp, tarp_coverage, tarp_credibility
from sbi_course.diagnostics.matrix import GaussianPosterior

STD = math.sqrt(0.5)  # theta ~ N(0, I), x ~ N(theta, I): theta | x ~ N(x / 2, 1/2 I)


def _simulations(num, seed=0):
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(num, 2, generator=g)
    return theta, theta + torch.randn(num, 2, generator=g), g


def _draws(x, scale=1.0, shift=0.0, prior=False, num=500, generator=None):
    mean, std = (torch.zeros_like(x), 1.0) if prior else (x / 2 + shift, scale * STD)
    return mean + std * torch.randn(num, *x.shape, generator=generator)


def test_credibility_by_hand():
    samples = torch.tensor([[[0.0]], [[1.0]], [[3.0]], [[-2.5]]])  # 4 draws, 1 observation, D=1
    theta = torch.tensor([[2.0]])
    # distances to the reference 0: 0, 1, 3, 2.5 against 2 for the truth: two are closer
    assert tarp_credibility(samples, theta, torch.zeros(1)).tolist() == [0.5]
    coverage = tarp_coverage(torch.tensor([0.1, 0.5, 0.9]), torch.tensor([0.0, 0.5, 1.0]))
    assert coverage.tolist() == pytest.approx([0.0, 2 / 3, 1.0])  # 0.5 counts at 0.5


def test_right_and_wrong_posteriors():
    theta, x, g = _simulations(1000)
    right = tarp(_draws(x, generator=g), theta, x, generator=g)
    assert right.ks_pvalue > 0.01 and abs(float(right.atc)) < 0.02
    assert right.ecp[0] < 0.01 and right.ecp[-1] == 1 and right.alpha.shape == (51,)
    over = tarp(_draws(x, scale=0.5, generator=g), theta, x, generator=g)
    under = tarp(_draws(x, scale=2.0, generator=g), theta, x, generator=g)
    biased = tarp(_draws(x, shift=0.5, generator=g), theta, x, generator=g)
    assert over.atc < -0.05 and over.ks_pvalue < 1e-6
    assert under.atc > 0.05 and under.ks_pvalue < 1e-6
    assert biased.ks_pvalue < 1e-3
    # the prior is calibrated on average: TARP with references independent of x passes it
    prior = tarp(_draws(x, prior=True, generator=g), theta, x, generator=g)
    assert prior.ks_pvalue > 0.01


def test_amortised_posterior_and_chosen_references():
    theta, x, g = _simulations(200)

    def posterior(x_o):
        return GaussianPosterior(x_o / 2, STD)

    result = tarp(
        posterior, theta, x, num_posterior_samples=200, references=torch.zeros(2), generator=g
    )
    assert result.references.shape == (200, 2) and (result.references == 0).all()
    assert result.credibility.shape == (200,) and result.ks_pvalue > 0.01
    again = tarp(posterior, theta, x, num_posterior_samples=200, generator=torch.Generator())
    twice = tarp(posterior, theta, x, num_posterior_samples=200, generator=torch.Generator())
    assert torch.equal(again.ecp, twice.ecp)  # same seed, same numbers


def test_bad_input_is_named():
    theta, x, _ = _simulations(10)
    with pytest.raises(ValueError, match=r"tarp: posterior samples must have shape"):
        tarp(torch.zeros(5, 9, 2), theta, x)
    with pytest.raises(ValueError, match=r"tarp: references must have shape \(2,\)"):
        tarp(torch.zeros(5, 10, 2), theta, x, references=torch.zeros(3))
    with pytest.raises(ValueError, match="as many rows"):
        tarp(torch.zeros(5, 10, 2), theta, x[:5])
    with pytest.raises(TypeError, match="tarp needs an object"):
        tarp(3, theta, x)


def test_agrees_with_sbi_on_the_same_samples():
    sbi_tarp = pytest.importorskip("sbi.diagnostics.tarp")
    theta, x, g = _simulations(500, seed=3)
    for scale in (0.5, 1.0, 2.0):
        draws = _draws(x, scale=scale, num=300, generator=g)
        ours = tarp(draws, theta, x, generator=g)
        # sbi's own z-scoring and the same reference points; its grid spans min..max of f
        ecp, alpha = sbi_tarp._run_tarp(
            draws.float(), theta.float(), ours.references.float(), z_score_theta=True
        )
        # sbi's histogram counts f < alpha at the inner edges (its grid runs from min to max
        # of f, in float32): our credibilities reproduce its curve exactly
        inner = slice(1, -1)
        strict = (ours.credibility.float()[None] < alpha[inner, None]).double().mean(1)
        assert torch.allclose(strict, ecp.double()[inner], atol=1e-6), scale
        # ours counts f <= alpha: the two differ only by the credibilities on the grid's edges
        mine = tarp_coverage(ours.credibility, alpha.double())
        assert torch.allclose(mine[inner], ecp.double()[inner], atol=0.02), scale
        atc, _ = sbi_tarp.check_tarp(ecp, alpha)
        assert float(ours.atc) == pytest.approx(atc, abs=0.02), scale
