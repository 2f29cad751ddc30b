"""SBC, expected coverage and predictive checks on a conjugate Gaussian model.

Model: theta ~ N(0, I_2), x ~ N(theta, s^2 I_2). The exact posterior is
N(x / (1 + s^2), s^2 / (1 + s^2) I_2). A correct posterior must pass the calibration checks;
a too narrow (overconfident) or shifted one must fail them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

from sbi_course.diagnostics import (
    coverage_from_levels,
    ecdf_band,
    expected_coverage,
    hpd_levels,
    posterior_predictive,
    predictive_pvalue,
    predictive_quantile,
    predictive_samples,
    prior_predictive,
    rank_ecdf,
    sbc_ranks,
    sbc_uniformity,
)
from sbi_course.inference.posterior import Posterior
from sbi_course.priors import GaussianPrior

NOISE = 0.5
PRIOR = GaussianPrior(torch.zeros(2), torch.eye(2))


def simulate(theta, generator=None):
    return theta + NOISE * torch.randn(theta.shape, generator=generator)


class GaussianPosterior(Posterior):
    """The exact posterior, optionally narrowed (``scale < 1``) or shifted."""

    def __init__(self, x_o, scale=1.0, shift=0.0):
        super().__init__(PRIOR, x_o)
        mean = self.x_o / (1 + NOISE**2) + shift
        std = scale * math.sqrt(NOISE**2 / (1 + NOISE**2))
        self.distribution = MultivariateNormal(mean, std**2 * torch.eye(2))

    def sample(self, sample_shape=(1,), generator=None):
        eps = torch.randn(*sample_shape, 2, generator=generator)
        return self.distribution.loc + self.distribution.stddev * eps

    def log_prob(self, theta):
        return self.distribution.log_prob(self._check_theta(theta))


@pytest.fixture(scope="module")
def simulations():
    g = torch.Generator().manual_seed(0)
    theta = PRIOR.sample((300,), generator=g)
    return theta, simulate(theta, generator=g)


def test_sbc_passes_the_exact_posterior(simulations, generator):
    theta, x = simulations
    ranks = sbc_ranks(GaussianPosterior, theta, x, num_posterior_samples=100, generator=generator)
    assert ranks.shape == (300, 2) and ranks.dtype == torch.long
    assert ranks.min() >= 0 and ranks.max() <= 100
    test = sbc_uniformity(ranks, 100, generator=generator)
    assert test.chi2_pvalue.shape == (2,) and test.ks_pvalue.shape == (2,)
    assert (test.chi2_pvalue > 0.01).all() and (test.ks_pvalue > 0.01).all()


@pytest.mark.parametrize(
    "wrong",
    [dict(scale=0.5), dict(shift=0.3)],
    ids=["overconfident", "biased"],
)
def test_sbc_flags_a_wrong_posterior(wrong, simulations, generator):
    theta, x = simulations
    ranks = sbc_ranks(
        lambda x_o: GaussianPosterior(x_o, **wrong), theta, x, 100, generator=generator
    )
    test = sbc_uniformity(ranks, 100, generator=generator)
    assert (test.chi2_pvalue < 1e-3).all() and (test.ks_pvalue < 1e-3).all()
    if "scale" in wrong:
        # Overconfidence gives a U shape: too many extreme ranks.
        extreme = ((ranks <= 5) | (ranks >= 95)).float().mean()
        assert extreme > 3 * 12 / 101


def test_sbc_accepts_samplers_and_inference_objects(simulations, generator):
    theta, x = simulations

    def sampler(x_o, num_samples, generator):
        return GaussianPosterior(x_o).sample((num_samples,), generator=generator)

    class Trained:
        def posterior(self, x_o):
            return GaussianPosterior(x_o)

    ranks = [
        sbc_ranks(method, theta[:20], x[:20], 50, generator=torch.Generator().manual_seed(1))
        for method in (sampler, Trained(), GaussianPosterior)
    ]
    assert torch.equal(ranks[0], ranks[1]) and torch.equal(ranks[0], ranks[2])


def test_sbc_errors(simulations):
    theta, x = simulations
    with pytest.raises(ValueError, match="same number of rows|as many rows"):
        sbc_ranks(GaussianPosterior, theta, x[:10], 10)
    with pytest.raises(ValueError, match="posterior"):
        sbc_ranks(42, theta, x, 10)
    with pytest.raises(ValueError, match="values in 0..10"):
        sbc_uniformity(torch.full((5, 2), 11), 10)


def test_ecdf_band_holds_uniform_ecdfs(generator):
    z, lower, upper = ecdf_band(100, num_points=50, generator=generator)
    assert z.shape == lower.shape == upper.shape == (50,)
    assert (lower <= z).all() and (z <= upper).all()
    # Ranks from an exact posterior are uniform: their ECDF stays in the simultaneous band
    # about 95% of the time.
    u = torch.randint(0, 101, (400, 100, 1), generator=generator)
    inside = [
        (
            (rank_ecdf(ranks, 100, z)[:, 0] >= lower) & (rank_ecdf(ranks, 100, z)[:, 0] <= upper)
        ).all()
        for ranks in u
    ]
    assert 0.9 < np.mean(inside) < 0.99
    _, point_lower, point_upper = ecdf_band(100, num_points=50, simultaneous=False)
    assert (point_upper - point_lower <= upper - lower).all()


def test_rank_ecdf_of_calibrated_ranks_follows_the_diagonal(generator):
    # Many runs with few posterior samples: a plain ECDF of r / (L + 1) would sit up to
    # 1 / (L + 1) = 0.048 above the diagonal and leave the band; the averaged jitter does not.
    L = 20
    ranks = torch.randint(0, L + 1, (20_000, 2), generator=generator)
    z, lower, upper = ecdf_band(20_000, num_points=60, generator=generator)
    ecdf = rank_ecdf(ranks, L, z)
    assert ecdf.shape == (60, 2)
    assert np.abs(ecdf - z[:, None]).max() < 0.01
    assert ((ecdf >= lower[:, None]) & (ecdf <= upper[:, None])).all()
    # An overconfident posterior (ranks piled at the ends) leaves it.
    edges = torch.cat([torch.zeros(6000, 1), torch.full((6000, 1), float(L))]).long()
    piled = torch.cat([ranks[:8000, :1], edges])
    assert not (
        (rank_ecdf(piled, L, z)[:, 0] >= lower) & (rank_ecdf(piled, L, z)[:, 0] <= upper)
    ).all()


def test_coverage_of_exact_and_overconfident_posteriors(simulations, generator):
    theta, x = simulations
    nominal, exact = expected_coverage(
        GaussianPosterior, theta, x, num_posterior_samples=200, generator=generator
    )
    assert nominal.shape == exact.shape == (21,)
    assert np.abs(exact - nominal).max() < 0.1
    levels = hpd_levels(
        lambda x_o: GaussianPosterior(x_o, scale=0.6), theta, x, 200, generator=generator
    )
    narrow = coverage_from_levels(levels, nominal)
    # The 50% and 90% regions of an overconfident posterior hold the truth far less often.
    assert narrow[10] < 0.35 and narrow[18] < 0.75


def test_coverage_from_levels():
    levels = np.array([0.05, 0.3, 0.6, 0.95])
    np.testing.assert_allclose(coverage_from_levels(levels, [0.0, 0.5, 1.0]), [0.0, 0.5, 1.0])


def test_predictive_checks(generator):
    theta, x_rep = prior_predictive(PRIOR, simulate, 2000, generator=generator)
    assert theta.shape == x_rep.shape == (2000, 2)
    typical, extreme = torch.zeros(2), torch.tensor([0.0, 10.0])
    assert (predictive_pvalue(x_rep, typical) > 0.8).all()
    assert predictive_pvalue(x_rep, extreme)[1] < 0.01
    assert predictive_quantile(x_rep, extreme)[1] == 1.0
    # A statistic of the whole data set, and NaN rows (failed simulations) ignored.
    x_rep[:100] = math.nan
    norm = predictive_pvalue(x_rep, extreme, statistic=lambda x: x.norm(dim=-1))
    assert norm.shape == (1,) and norm[0] < 0.01
    # Posterior predictive of the exact posterior for x_o = (1, 1) centres on x_o.
    posterior = GaussianPosterior(torch.ones(2))
    _, x_post = posterior_predictive(posterior, simulate, 2000, generator=generator)
    assert torch.allclose(x_post.mean(0), torch.full((2,), 0.8), atol=0.05)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(
        predictive_samples(simulate, theta[:5], g1), predictive_samples(simulate, theta[:5], g2)
    )
