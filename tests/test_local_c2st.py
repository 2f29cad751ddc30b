"""L-C2ST on posteriors that are right or wrong by construction, with both nulls."""

from __future__ import annotations

import math

import pytest
import torch

from sbi_course.diagnostics import LocalC2ST, local_c2st

STD = math.sqrt(0.5)  # theta ~ N(0, I), x ~ N(theta, I): theta | x ~ N(x / 2, 1/2 I)
CASES = {  # (scale of the std, shift of the mean, prior instead)
    "right": (1.0, 0.0, False),
    "over-confident": (0.4, 0.0, False),
    "biased": (1.0, 0.6, False),
    "prior": (1.0, 0.0, True),
}
X_O = torch.tensor([1.5, -1.0])


def _mean_std(case, x):
    scale, shift, prior = CASES[case]
    if prior:
        return torch.zeros_like(x), torch.ones_like(x)
    return x / 2 + shift, torch.full_like(x, scale * STD)


@pytest.fixture(scope="module")
def simulations():
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(800, 2, generator=g)
    return theta, theta + torch.randn(800, 2, generator=g)


def test_flow_null_detects_wrong_posteriors_and_passes_the_right_one(simulations):
    theta, x = simulations
    # (for the right posterior p is uniform over seeds: 12 seeds gave 0.1 to 0.9, mean 0.47)
    g = torch.Generator().manual_seed(3)
    pvalues, shared = {}, None
    for case in CASES:

        def inverse(theta_, x_, case=case):
            mean, std = _mean_std(case, x_)
            return (theta_ - mean) / std

        test = LocalC2ST(
            theta,
            x,
            None,
            null="flow",
            inverse_transform=inverse,
            num_null=19,
            num_epochs=30,
            null_from=shared,
            generator=g,
        )
        shared = shared or test
        result = test.test(X_O, num_samples=500, generator=g)
        assert result.null.shape == (19,) and result.probabilities.shape == (500,)
        pvalues[case] = float(result.pvalue)
    assert pvalues["right"] > 0.1
    # the prior passes SBC and coverage, but not a test at one observation
    for case in ("over-confident", "biased", "prior"):
        assert pvalues[case] == pytest.approx(1 / 20), case


def test_permutation_null(simulations):
    theta, x = simulations
    g = torch.Generator().manual_seed(2)
    results = {}
    for case in ("right", "over-confident"):
        mean, std = _mean_std(case, x)
        posterior_samples = mean + std * torch.randn(x.shape, generator=g)
        mean_o, std_o = _mean_std(case, X_O.expand(500, 2))
        samples_o = mean_o + std_o * torch.randn(500, 2, generator=g)
        results[case] = local_c2st(
            X_O, samples_o, theta, x, posterior_samples, num_null=19, num_epochs=30, generator=g
        )
    assert results["right"].pvalue > 0.1
    assert results["over-confident"].pvalue == pytest.approx(1 / 20)
    assert results["over-confident"].statistic > results["right"].statistic
    assert results["over-confident"].accuracy > 0.6  # its samples look like the estimator's


def test_bad_input_is_named(simulations):
    theta, x = simulations
    with pytest.raises(ValueError, match="null must be 'permutation' or 'flow'"):
        LocalC2ST(theta, x, theta, null="bootstrap")
    with pytest.raises(ValueError, match="needs inverse_transform"):
        LocalC2ST(theta, x, None, null="flow")
    with pytest.raises(ValueError, match=r"posterior_samples must have shape \(800, 2\)"):
        LocalC2ST(theta, x, theta[:10])
    with pytest.raises(ValueError, match="as many rows"):
        LocalC2ST(theta, x[:10], theta)
