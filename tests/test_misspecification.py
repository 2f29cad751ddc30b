"""Misspecification tests: calibrated p-values, detection of data the model cannot produce,
and the MMD against sbi's implementation."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import MultivariateNormal

from sbi_course.diagnostics import marginal_logprob_test, misspecification_mmd, mmd
from sbi_course.diagnostics.misspecification import median_bandwidth


def _simulate(num, generator, offset=0.0):
    theta = torch.randn(num, 2, generator=generator)
    x = torch.cat([theta, theta], 1) + torch.randn(num, 4, generator=generator)
    x[:, 2:] += offset  # instrument b reads `offset` too high: the model has no such term
    return x


def _embedding(x):  # the posterior mean, the sufficient statistic of the model
    return (x[:, :2] + x[:, 2:]) / 3


def test_mmd_by_hand_and_against_sbi():
    x = torch.tensor([[0.0], [1.0]])
    y = torch.tensor([[0.0]])
    # V-statistic with h = 1: kxx = (1 + 1 + 2 e^-1/2) / 4, kyy = 1, kxy = (1 + e^-1/2) / 2
    e = torch.exp(torch.tensor(-0.5))
    assert float(mmd(x, y, 1.0)) == pytest.approx(float((2 + 2 * e) / 4 + 1 - (1 + e)), 1e-6)
    sbi_mmd = pytest.importorskip("sbi.diagnostics.misspecification")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 3, generator=g), torch.randn(80, 3, generator=g) + 0.5
    for h in (0.5, 2.0):
        assert float(mmd(a, b, h)) == pytest.approx(float(sbi_mmd.compute_rbf_mmd(a, b, h)), 1e-5)


def test_pvalue_is_calibrated_and_detects_the_offset():
    g = torch.Generator().manual_seed(1)
    x = _simulate(400, g)
    pvalues = torch.stack(
        [
            misspecification_mmd(
                _simulate(1, g)[0], x, embedding=_embedding, num_permutations=49, generator=g
            ).pvalue
            for _ in range(40)
        ]
    )
    # under the null the p-value is uniform: about 10% below 0.1, and all values occur
    assert 0.0 < float((pvalues < 0.1).double().mean()) < 0.25
    assert 0.35 < float(pvalues.mean()) < 0.65
    # a set of 5 observations from the offset process, in the embedding and in x-space
    x_o = _simulate(5, g, offset=4.0)
    for embedding in (_embedding, None):
        test = misspecification_mmd(x_o, x, embedding=embedding, generator=g)
        assert test.pvalue < 0.01 and test.null.shape == (500,)


def test_marginal_logprob_test():
    g = torch.Generator().manual_seed(2)
    fit, held_out = _simulate(2000, g), _simulate(500, g)
    density = MultivariateNormal(fit.mean(0), torch.cov(fit.T))  # the marginal is Gaussian
    typical = marginal_logprob_test(_simulate(1, g)[0], held_out, density)
    outlier = marginal_logprob_test(_simulate(1, g, offset=6.0)[0], held_out, density)
    assert typical.pvalue > 0.05 and outlier.pvalue < 0.01
    assert outlier.statistic < typical.statistic and outlier.null.shape == (500,)


def test_bad_input_is_named():
    x = torch.randn(20, 3)
    with pytest.raises(ValueError, match="num_reference"):
        misspecification_mmd(torch.zeros(3), x, num_reference=50)
    with pytest.raises(ValueError, match="x_o"):
        misspecification_mmd(torch.zeros(4), x)
    with pytest.raises(TypeError, match="needs a log_prob method"):
        marginal_logprob_test(torch.zeros(3), x, density=3)
    assert median_bandwidth(torch.tensor([[0.0], [1.0], [3.0]])) == 2.0
