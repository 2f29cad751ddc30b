"""FMPE and the continuous-flow machinery, checked against known answers.

Fast tests put the *exact* marginal velocity of a Gaussian target into the package's sampler
and density code, so that the ODE solvers, the divergence (exact and Hutchinson), the
z-scoring and the prior truncation are checked to tight tolerances without training. The slow
tests train small networks (two moons, gaussian_linear) and compare with exact posteriors.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from sbi_course import tasks
from sbi_course.diagnostics import c2st
from sbi_course.inference import FMPE, FMPEPosterior
from sbi_course.inference.continuous_flow import ContinuousFlowPosterior, flow_log_prob
from sbi_course.inference.fmpe import flow_matching_loss
from sbi_course.inference.vector_field import TimeEmbedding, VectorFieldNet
from sbi_course.priors import BoxUniform


def gaussian_velocity(mean: torch.Tensor, cov: torch.Tensor):
    """The exact flow-matching velocity (sigma_min = 0) for the target N(mean, cov).

    With theta_t = (1 - t) z + t theta: E[theta_t] = t m, Cov = (1 - t)^2 I + t^2 S, and
    Cov(theta - z, theta_t) = t S - (1 - t) I, so v*(u) = m + (t S - (1 - t) I) V_t^{-1} (u - t m).
    """
    eye = torch.eye(mean.shape[0], dtype=mean.dtype)

    def velocity(u, s, context):
        t = s.to(u.dtype)[:, None, None]  # one time per row (the adaptive solver's rows differ)
        v_t = (1 - t) ** 2 * eye + t**2 * cov
        gain = (t * cov - (1 - t) * eye) @ torch.linalg.inv(v_t)
        centred = u - t[:, :, 0] * mean
        return mean + (gain @ centred[:, :, None])[:, :, 0]

    return velocity


def identity_net(dim: int, x_dim: int = 1) -> VectorFieldNet:
    return VectorFieldNet(dim, x_dim, hidden_features=4, num_blocks=1)


MEAN = torch.tensor([0.5, -1.0])
COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]])


def test_flow_matching_loss_at_the_optimum_is_pi_over_two():
    # theta ~ N(0, 1): the optimal velocity is ((2t - 1) / (2t^2 - 2t + 1)) theta_t, and the
    # minimum loss (the mean conditional variance of the target) is pi / 2.
    g = torch.Generator().manual_seed(0)
    n = 400_000
    theta = torch.randn(n, 1, generator=g, dtype=torch.float64)
    z = torch.randn(n, 1, generator=g, dtype=torch.float64)
    t = torch.rand(n, generator=g, dtype=torch.float64)
    x = torch.zeros(n, 1, dtype=torch.float64)

    def optimal(u, t, x):
        return (2 * t - 1)[:, None] / (2 * t**2 - 2 * t + 1)[:, None] * u

    loss = float(flow_matching_loss(optimal, theta, x, t, z))
    assert abs(loss - math.pi / 2) < 0.01
    # Any other field scores worse (here: off by a constant 0.3 -> + 0.09).
    worse = float(flow_matching_loss(lambda u, t, x: optimal(u, t, x) + 0.3, theta, x, t, z))
    assert worse - loss == pytest.approx(0.09, abs=0.01)


@pytest.mark.parametrize("method", ["dopri5", "euler"])
def test_exact_velocity_transports_noise_to_the_target(method):
    net = identity_net(2)
    prior = BoxUniform(-20 * torch.ones(2), 20 * torch.ones(2))
    posterior = ContinuousFlowPosterior(
        net, gaussian_velocity(MEAN, COV), prior, torch.zeros(1), method=method, num_steps=200
    )
    samples = posterior.sample((20_000,), generator=torch.Generator().manual_seed(1))
    assert samples.shape == (20_000, 2)
    assert torch.allclose(samples.mean(0), MEAN, atol=0.03)
    assert torch.allclose(torch.cov(samples.T), COV, atol=0.04)


def test_log_prob_of_the_exact_flow_is_the_gaussian_density():
    net = identity_net(2)
    prior = BoxUniform(-20 * torch.ones(2), 20 * torch.ones(2))
    posterior = ContinuousFlowPosterior(net, gaussian_velocity(MEAN, COV), prior, torch.zeros(1))
    theta = torch.tensor([[0.5, -1.0], [1.5, 0.0], [-1.0, -2.0]])
    expected = torch.distributions.MultivariateNormal(MEAN, COV).log_prob(theta)
    log_q = posterior.log_prob(theta, normalize=False)
    assert torch.allclose(log_q, expected, atol=1e-3)
    # Hutchinson's estimate is unbiased: the mean over noise draws approaches the exact value.
    u = theta.repeat(400, 1)
    context = torch.zeros(u.shape[0], 0)
    hutch = flow_log_prob(gaussian_velocity(MEAN, COV), u, context, hutchinson=True)
    hutch = hutch.reshape(400, 3)
    standard_error = hutch.std(0) / math.sqrt(400)
    assert ((hutch.mean(0) - expected).abs() < 4 * standard_error).all()
    assert hutch.std(0).min() > 0.01  # it is an estimate, not the exact value


def test_log_prob_integrates_to_one_inside_a_truncating_prior():
    # Target N(MEAN, COV) cut by the prior to theta_1 > 0.5 (half of its mass): samples stay
    # inside, the acceptance rate is 1/2 and the normalised density still integrates to one.
    net = identity_net(2)
    prior = BoxUniform(torch.tensor([0.5, -6.0]), torch.tensor([6.0, 4.0]))
    posterior = ContinuousFlowPosterior(
        net, gaussian_velocity(MEAN, COV), prior, torch.zeros(1), num_normalization_samples=4000
    )
    g = torch.Generator().manual_seed(2)
    samples = posterior.sample((4000,), generator=g)
    assert bool((samples[:, 0] > 0.5).all())
    assert abs(posterior.acceptance_rate - 0.5) < 0.03
    a = torch.linspace(0.5, 5.0, 46)
    b = torch.linspace(-5.0, 3.0, 81)
    grid = torch.cartesian_prod(a + 0.05, b + 0.05)  # cell centres, 0.1 x 0.1
    mass = posterior.log_prob(grid).exp().sum() * 0.01
    assert abs(float(mass) - 1.0) < 0.04
    assert posterior.log_prob(torch.tensor([0.0, 0.0])).isinf().all()


def test_batched_observations_follow_the_distribution_interface():
    net = identity_net(2, x_dim=3)
    prior = BoxUniform(-20 * torch.ones(2), 20 * torch.ones(2))
    velocity = gaussian_velocity(MEAN, COV)
    single = ContinuousFlowPosterior(net, velocity, prior, torch.zeros(3), method="euler")
    assert single.batch_shape == () and single.event_shape == (2,)
    g = torch.Generator().manual_seed(0)
    assert single.sample((5,), generator=g).shape == (5, 2)
    assert single.sample((2, 3), generator=g).shape == (2, 3, 2)
    assert single.log_prob(torch.zeros(4, 2)).shape == (4,)
    batched = ContinuousFlowPosterior(net, velocity, prior, torch.zeros(4, 3), method="euler")
    assert batched.batch_shape == (4,)
    assert batched.sample((5,), generator=g).shape == (5, 4, 2)
    assert batched.log_prob(torch.zeros(6, 4, 2)).shape == (6, 4)
    assert batched.log_prob(torch.zeros(2)).shape == (4,)
    with pytest.raises(ValueError, match="shape"):
        ContinuousFlowPosterior(net, velocity, prior, torch.zeros(2))
    with pytest.raises(ValueError, match="broadcast"):
        batched.log_prob(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="method"):
        ContinuousFlowPosterior(net, velocity, prior, torch.zeros(3), method="rk45")


def test_time_embedding_and_network_shapes():
    embedding = TimeEmbedding(num_frequencies=4)
    assert embedding(torch.rand(7)).shape == (7, 9)
    net = VectorFieldNet(3, 5, hidden_features=16, num_blocks=2)
    assert net(torch.zeros(7, 3), torch.rand(7), torch.zeros(7, 5)).shape == (7, 3)
    with pytest.raises(ValueError, match="num_frequencies"):
        TimeEmbedding(num_frequencies=0)


def small_fmpe_run(seed: int):
    task = tasks.get("two_moons")
    g = torch.Generator().manual_seed(seed)
    theta, x = task.sample_joint(300, generator=g)
    fmpe = FMPE(task.prior, hidden_features=16, num_blocks=1)
    history = fmpe.train(theta, x, generator=g, max_num_epochs=3, show_progress=False)
    samples = fmpe.posterior(x[0], method="euler", num_steps=10).sample((50,), generator=g)
    return history, samples


def test_same_seed_same_numbers():
    history_a, samples_a = small_fmpe_run(3)
    history_b, samples_b = small_fmpe_run(3)
    assert history_a.train_loss == history_b.train_loss
    assert torch.equal(samples_a, samples_b)
    _, samples_c = small_fmpe_run(4)
    assert not torch.equal(samples_a, samples_c)


def test_fmpe_checks_its_inputs_and_drops_nan_rows():
    task = tasks.get("two_moons")
    fmpe = FMPE(task.prior, hidden_features=8, num_blocks=1)
    with pytest.raises(RuntimeError, match="train"):
        fmpe.posterior(torch.zeros(2))
    theta, x = task.sample_joint(100, generator=torch.Generator().manual_seed(0))
    x_nan = x.clone()
    x_nan[:7] = float("nan")
    with pytest.warns(UserWarning, match="dropped 7 of 100"):
        fmpe.train(theta, x_nan, max_num_epochs=1, show_progress=False)
    with pytest.raises(ValueError, match=r"theta for FMPE.train must have shape \(N, 2\)"):
        fmpe.train(theta[:, :1], x, max_num_epochs=1, show_progress=False)
    with pytest.raises(ValueError, match="generator"):
        fmpe.train(theta, x, generator=0, show_progress=False)
    with pytest.raises(ValueError, match="sigma_min"):
        FMPE(task.prior, sigma_min=1.0)
    assert isinstance(fmpe.posterior(torch.zeros(2)), FMPEPosterior)


# --- trained networks (slow) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def two_moons_fmpe():
    task = tasks.get("two_moons")
    g = torch.Generator().manual_seed(0)
    theta, x = task.sample_joint(500, generator=g)
    fmpe = FMPE(task.prior, hidden_features=64, num_blocks=2)
    fmpe.train(theta, x, generator=g, show_progress=False)
    return task, theta, x, fmpe


@pytest.mark.slow
def test_two_moons_log_prob_integrates_to_one_and_matches_the_samples(two_moons_fmpe):
    task, _, _, fmpe = two_moons_fmpe
    x_o = task.simulate(torch.tensor([0.2, -0.1]), generator=torch.Generator().manual_seed(5))
    posterior = fmpe.posterior(x_o, num_normalization_samples=1000)
    samples = posterior.sample((4000,), generator=torch.Generator().manual_seed(6))
    lo, hi = samples.min(0).values - 0.1, samples.max(0).values + 0.1
    cells = 36
    a = torch.linspace(float(lo[0]), float(hi[0]), cells + 1)
    b = torch.linspace(float(lo[1]), float(hi[1]), cells + 1)
    da, db = float(a[1] - a[0]), float(b[1] - b[0])
    grid = torch.cartesian_prod(a[:-1] + da / 2, b[:-1] + db / 2)
    density = posterior.log_prob(grid, normalize=False).exp()
    mass = float(density.sum()) * da * db
    assert abs(mass - 1.0) < 0.08
    # The density's cell probabilities agree with the sample histogram (total variation).
    hist = torch.histogramdd(samples, bins=[a, b]).hist.reshape(-1) / len(samples)
    tv = 0.5 * float((hist - density * da * db / mass).abs().sum())
    assert tv < 0.15


@pytest.mark.slow
def test_gaussian_linear_matches_the_exact_posterior():
    task = tasks.get("gaussian_linear")
    g = torch.Generator().manual_seed(0)
    theta, x = task.sample_joint(2000, generator=g)
    fmpe = FMPE(task.prior, hidden_features=64, num_blocks=2)
    fmpe.train(theta, x, generator=g, show_progress=False)
    x_o = task.simulate(torch.full((task.theta_dim,), 0.3), generator=g)
    reference = task.reference_posterior(x_o, 2000, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        samples = fmpe.posterior(x_o).sample((2000,), generator=g)
    assert (samples.mean(0) - reference.mean(0)).abs().max() < 0.1
    # The exact posterior has covariance 0.05 I (standard deviations 0.22).
    ref_std, std = reference.std(0), samples.std(0)
    assert ((std / ref_std) - 1).abs().max() < 0.25
    assert c2st(reference, samples) < 0.65
