"""MCMC: known densities are reproduced, diagnostics mean what they say, seeds reproduce."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import (
    Categorical,
    Independent,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
)

from sbi_course.inference.mcmc import (
    MCMCPosterior,
    effective_sample_size,
    initial_chains,
    rhat,
    run_mcmc,
)
from sbi_course.priors import BoxUniform

MEAN = torch.tensor([1.0, -2.0])
COV = torch.tensor([[1.0, 1.8], [1.8, 4.0]])  # correlation 0.9
TARGET = MultivariateNormal(MEAN, COV)
BOX = BoxUniform(-10 * torch.ones(2), 10 * torch.ones(2))


@pytest.mark.parametrize(
    ("method", "warmup_steps", "thin"), [("slice", 50, 1), ("mh", 200, 5)], ids=["slice", "mh"]
)
def test_correlated_gaussian(method, warmup_steps, thin, generator):
    init = initial_chains(TARGET.log_prob, BOX, 50, generator=generator)
    result = run_mcmc(
        TARGET.log_prob,
        init,
        200,
        method=method,
        warmup_steps=warmup_steps,
        thin=thin,
        generator=generator,
    )
    samples = result.samples
    assert samples.shape == (10_000, 2)
    assert result.chains.shape == (50, 200, 2) and result.log_prob.shape == (50, 200)
    assert torch.allclose(samples.mean(0), MEAN, atol=0.15)
    assert torch.allclose(torch.cov(samples.T), COV, rtol=0.1, atol=0.1)
    assert (result.rhat < 1.05).all()
    assert (result.ess > 1000).all()
    if method == "mh":
        assert 0.1 < result.acceptance_rate < 0.5
    else:
        assert result.acceptance_rate == 1.0


def test_bimodal_mixture_finds_both_modes_with_their_weights(generator):
    weights = torch.tensor([0.3, 0.7])
    means = torch.tensor([[-3.0, -3.0], [3.0, 3.0]])
    mixture = MixtureSameFamily(Categorical(weights), Independent(Normal(means, 0.5), 1))
    init = initial_chains(mixture.log_prob, BOX, 200, generator=generator)
    result = run_mcmc(mixture.log_prob, init, 50, warmup_steps=30, generator=generator)
    share_upper = float((result.samples[:, 0] > 0).float().mean())
    assert share_upper == pytest.approx(0.7, abs=0.08)
    upper = result.samples[result.samples[:, 0] > 0]
    assert torch.allclose(upper.mean(0), means[1], atol=0.1)
    assert torch.allclose(upper.std(0), torch.full((2,), 0.5), atol=0.07)
    # Chains stay in their mode: R-hat correctly says that the chains disagree.
    assert result.rhat.max() > 1.5


def test_truncated_target_respects_support(generator):
    # A standard normal restricted to theta > 0 (a half-normal): mean sqrt(2 / pi).
    def log_prob(theta):
        lp = Normal(0.0, 1.0).log_prob(theta).sum(-1)
        return torch.where(theta[:, 0] > 0, lp, torch.full_like(lp, -math.inf))

    result = run_mcmc(log_prob, torch.full((100, 1), 0.5), 100, generator=generator)
    assert (result.samples > 0).all()
    assert float(result.samples.mean()) == pytest.approx(math.sqrt(2 / math.pi), abs=0.05)


def test_same_seed_same_chains():
    init = torch.zeros(10, 2)
    runs = [
        run_mcmc(
            TARGET.log_prob, init, 20, warmup_steps=10, generator=torch.Generator().manual_seed(5)
        )
        for _ in range(2)
    ]
    assert torch.equal(runs[0].chains, runs[1].chains)
    other = run_mcmc(
        TARGET.log_prob, init, 20, warmup_steps=10, generator=torch.Generator().manual_seed(6)
    )
    assert not torch.equal(runs[0].chains, other.chains)


def test_rhat_and_ess_on_known_chains(generator):
    iid = torch.randn(4, 1000, 2, generator=generator)
    assert torch.allclose(rhat(iid), torch.ones(2, dtype=torch.float64), atol=0.01)
    assert ((effective_sample_size(iid) > 3000) & (effective_sample_size(iid) < 5000)).all()
    # Chains around different means do not agree.
    shifted = iid + torch.arange(4.0).reshape(4, 1, 1)
    assert (rhat(shifted) > 1.5).all()
    # AR(1) with coefficient rho has ESS about N (1 - rho) / (1 + rho).
    rho, noise = 0.9, torch.randn(4, 4000, generator=generator)
    chain = torch.zeros(4, 4000)
    chain[:, 0] = noise[:, 0] / math.sqrt(1 - rho**2)
    for t in range(1, 4000):
        chain[:, t] = rho * chain[:, t - 1] + noise[:, t]
    expected = 16_000 * (1 - rho) / (1 + rho)
    assert float(effective_sample_size(chain)[0]) == pytest.approx(expected, rel=0.25)


@pytest.mark.parametrize("strategy", ["sir", "best", "prior"])
def test_initial_chains(strategy, generator):
    init = initial_chains(TARGET.log_prob, BOX, 30, strategy=strategy, generator=generator)
    assert init.shape == (30, 2)
    assert torch.isfinite(TARGET.log_prob(init)).all()
    if strategy != "prior":
        # Importance resampling moves the chains towards the target.
        assert float(TARGET.log_prob(init).mean()) > float(
            TARGET.log_prob(BOX.sample((30,))).mean()
        )


def test_clear_errors(generator):
    with pytest.raises(ValueError, match="method"):
        run_mcmc(TARGET.log_prob, torch.zeros(3, 2), 10, method="hmc")
    with pytest.raises(ValueError, match="zero density"):
        run_mcmc(lambda t: torch.full((t.shape[0],), -math.inf), torch.zeros(3, 2), 10)
    with pytest.raises(ValueError, match="initial_theta"):
        run_mcmc(TARGET.log_prob, torch.zeros(2), 10)
    with pytest.raises(ValueError, match="proposal draws"):
        initial_chains(lambda t: torch.full((t.shape[0],), -math.inf), BOX, 3, generator=generator)
    with pytest.raises(ValueError, match="at least 4 steps"):
        rhat(torch.zeros(3, 2, 1))


def test_mcmc_posterior(generator):
    posterior = MCMCPosterior(
        lambda theta: TARGET.log_prob(theta) + BOX.log_prob(theta),
        BOX,
        torch.zeros(1),
        num_chains=20,
        warmup_steps=30,
    )
    samples = posterior.sample((10, 30), generator=generator)
    assert samples.shape == (10, 30, 2)
    assert posterior.mcmc_result.chains.shape == (20, 15, 2)
    assert torch.allclose(posterior.log_prob(MEAN), TARGET.log_prob(MEAN) + BOX.log_prob(MEAN))
    with pytest.raises(ValueError, match="num_chains"):
        MCMCPosterior(TARGET.log_prob, BOX, torch.zeros(1), num_chains=0)
