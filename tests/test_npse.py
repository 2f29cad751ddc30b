"""NPSE (score-based posterior estimation with a VP SDE), checked against known answers.

With the exact score of a Gaussian target plugged into the package's NPSE, the
probability-flow ODE and the reverse SDE must both reproduce the target, and the ODE's
log-density must be the noised target's Gaussian density at ``t_min``. A slow test trains a
small network on two moons and checks that the two samplers agree.
"""

from __future__ import annotations

import pytest
import torch

from sbi_course import tasks
from sbi_course.diagnostics import c2st
from sbi_course.inference import NPSE, NPSEPosterior
from sbi_course.inference.npse import VPSDE, denoising_score_matching_loss
from sbi_course.inference.vector_field import VectorFieldNet
from sbi_course.priors import BoxUniform

MEAN = torch.tensor([0.5, -1.0])
COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]])


class ExactNoisePredictor(VectorFieldNet):
    """The optimal noise prediction for the target N(MEAN, COV) under a VP SDE:
    p_t = N(alpha m, alpha^2 S + sigma^2 I), eps* = -sigma * score = sigma (cov_t)^-1 (u - alpha m).
    """

    def __init__(self, sde: VPSDE):
        super().__init__(2, 1, hidden_features=4, num_blocks=1)
        self.sde = sde

    def forward(self, u, t, x, embedded=False):
        t = torch.as_tensor(t, dtype=u.dtype).expand(u.shape[0])
        alpha, sigma = self.sde.alpha(t)[:, None, None], self.sde.sigma(t)[:, None, None]
        cov_t = alpha**2 * COV + sigma**2 * torch.eye(2)
        centred = (u - alpha[:, :, 0] * MEAN)[:, :, None]
        return (sigma * torch.linalg.solve(cov_t, centred))[:, :, 0]


def exact_npse() -> NPSE:
    prior = BoxUniform(-20 * torch.ones(2), 20 * torch.ones(2))
    npse = NPSE(prior)
    npse.net = ExactNoisePredictor(npse.sde)
    return npse


def test_vp_sde_marginals():
    sde = VPSDE()
    t = torch.tensor([0.0, 0.5, 1.0])
    assert torch.allclose(sde.alpha(t) ** 2 + sde.sigma(t) ** 2, torch.ones(3))
    assert float(sde.alpha(torch.tensor(1.0))) < 0.01  # the end point is (almost) N(0, I)
    assert float(sde.time(torch.tensor(0.0))) == 1.0
    assert float(sde.time(torch.tensor(1.0))) == pytest.approx(sde.t_min, rel=1e-4)
    with pytest.raises(ValueError, match="beta_min"):
        VPSDE(beta_min=2.0, beta_max=1.0)


def test_denoising_loss_is_smallest_at_the_exact_noise_predictor():
    npse = exact_npse()
    g = torch.Generator().manual_seed(0)
    theta = torch.distributions.MultivariateNormal(MEAN, COV).sample((20_000,))
    t = npse.sde.t_min + (1 - npse.sde.t_min) * torch.rand(20_000, generator=g)
    z = torch.randn(20_000, 2, generator=g)
    x = torch.zeros(20_000, 1)
    best = float(denoising_score_matching_loss(npse.net, npse.sde, theta, x, t, z))

    def shrunk(u, t, x):
        return 0.8 * npse.net(u, t, x)

    worse = float(denoising_score_matching_loss(shrunk, npse.sde, theta, x, t, z))
    assert best < worse - 0.02
    assert 0.0 < best < 2.0  # the residual variance: 0 would mean the noise is identifiable


@pytest.mark.parametrize("sampler", ["ode", "sde"])
def test_exact_score_samplers_reproduce_the_target(sampler):
    posterior = exact_npse().posterior(torch.zeros(1), sampler=sampler, num_steps=200)
    assert isinstance(posterior, NPSEPosterior)
    samples = posterior.sample((10_000,), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(samples.mean(0), MEAN, atol=0.05)
    assert torch.allclose(torch.cov(samples.T), COV, atol=0.06)


def test_probability_flow_ode_and_reverse_sde_give_the_same_distribution():
    npse = exact_npse()
    g = torch.Generator().manual_seed(2)
    ode = npse.posterior(torch.zeros(1), sampler="ode").sample((2000,), generator=g)
    sde = npse.posterior(torch.zeros(1), sampler="sde", num_steps=200).sample((2000,), generator=g)
    assert c2st(ode, sde) < 0.55


def test_log_prob_is_the_noised_gaussian_density():
    npse = exact_npse()
    posterior = npse.posterior(torch.zeros(1))
    theta = torch.tensor([[0.5, -1.0], [1.5, 0.0], [-1.0, -2.0]])
    t_min = torch.tensor(npse.sde.t_min)
    alpha, sigma = npse.sde.alpha(t_min), npse.sde.sigma(t_min)
    noised = torch.distributions.MultivariateNormal(
        alpha * MEAN, alpha**2 * COV + sigma**2 * torch.eye(2)
    )
    # The ODE starts from N(0, I), while p_1 is N(alpha_1 m, ...) with alpha_1 = 0.0066: an
    # error of about alpha_1 |m| |u| < 0.02 in the log-density, no more.
    assert torch.allclose(
        posterior.log_prob(theta, normalize=False), noised.log_prob(theta), atol=0.02
    )
    with pytest.raises(ValueError, match="sampler"):
        npse.posterior(torch.zeros(1), sampler="langevin")


def test_same_seed_same_numbers():
    task = tasks.get("gaussian_linear")  # a Gaussian prior: no draw is rejected

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        theta, x = task.sample_joint(300, generator=g)
        npse = NPSE(task.prior, hidden_features=16, num_blocks=1)
        npse.train(theta, x, generator=g, max_num_epochs=2, show_progress=False)
        post = npse.posterior(x[0], method="euler", num_steps=10)
        return post.sample((50,), generator=g)

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


@pytest.mark.slow
def test_trained_npse_ode_and_sde_agree_on_two_moons():
    task = tasks.get("two_moons")
    g = torch.Generator().manual_seed(0)
    theta, x = task.sample_joint(1000, generator=g)
    npse = NPSE(task.prior, hidden_features=64, num_blocks=2)
    npse.train(theta, x, generator=g, show_progress=False)
    x_o = task.simulate(torch.tensor([0.2, -0.1]), generator=g)
    ode = npse.posterior(x_o, sampler="ode").sample((2000,), generator=g)
    sde = npse.posterior(x_o, sampler="sde", num_steps=200).sample((2000,), generator=g)
    reference = task.reference_posterior(x_o, 2000, generator=g)
    assert c2st(ode, sde) < 0.65  # 200 Euler-Maruyama steps leave a small bias
    assert c2st(reference, ode) < 0.9  # measured 0.84: 10^3 simulations leave it blurred
