"""Ensemble posteriors: a mixture that samples and evaluates correctly and that every
diagnostic accepts; and what it buys: members that disagree make it conservative."""

from __future__ import annotations

import math

import pytest
import torch

from sbi_course.diagnostics import Ensemble, EnsemblePosterior, expected_coverage, sbc_ranks, tarp
from sbi_course.diagnostics.matrix import GaussianPosterior

STD = math.sqrt(0.5)  # theta ~ N(0, I), x ~ N(theta, I): theta | x ~ N(x / 2, 1/2 I)


def test_mixture_samples_and_density():
    members = [GaussianPosterior(torch.full((2,), m), 0.5) for m in (-1.0, 1.0, 3.0)]
    weights = torch.tensor([0.5, 0.25, 0.25])
    mixture = EnsemblePosterior(members, weights)
    samples = mixture.sample((20000,), generator=torch.Generator().manual_seed(0))
    assert samples.shape == (20000, 2)
    assert float(samples.mean()) == pytest.approx(0.5, abs=0.03)  # 0.5 * -1 + 0.25 * (1 + 3)
    # the density by hand: log of the weighted sum of the three normal densities
    theta = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    by_hand = sum(w * m.log_prob(theta).exp() for w, m in zip(weights, members, strict=True))
    assert torch.allclose(mixture.log_prob(theta), by_hand.log().float(), atol=1e-5)
    assert mixture.num_members == 3 and mixture.event_shape == (2,)
    # batched members: one mixture per row of x
    batched = EnsemblePosterior([GaussianPosterior(torch.zeros(4, 2), 1.0)] * 2)
    assert batched.sample((7,)).shape == (7, 4, 2) and batched.log_prob(
        torch.zeros(4, 2)
    ).shape == (4,)


def test_every_diagnostic_accepts_an_ensemble_and_disagreement_makes_it_conservative():
    g = torch.Generator().manual_seed(1)
    theta = torch.randn(300, 2, generator=g)
    x = theta + torch.randn(300, 2, generator=g)

    def member(shift):  # each member over-confident and shifted its own way
        return lambda x_o: GaussianPosterior(x_o / 2 + shift, 0.7 * STD)

    shifts = [torch.tensor([0.5, -0.5]), torch.tensor([-0.5, 0.5]), torch.tensor([0.5, 0.5])]
    single = member(shifts[0])
    ensemble = Ensemble([member(s) for s in shifts])
    nominal = torch.linspace(0, 1, 11).numpy()
    _, alone = expected_coverage(single, theta, x, 200, nominal=nominal, generator=g)
    _, mixed = expected_coverage(ensemble, theta, x, 200, nominal=nominal, generator=g)
    assert (alone[4:9] < nominal[4:9] - 0.1).all()  # the member is over-confident
    assert (mixed[1:10] > alone[1:10]).all()  # the mixture covers more at every level
    ranks = sbc_ranks(ensemble, theta, x, 50, generator=g)
    assert ranks.shape == (300, 2)
    result = tarp(ensemble, theta, x, num_posterior_samples=100, generator=g)
    assert float(result.atc) > float(
        tarp(single, theta, x, num_posterior_samples=100, generator=g).atc
    )


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="at least one posterior"):
        EnsemblePosterior([])
    with pytest.raises(TypeError, match="member 1 has no sample method"):
        EnsemblePosterior([GaussianPosterior(torch.zeros(2), 1.0), 3])
    with pytest.raises(ValueError, match=r"weights must be non-negative with shape \(1,\)"):
        EnsemblePosterior([GaussianPosterior(torch.zeros(2), 1.0)], torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="Ensemble needs an object"):
        Ensemble([3])
