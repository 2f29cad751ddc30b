"""Posteriors as torch distributions, and the failures that must be clear errors (#12, #14).

Each test of a failure failed before its fix: a NaN network came back from training, plain
torch priors crashed inside ``log_prob``, NPE rejection ran for minutes, broken posteriors
gave plausible ranks, absurd sizes started allocating, mismatched rows reached broadcasting.
"""

from __future__ import annotations

import math
import time

import pytest
import torch
from torch import nn
from torch.distributions import Distribution, Independent, Uniform

from sbi_course.density import build_estimator
from sbi_course.diagnostics import expected_coverage, hpd_levels, predictive_quantile, sbc_ranks
from sbi_course.inference import NPE, NRE, NPEPosterior, UnnormalizedPosterior, train
from sbi_course.inference.nle import LikelihoodPosterior
from sbi_course.priors import BoxUniform, in_support, sample_prior


def _estimator(theta_shift: float = 0.0, seed: int = 0):
    """An untrained conditional Gaussian of theta (2-D) given x (2-D), z-scored on data whose
    theta is centred at ``theta_shift``."""
    g = torch.Generator().manual_seed(seed)
    theta = 0.3 * torch.randn(500, 2, generator=g) + theta_shift
    x = torch.randn(500, 2, generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build_estimator("gaussian", theta, x, hidden_features=8)


BOX = BoxUniform(-torch.ones(2), torch.ones(2))


def test_npe_posterior_batches_over_observations_and_serves_as_a_prior(generator):
    posterior = NPEPosterior(_estimator(), BOX, torch.randn(3, 2, generator=generator))
    assert isinstance(posterior, Distribution)
    assert posterior.batch_shape == (3,) and posterior.event_shape == (2,)
    samples = posterior.sample((40,), generator=generator)
    assert samples.shape == (40, 3, 2) and bool(in_support(BOX, samples).all())
    assert posterior.log_prob(samples).shape == (40, 3)
    assert posterior.unnormalized_log_prob(torch.tensor([5.0, 0.0])).eq(-math.inf).all()
    # One observation: batch_shape (); usable where a prior is expected.
    single = NPEPosterior(_estimator(), BOX, torch.zeros(2))
    assert single.batch_shape == () and single.sample((5,), generator=generator).shape == (5, 2)
    assert sample_prior(single, 7, generator=generator).shape == (7, 2)
    assert in_support(single, torch.tensor([[0.0, 0.0], [3.0, 0.0]])).tolist() == [True, False]
    NPE(single, density_estimator="gaussian")  # a posterior is a valid prior of a next round


def test_batched_sbc_and_coverage_match_the_loop_in_shape(generator):
    estimator = _estimator()
    theta = BOX.sample((12,), generator=generator)
    x = theta + 0.1 * torch.randn(12, 2, generator=generator)

    def factory(x_o):
        return NPEPosterior(estimator, BOX, x_o, num_normalization_samples=100)

    looped = sbc_ranks(factory, theta, x, 20, generator=torch.Generator().manual_seed(0))
    batched = sbc_ranks(factory, theta, x, 20, generator=generator, batch_size=5)
    assert looped.shape == batched.shape == (12, 2)
    levels = hpd_levels(factory, theta, x, 30, generator=generator, batch_size=5)
    assert levels.shape == (12,) and ((levels >= 0) & (levels <= 1)).all()
    # NLE-like posteriors read several rows as independent observations: refused.
    iid = lambda x_o: UnnormalizedPosterior(lambda t: t[:, 0], BOX, x_o)  # noqa: E731
    with pytest.raises(ValueError, match="batch_shape"):
        sbc_ranks(iid, theta, x, 20, generator=generator, batch_size=4)


def test_training_that_diverges_is_an_error_not_nan_weights(generator):
    model = nn.Linear(2, 1)
    data = torch.randn(64, 2, generator=generator)
    with pytest.raises(RuntimeError, match="diverged.*learning_rate"):
        train(
            model,
            lambda v: model(v).mean() * math.nan,
            (data,),
            max_num_epochs=3,
            show_progress=False,
            generator=generator,
        )


def test_plain_torch_priors_work_everywhere(generator):
    prior = Independent(Uniform(-torch.ones(2), torch.ones(2)), 1)  # validates its arguments
    theta = torch.tensor([[0.0, 0.5], [2.0, 0.0], [math.nan, 0.0]])
    assert in_support(prior, theta).tolist() == [True, False, False]
    posterior = NPEPosterior(_estimator(), prior, torch.zeros(2))
    assert posterior.sample((20,), generator=generator).shape == (20, 2)
    assert posterior.log_prob(theta[:2])[1] == -math.inf
    unnormalized = UnnormalizedPosterior(
        lambda t: -(t**2).sum(-1), prior, num_chains=4, warmup_steps=4
    )
    assert unnormalized.unnormalized_log_prob(theta)[1:].eq(-math.inf).all()
    assert unnormalized.sample((8,), generator=generator).shape == (8, 2)
    with pytest.raises(NotImplementedError, match="unnormalized_log_prob"):
        unnormalized.log_prob(theta)


def test_npe_rejection_fails_fast_with_the_likely_causes(generator):
    # Trained on theta near 10, the estimator puts no mass inside the prior box [-1, 1]^2.
    posterior = NPEPosterior(_estimator(theta_shift=10.0), BOX, torch.zeros(2))
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="Likely causes: x_o in other units"):
        posterior.sample((1000,), generator=generator)
    assert posterior.num_proposed <= 200_100  # stopped after two batches, not 10^7 proposals
    assert time.perf_counter() - start < 30  # generous on a busy machine (was minutes)
    with pytest.raises(ValueError, match="max_proposals"):
        posterior.sample((10**8,), generator=generator)
    broken = _estimator()
    with torch.no_grad():
        for parameter in broken.parameters():
            parameter.fill_(math.nan)
    with pytest.raises(RuntimeError, match="NaN"):
        NPEPosterior(broken, BOX, torch.zeros(2)).sample((10,), generator=generator)


def test_diagnostics_refuse_broken_posteriors_and_drop_failed_simulations(generator):
    theta = torch.randn(6, 1, generator=generator)
    x = theta + torch.randn(6, 1, generator=generator)

    def sampler(x_o, n, generator):
        out = x_o / 2 + torch.randn(n, 1, generator=generator)
        return out * math.nan if float(x_o) == float(x[3]) else out

    with pytest.raises(ValueError, match="NaN or inf samples for row 3"):
        sbc_ranks(sampler, theta, x, 10, generator=generator)
    x_failed = x.clone()
    x_failed[[1, 3]] = math.nan
    with pytest.warns(UserWarning, match="dropped 2 of 6 simulations"):
        ranks = sbc_ranks(sampler, theta, x_failed, 10, generator=generator)
    assert ranks.shape == (4, 1)

    def factory(x_o):
        return NPEPosterior(_estimator(), BOX, torch.cat([x_o, x_o]))

    with pytest.raises(ValueError, match="num_posterior_samples must be a positive integer"):
        expected_coverage(factory, theta.repeat(1, 2), x.repeat(1, 2), 0)


def test_absurd_sizes_and_mismatched_rows_are_refused_up_front(generator):
    posterior = LikelihoodPosterior(_estimator(), BOX, torch.zeros(2), num_chains=4)
    with pytest.raises(MemoryError, match="sample_shape"):
        posterior.sample((10**9,), generator=generator)
    theta = BOX.sample((64,), generator=generator)
    x = theta + 0.1 * torch.randn(64, 2, generator=generator)
    with pytest.raises(MemoryError, match="num_atoms"):
        NRE(BOX, num_atoms=10**6).train(theta, x, generator=generator, show_progress=False)
    nre = NRE(BOX, hidden_features=8)
    nre.train(theta, x, generator=generator, max_num_epochs=1, show_progress=False)
    with pytest.raises(ValueError, match=r"as many rows as theta \(5\)"):
        nre.log_ratio(theta[:5], x[:3])
    with pytest.raises(ValueError, match="one observation x_o"):
        predictive_quantile(x, x[:2])
