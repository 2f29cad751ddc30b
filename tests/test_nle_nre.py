"""NLE and NRE: exact answers on a conjugate Gaussian model, C2ST on gaussian_linear.

Fast tests use a 2-D model, theta ~ N(0, I), x ~ N(theta, 0.25 I), whose posterior for K
independent observations is Gaussian with precision 1 + 4K and mean 4 * sum(x) / (1 + 4K).
The slow tests train on sbibm's gaussian_linear (10-D) and compare with its exact posterior.
"""

from __future__ import annotations

import math

import pytest
import torch

from sbi_course.density import Standardize
from sbi_course.diagnostics import c2st
from sbi_course.inference.nle import NLE
from sbi_course.inference.nre import NRE, RatioEstimator, nre_loss
from sbi_course.priors import GaussianPrior
from sbi_course.simulators import gaussian_linear

PRIOR = GaussianPrior(torch.zeros(2), torch.eye(2))
NOISE_VARIANCE = 0.25


def simulate(theta, generator):
    return theta + math.sqrt(NOISE_VARIANCE) * torch.randn(theta.shape, generator=generator)


def exact_posterior(x_o):
    """Mean (2,) and standard deviation of the posterior for x_o of shape (K, 2)."""
    precision = 1 + x_o.shape[0] / NOISE_VARIANCE
    return x_o.sum(0) / NOISE_VARIANCE / precision, 1 / math.sqrt(precision)


@pytest.fixture(scope="module")
def simulations():
    g = torch.Generator().manual_seed(0)
    theta = PRIOR.sample((2000,), generator=g)
    return theta, simulate(theta, g)


# Network weights are initialised from torch's global generator: seed it inside a fork, so
# that the results do not depend on which tests ran before.


@pytest.fixture(scope="module")
def trained_nle(simulations):
    theta, x = simulations
    with torch.random.fork_rng():
        torch.manual_seed(0)
        nle = NLE(PRIOR, density_estimator="gaussian")
        nle.train(theta, x, generator=torch.Generator().manual_seed(1), show_progress=False)
    return nle


@pytest.fixture(scope="module")
def trained_nre(simulations):
    theta, x = simulations
    with torch.random.fork_rng():
        torch.manual_seed(0)
        nre = NRE(PRIOR)
        nre.train(theta, x, generator=torch.Generator().manual_seed(1), show_progress=False)
    return nre


MCMC = dict(num_chains=50, warmup_steps=30)


@pytest.mark.parametrize("method", ["nle", "nre"])
@pytest.mark.parametrize("num_observations", [1, 5])
def test_posterior_matches_the_exact_one(
    method, num_observations, trained_nle, trained_nre, generator
):
    x_o = simulate(torch.tensor([[0.5, -0.5]]).expand(num_observations, 2), generator)
    mean, std = exact_posterior(x_o)
    trained = trained_nle if method == "nle" else trained_nre
    posterior = trained.posterior(x_o if num_observations > 1 else x_o[0], **MCMC)
    samples = posterior.sample((2000,), generator=generator)
    assert samples.shape == (2000, 2)
    # Errors of the learned likelihood (or ratio) add up over K observations.
    tolerance = 0.15 if method == "nle" and num_observations == 1 else 0.25
    assert torch.allclose(samples.mean(0), mean, atol=tolerance * std + 0.02)
    assert torch.allclose(samples.std(0), torch.full((2,), std), rtol=tolerance)
    assert (posterior.mcmc_result.rhat < 1.1).all()


def test_log_prob_is_the_unnormalised_potential(trained_nle):
    x_o = torch.tensor([0.3, 0.1])
    mean, std = exact_posterior(x_o[None])
    posterior = trained_nle.posterior(x_o)
    theta = torch.stack([mean, mean + std, mean - 2 * std])
    log_q = posterior.log_prob(theta)
    # Differences of log-densities are those of the exact Gaussian posterior: 0, -1/2 * 2, ...
    exact = -0.5 * ((theta - mean) ** 2).sum(1) / std**2
    assert torch.allclose(log_q - log_q[0], exact - exact[0], rtol=0.15, atol=0.1)


def test_same_seed_same_samples(trained_nre):
    posterior = trained_nre.posterior(torch.zeros(2), num_chains=10, warmup_steps=20)
    first = posterior.sample((30,), generator=torch.Generator().manual_seed(7))
    second = posterior.sample((30,), generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, second)


@pytest.mark.parametrize("method", [NLE, NRE])
def test_training_depends_on_the_generator_only(method, simulations):
    # The generator decides the initial weights, the split and the batches; the global RNG
    # (seeded differently each time) plays no part.
    theta, x = simulations
    weights = []
    for global_seed in (1, 2):
        with torch.random.fork_rng():
            torch.manual_seed(global_seed)
            inference = method(PRIOR)
            g = torch.Generator().manual_seed(3)
            inference.train(
                theta[:500], x[:500], generator=g, max_num_epochs=2, show_progress=False
            )
        weights.append(torch.cat([p.detach().flatten() for p in inference.estimator.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_nre_losses_at_a_constant_classifier(simulations):
    theta, x = simulations
    estimator = RatioEstimator(Standardize.identity(2), Standardize.identity(2), classifier="mlp")
    torch.nn.init.zeros_(estimator.net.output_layer.weight)
    torch.nn.init.zeros_(estimator.net.output_layer.bias)
    # With f = 0 every class is as likely as its prior odds say.
    with torch.no_grad():
        loss_a = nre_loss(estimator, theta[:64], x[:64], "nre_a")
        loss_b = nre_loss(estimator, theta[:64], x[:64], "nre_b", num_atoms=10)
        loss_c = nre_loss(estimator, theta[:64], x[:64], "nre_c", num_atoms=10, gamma=1.0)
    assert float(loss_a) == pytest.approx(math.log(2))
    assert float(loss_b) == pytest.approx(math.log(10))
    assert float(loss_c) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(18))


def test_nan_rows_are_dropped_with_a_warning(simulations):
    theta, x = simulations
    x = x[:200].clone()
    x[:10] = math.nan
    with pytest.warns(UserWarning, match="dropped 10 of 200"):
        NRE(PRIOR).train(theta[:200], x, max_num_epochs=1, show_progress=False)


def test_clear_errors(simulations):
    theta, x = simulations
    with pytest.raises(RuntimeError, match="train"):
        NLE(PRIOR).posterior(torch.zeros(2))
    with pytest.raises(RuntimeError, match="train"):
        NRE(PRIOR).posterior(torch.zeros(2))
    with pytest.raises(ValueError, match=r"theta must have shape \(N, 2\)"):
        NLE(PRIOR).train(torch.zeros(10, 3), torch.zeros(10, 2))
    with pytest.raises(ValueError, match="loss"):
        NRE(PRIOR, loss="nre_z")
    with pytest.raises(ValueError, match="classifier"):
        NRE(PRIOR, classifier="transformer")
    with pytest.raises(ValueError, match="prior"):
        NLE("uniform")


def test_nle_rejects_a_wrong_observation(trained_nle):
    with pytest.raises(ValueError, match=r"x_o must have shape \(N, 2\)"):
        trained_nle.posterior(torch.zeros(3))


@pytest.mark.slow
@pytest.mark.parametrize(("method", "threshold"), [("nle", 0.62), ("nre", 0.64)])
def test_gaussian_linear_c2st(method, threshold):
    """1,000 simulations; sbibm's mean C2ST at 10^3 is .650 (NLE) and .672 (NRE).

    Only 1,000 posterior samples are compared here (sbibm: 10,000), which lowers C2ST: with
    this seed NLE scores about 0.54, NRE 0.55, and the prior itself 0.86.
    """
    g = torch.Generator().manual_seed(0)
    prior = gaussian_linear.prior()
    theta = prior.sample((1000,), generator=g)
    x = gaussian_linear.simulate(theta, generator=g)
    x_o = gaussian_linear.simulate(prior.sample((1,), generator=g), generator=g)[0]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        trained = NLE(prior) if method == "nle" else NRE(prior)
        trained.train(theta, x, generator=g, show_progress=False)
    samples = trained.posterior(x_o, num_chains=100, warmup_steps=50).sample((1000,), generator=g)
    reference = gaussian_linear.sample_posterior(x_o, 1000, generator=g)
    assert c2st(reference, samples) < threshold


@pytest.mark.parametrize("method", ["NPE", "NLE", "NRE"])
def test_every_method_rejects_a_bad_prior_by_name(method):
    from sbi_course.inference import NPE

    cls = {"NPE": NPE, "NLE": NLE, "NRE": NRE}[method]
    with pytest.raises(ValueError, match=f"{method} needs a prior"):
        cls(torch.zeros(2))
    with pytest.raises(ValueError, match=f"{method} needs a prior"):
        cls(torch.distributions.Normal(0.0, 1.0))  # event shape (), not (D,)
    if method != "NRE":
        with pytest.raises(ValueError, match="density_estimator must be a name"):
            cls(PRIOR, density_estimator=42)


@pytest.mark.parametrize("method", ["NPE", "NLE"])
def test_an_estimator_of_the_wrong_dimensions_is_refused(method):
    from sbi_course.density import ConditionalGaussian
    from sbi_course.inference import NPE

    theta, x = torch.zeros(20, 2), torch.zeros(20, 3)
    wrong = ConditionalGaussian(2, 2, num_layers=0)  # 2 given 2, but the data are 2 and 3
    cls, modelled = {"NPE": (NPE, "parameters theta"), "NLE": (NLE, "data x")}[method]
    with pytest.raises(ValueError, match=rf"the {method} estimator models {modelled} of dim"):
        cls(PRIOR, density_estimator=wrong).train(theta, x, max_num_epochs=1)

    # A built estimator refuses data of another dimension in a later call.
    trained = cls(PRIOR, density_estimator="gaussian_diag")
    trained.train(theta, x, max_num_epochs=1, show_progress=False)
    with pytest.raises(ValueError, match=r"shape \(20, 4\)"):
        trained.train(theta, torch.zeros(20, 4), max_num_epochs=1)
