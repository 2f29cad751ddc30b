"""Priors: shapes, generator reproducibility, densities against torch's own."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Uniform

from sbi_course.priors import BoxUniform, GaussianPrior, LogNormalPrior, in_support, sample_prior

PRIORS = {
    "box": lambda: BoxUniform(-torch.ones(3), 2 * torch.ones(3)),
    "gauss": lambda: GaussianPrior(torch.zeros(3), 0.1 * torch.eye(3)),
    "lognormal": lambda: LogNormalPrior(torch.tensor([-0.125, -3.0, 0.0]), 0.5),
}


@pytest.mark.parametrize("name", PRIORS)
def test_shapes_and_event_shape(name):
    prior = PRIORS[name]()
    assert prior.event_shape == (3,)
    theta = prior.sample((7,))
    assert theta.shape == (7, 3)
    assert prior.log_prob(theta).shape == (7,)
    assert prior.sample((2, 5)).shape == (2, 5, 3)


@pytest.mark.parametrize("name", PRIORS)
def test_same_generator_same_samples(name):
    prior = PRIORS[name]()
    a = prior.sample((100,), generator=torch.Generator().manual_seed(3))
    b = prior.sample((100,), generator=torch.Generator().manual_seed(3))
    c = prior.sample((100,), generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_box_uniform_matches_torch_and_is_minus_inf_outside():
    prior = PRIORS["box"]()
    reference = Independent(Uniform(-torch.ones(3), 2 * torch.ones(3)), 1)
    theta = prior.sample((50,), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(prior.log_prob(theta), reference.log_prob(theta))
    assert prior.log_prob(torch.tensor([[5.0, 0.0, 0.0]])).item() == -math.inf
    assert in_support(prior, torch.tensor([[0.0, 0.0, 0.0], [3.0, 0.0, 0.0]])).tolist() == [
        True,
        False,
    ]


def test_gaussian_prior_moments_and_density():
    cov = torch.tensor([[1.0, 0.5], [0.5, 2.0]])
    prior = GaussianPrior(torch.tensor([1.0, -1.0]), cov)
    theta = prior.sample((200_000,), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(theta.mean(0), torch.tensor([1.0, -1.0]), atol=0.02)
    assert torch.allclose(torch.cov(theta.T), cov, atol=0.03)
    reference = MultivariateNormal(torch.tensor([1.0, -1.0]), cov)
    assert torch.allclose(prior.log_prob(theta[:10]), reference.log_prob(theta[:10]))


def test_lognormal_density_and_support():
    prior = PRIORS["lognormal"]()
    theta = prior.sample((100_000,), generator=torch.Generator().manual_seed(0))
    assert (theta > 0).all()
    assert torch.allclose(torch.log(theta).mean(0), prior.mu, atol=0.01)
    reference = Independent(torch.distributions.LogNormal(prior.mu, prior.sigma), 1)
    assert torch.allclose(prior.log_prob(theta[:10]), reference.log_prob(theta[:10]), atol=1e-5)
    assert prior.log_prob(torch.tensor([[-1.0, 1.0, 1.0]])).item() == -math.inf


def test_sample_prior_with_a_plain_torch_distribution_is_reproducible_and_leaves_global_rng():
    prior = Independent(Uniform(torch.zeros(2), torch.ones(2)), 1)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a = sample_prior(prior, 10, torch.Generator().manual_seed(1))
    b = sample_prior(prior, 10, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (10, 2)
    assert torch.equal(before, torch.get_rng_state())


def test_box_uniform_rejects_bad_bounds():
    with pytest.raises(ValueError, match="high > low"):
        BoxUniform(torch.ones(2), torch.zeros(2))
    with pytest.raises(ValueError, match="same shape"):
        BoxUniform(torch.zeros(2), torch.ones(3))


# --- issue #14, items 7 and 8: bad input used to pass silently ----------------------------------


def _priors():
    return {
        "BoxUniform": BoxUniform(-torch.ones(2), torch.ones(2)),
        "GaussianPrior": GaussianPrior(torch.zeros(2), covariance_matrix=torch.eye(2)),
        "LogNormalPrior": LogNormalPrior(torch.zeros(2), torch.ones(2)),
    }


@pytest.mark.parametrize("name", ["BoxUniform", "GaussianPrior", "LogNormalPrior"])
def test_log_prob_of_the_wrong_width_is_an_error_not_a_broadcast(name):
    """BoxUniform.log_prob of (N, 1) under a 2-D prior used to broadcast to a number."""
    with pytest.raises(ValueError, match=rf"{name}.log_prob.*\(\*, 2\).*\(5, 1\)"):
        _priors()[name].log_prob(torch.zeros(5, 1))


@pytest.mark.parametrize("name", ["BoxUniform", "GaussianPrior", "LogNormalPrior"])
def test_sample_rejects_bad_counts_and_generators(name):
    prior = _priors()[name]
    with pytest.raises(ValueError, match="sample_shape"):
        prior.sample((-1,))
    with pytest.raises(ValueError, match="sample_shape"):
        prior.sample((2.5,))
    with pytest.raises(ValueError, match="generator"):
        prior.sample((3,), generator=np.random.default_rng(0))
    assert prior.sample((np.int64(3),), generator=torch.Generator().manual_seed(0)).shape == (3, 2)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="high for BoxUniform must be finite"):
        BoxUniform(torch.zeros(2), torch.tensor([1.0, float("inf")]))
    with pytest.raises(ValueError, match="sigma for LogNormalPrior must be positive"):
        LogNormalPrior(torch.zeros(2), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="sigma for LogNormalPrior must be positive"):
        LogNormalPrior(torch.zeros(2), torch.tensor([1.0, -2.0]))
    with pytest.raises(ValueError, match="covariance_matrix for GaussianPrior is not valid"):
        GaussianPrior(torch.zeros(2), covariance_matrix=-torch.eye(2))
    with pytest.raises(ValueError, match="loc for GaussianPrior must be finite"):
        GaussianPrior(torch.tensor([0.0, float("nan")]), covariance_matrix=torch.eye(2))


def test_sample_prior_checks_its_count():
    prior = _priors()["BoxUniform"]
    with pytest.raises(ValueError, match="num_samples for sample_prior"):
        sample_prior(prior, -3)
    assert sample_prior(prior, np.int32(4), generator=torch.Generator()).shape == (4, 2)


def test_gaussian_prior_expands_and_samples_like_torch():
    prior = _priors()["GaussianPrior"]
    expanded = prior.expand((3,))
    assert expanded.sample((5,), generator=torch.Generator().manual_seed(0)).shape == (5, 3, 2)
