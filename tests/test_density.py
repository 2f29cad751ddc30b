"""Tests of z-scoring, the conditional Gaussian, the mixture density network and the builder."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from sbi_course.density import (
    ESTIMATORS,
    ConditionalGaussian,
    MixtureDensityNetwork,
    Standardize,
    build_estimator,
)
from sbi_course.inference import train


def test_standardize_round_trip_and_log_det(generator):
    data = torch.tensor(
        [[1.0, 10.0, 5.0], [3.0, 30.0, 5.0], [math.nan, 0.0, 5.0], [2.0, 20.0, 5.0]]
    )
    standardize = Standardize.from_data(data)
    # The NaN row is ignored; the constant column keeps scale one instead of dividing by 0.
    assert torch.allclose(standardize.mean, torch.tensor([2.0, 20.0, 5.0]))
    assert torch.allclose(standardize.std, torch.tensor([1.0, 10.0, 1.0]))
    value = torch.randn(4, 3, generator=generator)
    assert torch.allclose(standardize.inverse(standardize(value)), value, atol=1e-5)
    assert standardize.log_abs_det().item() == pytest.approx(-math.log(10.0))
    identity = Standardize.identity(2)
    assert torch.equal(identity(value[:, :2]), value[:, :2])
    with pytest.raises(ValueError, match="positive"):
        Standardize(torch.zeros(2), torch.tensor([1.0, 0.0]))


def test_log_prob_is_the_density_of_the_original_variable():
    # A Gaussian estimator with z-scoring: its density, in original units, integrates to one.
    torch.manual_seed(0)
    estimator = ConditionalGaussian(
        1,
        1,
        input_standardize=Standardize(torch.tensor([5.0]), torch.tensor([3.0])),
        context_standardize=Standardize(torch.tensor([1.0]), torch.tensor([2.0])),
    ).double()
    grid = torch.linspace(-60, 70, 20_001, dtype=torch.float64).unsqueeze(1)
    with torch.no_grad():
        density = estimator.log_prob(grid, torch.tensor([0.5], dtype=torch.float64)).exp()
    assert torch.trapezoid(density, grid[:, 0]).item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_gaussian_log_prob_matches_torch(covariance, generator):
    torch.manual_seed(0)
    estimator = ConditionalGaussian(3, 2, covariance=covariance).double()
    with torch.no_grad():
        estimator.net[-1].weight.normal_()
    v = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    c = torch.randn(6, 2, generator=generator, dtype=torch.float64)
    mean, scale_tril = estimator.mean_and_scale_tril(c)
    expected = MultivariateNormal(mean, scale_tril=scale_tril).log_prob(v)
    assert torch.allclose(estimator.log_prob(v, c), expected, atol=1e-10)
    off_diagonal = scale_tril[:, ~torch.eye(3, dtype=torch.bool)]
    assert (off_diagonal == 0).all() == (covariance == "diag")


def test_gaussian_maximum_likelihood_recovers_mean_and_covariance(generator):
    # Without context (C = 0) the network's output is a learned constant, and the maximum-
    # likelihood Gaussian is the sample mean and the (biased) sample covariance.
    mean = torch.tensor([1.0, -2.0, 0.5])
    scale_tril = torch.tensor([[0.5, 0.0, 0.0], [0.4, 0.3, 0.0], [-0.2, 0.1, 0.8]])
    v = mean + torch.randn(2000, 3, generator=generator) @ scale_tril.T
    no_context = torch.zeros(2000, 0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        estimator = build_estimator("gaussian", v, no_context, num_layers=0)

    def loss(vb, cb):
        return -estimator.log_prob(vb, cb).mean()

    # Full-batch Adam with a decaying step size converges to the maximum-likelihood fit.
    history = train(
        estimator,
        loss,
        [v, no_context],
        batch_size=2000,
        learning_rate=0.01,
        validation_fraction=0.0,
        lr_decay_factor=0.5,
        lr_decay_patience=3,
        max_num_epochs=1000,
        stop_after_epochs=10,
        show_progress=False,
    )
    with torch.no_grad():
        mean_u, tril_u = estimator.mean_and_scale_tril(estimator.embed(torch.zeros(1, 0)))
    standardize = estimator.input_standardize
    fitted_mean = standardize.inverse(mean_u[0])
    fitted_covariance = standardize.std[:, None] * (tril_u[0] @ tril_u[0].T) * standardize.std
    assert history.stopped_early
    assert torch.allclose(fitted_mean, v.mean(0), atol=2e-3)
    assert torch.allclose(fitted_covariance, v.T.cov(correction=0), atol=2e-3)
    # ... which is close to the truth.
    assert torch.allclose(fitted_mean, mean, atol=0.06)
    assert torch.allclose(fitted_covariance, scale_tril @ scale_tril.T, atol=0.06)
    assert estimator.sample(5, generator=generator).shape == (5, 3)


def test_mdn_log_prob_matches_torch_mixture(generator):
    torch.manual_seed(0)
    mdn = MixtureDensityNetwork(2, 3, num_components=4).double()
    v = torch.randn(5, 2, generator=generator, dtype=torch.float64)
    c = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    log_weights, means, scale_trils = mdn.mixture(c)
    mixture = MixtureSameFamily(
        Categorical(logits=log_weights), MultivariateNormal(means, scale_tril=scale_trils)
    )
    assert torch.allclose(mdn.log_prob(v, c), mixture.log_prob(v), atol=1e-10)


def test_mdn_fits_a_bimodal_conditional(generator):
    # v | c ~ 0.5 N(c, 0.1^2) + 0.5 N(-c, 0.1^2): two modes whose distance depends on c.
    c = 0.5 + torch.rand(4000, 1, generator=generator)
    sign = torch.where(torch.rand(4000, 1, generator=generator) < 0.5, 1.0, -1.0)
    v = sign * c + 0.1 * torch.randn(4000, 1, generator=generator)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        mdn = build_estimator("mdn", v, c, num_components=4, hidden_features=30)

    def loss(vb, cb):
        return -mdn.log_prob(vb, cb).mean()

    train(
        mdn,
        loss,
        [v, c],
        batch_size=200,
        learning_rate=5e-3,
        max_num_epochs=60,
        stop_after_epochs=10,
        generator=generator,
        show_progress=False,
    )
    samples = mdn.sample(4000, torch.tensor([1.0]), generator=generator)[:, 0]
    near_plus = ((samples - 1.0).abs() < 0.3).float().mean()
    near_minus = ((samples + 1.0).abs() < 0.3).float().mean()
    assert near_plus == pytest.approx(0.5, abs=0.06) and near_minus == pytest.approx(0.5, abs=0.06)
    # The fitted density is close to the true one: mean log-density within 0.1 nats.
    true_log_prob = torch.logsumexp(
        torch.stack([torch.distributions.Normal(m * c, 0.1).log_prob(v) for m in (1, -1)]), 0
    ) + math.log(0.5)
    with torch.no_grad():
        fitted = mdn.log_prob(v, c).mean()
    assert fitted.item() == pytest.approx(true_log_prob.mean().item(), abs=0.1)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_estimator_has_the_common_interface(name, generator):
    inputs = torch.randn(200, 2, generator=generator) * 3 + 1
    context = torch.randn(200, 3, generator=generator)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        estimator = build_estimator(name, inputs, context)
    assert estimator.log_prob(inputs[:7], context[:7]).shape == (7,)
    assert estimator.log_prob(inputs[:7], context[0]).shape == (7,)  # one context for all
    first = estimator.sample(50, context[0], generator=torch.Generator().manual_seed(1))
    second = estimator.sample(50, context[:1], generator=torch.Generator().manual_seed(1))
    assert first.shape == (50, 2) and torch.equal(first, second)
    assert estimator.sample(4, context[:5]).shape == (5, 4, 2)
    assert torch.allclose(estimator.input_standardize.mean, inputs.mean(0))


def test_builder_with_embedding_net_and_errors(generator):
    inputs, context = (
        torch.randn(50, 2, generator=generator),
        torch.randn(50, 6, generator=generator),
    )
    estimator = build_estimator("maf", inputs, context, embedding_net=nn.Linear(6, 3))
    assert estimator.embedding_dim == 3
    assert estimator.log_prob(inputs, context).shape == (50,)
    with pytest.raises(ValueError, match="unknown density estimator 'flow'"):
        build_estimator("flow", inputs, context)
    with pytest.raises(ValueError, match="same number of rows"):
        build_estimator("nsf", inputs, context[:10])
    with pytest.raises(ValueError, match="num_samples"):
        estimator.sample(-1, context[0])
    with pytest.raises(ValueError, match=r"inputs for MAF must have shape \(N, 2\)"):
        estimator.log_prob(torch.zeros(4, 3), context[:4])
    with pytest.raises(ValueError, match="inputs have 4 rows but context has 3"):
        estimator.log_prob(torch.zeros(4, 2), context[:3])


@pytest.mark.parametrize("name", ["gaussian", "mdn", "nsf"])
def test_estimator_at_a_context_is_a_torch_distribution(name):
    """estimator(context) has batch shape context.shape[:-1], draws sample_shape + B + (D,),
    broadcasts log_prob over (*, D), and gives the same numbers as the older methods."""
    g = torch.Generator().manual_seed(0)
    theta, x = torch.randn(300, 2, generator=g), torch.randn(300, 3, generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        q = build_estimator(name, theta, x, hidden_features=8)
    d = q(x[:4].reshape(2, 2, 3))
    assert isinstance(d, torch.distributions.Distribution)
    assert d.batch_shape == (2, 2) and d.event_shape == (2,)
    assert d.sample((5, 3), generator=g).shape == (5, 3, 2, 2, 2)
    assert d.log_prob(theta[0]).shape == (2, 2)
    assert d.log_prob(theta[:6].reshape(6, 1, 1, 2)).shape == (6, 2, 2)
    # The same draws and densities as the older context-first methods.
    old = q.sample(7, x[:4], generator=torch.Generator().manual_seed(1))  # (4, 7, 2)
    new = q(x[:4]).sample((7,), generator=torch.Generator().manual_seed(1))  # (7, 4, 2)
    assert torch.equal(old.transpose(0, 1), new)
    one = q(x[0]).sample((7,), generator=torch.Generator().manual_seed(1))
    assert torch.equal(one, q.sample(7, x[0], generator=torch.Generator().manual_seed(1)))
    assert torch.equal(q(x[:10]).log_prob(theta[:10]), q.log_prob(theta[:10], x[:10]))
    assert torch.equal(q(x[0]).log_prob(theta[:10]), q.log_prob(theta[:10], x[0]))
    with pytest.raises(ValueError, match=r"context must have shape \(\*, 3\)"):
        q(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="does not broadcast"):
        q(x[:4]).log_prob(theta[:3])
