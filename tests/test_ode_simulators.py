"""The batched ODE solver and the SIR and Lotka-Volterra simulators built on it.

Checked against closed-form solutions, against scipy's DOP853 at tight tolerances, against
exact likelihoods from scipy.stats, and against sbibm's observations and reference posteriors.
"""

from __future__ import annotations

import bz2
import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.integrate import solve_ivp

from sbi_course.simulators import lotka_volterra, sir
from sbi_course.simulators._ode import solve_batch

MODELS = [pytest.param(sir, id="sir"), pytest.param(lotka_volterra, id="lotka_volterra")]
STATE_DIM = {sir: 3, lotka_volterra: 2}


def _name(model) -> str:
    return model.__name__.rsplit(".", 1)[-1]


# --------------------------------------------------------------------------------------------
# The solver on problems with known answers


def _oscillator(t, y, omega):
    # y = (position, velocity) of a harmonic oscillator with angular frequency omega (n, 1).
    return torch.stack([y[:, 1], -(omega[:, 0] ** 2) * y[:, 0]], dim=-1)


def test_solver_matches_closed_form_at_irregular_times(generator):
    omega = 0.5 + 3 * torch.rand(50, 1, generator=generator, dtype=torch.float64)
    times = torch.cat([torch.zeros(1), torch.rand(30, generator=generator).sort().values * 10])
    times = times.double()
    sol = solve_batch(_oscillator, torch.tensor([1.0, 0.0]), times, omega, rtol=1e-8, atol=1e-10)
    expected = torch.stack([torch.cos(omega * times), -omega * torch.sin(omega * times)], dim=-1)
    assert sol.success.all()
    assert sol.y.shape == (50, 31, 2) and sol.y.dtype == torch.float64
    assert (sol.y - expected).abs().max() < 1e-5


def test_dense_output_does_not_change_the_steps():
    # The steps depend only on the ODE and the end time, not on the save times in between,
    # so asking for fewer save times gives the same values there.
    theta = lotka_volterra.prior().sample((40,), generator=torch.Generator().manual_seed(3))
    fine = lotka_volterra.solve(theta.double())
    at = torch.tensor([0.0, 3.7, 11.3, 20.0], dtype=torch.float64)
    coarse = lotka_volterra._solve(theta, at, 1e-7, 1e-20, 5000)
    assert torch.allclose(coarse[:, -1], fine[:, -1], rtol=1e-12, atol=0)
    # 3.7 and 11.3 are not on the grid: compare with a tighter solve there.
    tight = lotka_volterra._solve(theta, at, 1e-9, 1e-20, 10**5)
    assert torch.allclose(coarse, tight, rtol=1e-4, atol=0)


def test_batch_gives_the_same_answer_as_one_at_a_time():
    # Each trajectory has its own step size, so a simulation does not depend on its batch
    # (with 100 rows this also exercises the removal of finished rows from the working set).
    theta = lotka_volterra.prior().sample((100,), generator=torch.Generator().manual_seed(4))
    at = torch.tensor([0.0, 5.0, 20.0], dtype=torch.float64)
    together = lotka_volterra._solve(theta, at, 1e-7, 1e-20, 5000)
    for i in [0, 63, 99]:
        alone = lotka_volterra._solve(theta[i : i + 1], at, 1e-7, 1e-20, 5000)
        assert torch.allclose(alone[0], together[i], rtol=1e-12, atol=0)


def test_blow_up_gives_nan_row_and_others_survive():
    # dy/dt = y^2 from y0 = 1 / c blows up at t = c: the first row at t = 1, the second at 10.
    y0 = torch.tensor([[1.0], [0.1]], dtype=torch.float64)
    sol = solve_batch(lambda t, y, p: y * y, y0, torch.tensor([0.0, 0.5, 2.0]), torch.zeros(2, 1))
    assert sol.success.tolist() == [False, True]
    assert sol.y[0].isnan().all()
    exact = 1 / (10 - torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64))
    assert torch.allclose(sol.y[1, :, 0], exact, rtol=1e-5)


def test_stiffness_nan_and_exhausted_step_budget_give_nan_rows():
    # dy/dt = -p (y - cos t): p = 1e7 is stiff, and the stiffness test gives up within a few
    # dozen steps instead of spending the budget; p = NaN gives NaN at once.
    def relax(t, y, p):
        return -p * (y - torch.cos(t)[:, None])

    p = torch.tensor([[1.0], [1e7], [float("nan")]], dtype=torch.float64)
    sol = solve_batch(relax, torch.tensor([1.0]), torch.linspace(0, 5, 6), p, max_steps=1000)
    assert sol.success.tolist() == [True, False, False]
    assert sol.y[1:].isnan().all() and not sol.y[0].isnan().any()
    assert sol.num_steps[1] < 100
    # A fast oscillation is not stiff, but needs more steps than allowed.
    omega = torch.tensor([[1.0], [1e3]], dtype=torch.float64)
    sol = solve_batch(
        _oscillator, torch.tensor([1.0, 0.0]), torch.linspace(0, 5, 6), omega, max_steps=300
    )
    assert sol.success.tolist() == [True, False] and sol.y[1].isnan().all()
    assert sol.num_steps.tolist()[1] == 300


def test_solver_rejects_unsorted_times():
    with pytest.raises(ValueError, match="increasing"):
        solve_batch(_oscillator, torch.ones(2), torch.tensor([0.0, 2.0, 1.0]), torch.ones(3, 1))


# --------------------------------------------------------------------------------------------
# Accuracy against scipy


def _scipy_reference(model, theta: np.ndarray) -> np.ndarray:
    """All trajectories as one stacked system, solved by DOP853 at rtol 1e-12; (N, T, D)."""
    n = theta.shape[0]
    if model is sir:
        beta, gamma = theta.T

        def rhs(t, y):
            s, i = y[:n], y[n : 2 * n]
            infections = beta * s * i / sir.population
            return np.concatenate([-infections, infections - gamma * i, gamma * i])

    else:
        alpha, beta, gamma, delta = theta.T

        def rhs(t, y):
            prey, predators = y[:n], y[n:]
            return np.concatenate(
                [
                    alpha * prey - beta * prey * predators,
                    -gamma * predators + delta * prey * predators,
                ]
            )

    y0 = np.repeat(np.asarray(model.initial_state, dtype=float), n)
    times = model.times.numpy()
    result = solve_ivp(
        rhs, (times[0], times[-1]), y0, method="DOP853", t_eval=times, rtol=1e-12, atol=1e-30
    )
    assert result.success
    return result.y.reshape(len(model.initial_state), n, len(times)).transpose(1, 2, 0)


# Relative error |ours - scipy| / max(|scipy|, floor). The floors are far below anything the
# data can see: 1e-6 people for SIR (a binomial probability of 1e-12), and the 1e-10 at which
# Lotka-Volterra populations are clamped before the noise.
FLOOR = {sir: 1e-6, lotka_volterra: 1e-10}


@pytest.mark.parametrize("model", MODELS)
def test_solve_matches_scipy_on_1000_prior_draws(model):
    theta = model.prior().sample((1000,), generator=torch.Generator().manual_seed(2021)).double()
    ours = model.solve(theta).numpy()
    reference = _scipy_reference(model, theta.numpy())
    relative = np.abs(ours - reference) / np.maximum(np.abs(reference), FLOOR[model])
    assert relative.max() < 1e-4


# --------------------------------------------------------------------------------------------
# The simulator interface


@pytest.mark.parametrize("model", MODELS)
def test_interface_and_sbibm_definition(model):
    prior = model.prior()
    assert prior.event_shape == (model.theta_dim,)
    assert len(model.parameter_labels) == model.theta_dim
    assert model.observation_times.shape == (10,)
    if model is sir:
        assert (model.theta_dim, model.x_dim, model.times.shape) == (2, 10, (161,))
        assert model.observation_times.tolist() == list(range(0, 154, 17))
        assert torch.allclose(prior.mu, torch.tensor([math.log(0.4), math.log(0.125)]))
        assert torch.allclose(prior.sigma, torch.tensor([0.5, 0.2]))
        assert model.initial_state == (999_999.0, 1.0, 0.0) and model.num_tested == 1000
    else:
        assert (model.theta_dim, model.x_dim, model.times.shape) == (4, 20, (201,))
        assert torch.allclose(model.observation_times, torch.arange(10).double() * 2.1)
        assert torch.allclose(prior.mu, torch.tensor([-0.125, -3.0, -0.125, -3.0]))
        assert torch.allclose(prior.sigma, torch.full((4,), 0.5))
        assert model.initial_state == (30.0, 1.0)


@pytest.mark.parametrize("model", MODELS)
def test_shapes_dtypes_and_seeds(model, generator):
    theta = model.prior().sample((7,), generator=generator)
    x = model.simulate(theta, generator=torch.Generator().manual_seed(0))
    assert x.shape == (7, model.x_dim) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert torch.equal(x, model.simulate(theta, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(x, model.simulate(theta, generator=torch.Generator().manual_seed(1)))
    assert model.simulate(theta[0], generator=generator).shape == (model.x_dim,)
    assert model.simulate(theta.double()).dtype == torch.float64

    traj = model.solve(theta)
    assert traj.shape == (7, len(model.times), STATE_DIM[model]) and traj.dtype == torch.float32
    assert torch.allclose(traj[:, 0], torch.tensor(model.initial_state))
    assert model.solve(theta[0]).shape == (len(model.times), STATE_DIM[model])

    assert model.log_likelihood(theta, x).shape == (7,)
    assert model.log_likelihood(theta[0], x[0]).shape == ()
    assert model.log_likelihood(theta, x[0]).shape == (7,)  # one x_o, many theta
    assert model.log_likelihood(theta[0], x).shape == (7,)


@pytest.mark.parametrize("model", MODELS)
def test_bad_input_raises_clear_errors(model):
    name, good = _name(model), torch.ones(model.theta_dim) * 0.5
    for function in (model.simulate, model.solve):
        with pytest.raises(ValueError, match=rf"\(\*, {model.theta_dim}\).*{name}"):
            function(torch.ones(3, model.theta_dim + 1))
        with pytest.raises(ValueError, match=f"{name}.*NaN"):
            function(torch.tensor([[float("nan")] * model.theta_dim]))
        with pytest.raises(ValueError, match=f"{name}.*non-positive"):
            function(-good)
    with pytest.raises(ValueError, match=f"generator for {name}"):
        model.simulate(good, generator=0)
    with pytest.raises(ValueError, match=name):
        model.log_likelihood(good, torch.ones(model.x_dim + 1))
    with pytest.raises(ValueError, match="same number of rows"):
        model.log_likelihood(good.expand(3, -1), torch.ones(2, model.x_dim))


def test_sir_counts_and_conservation(generator):
    theta = sir.prior().sample((200,), generator=generator)
    x = sir.simulate(theta, generator=generator)
    assert ((x >= 0) & (x <= 1000) & (x == x.round())).all()
    traj = sir.solve(theta.double())
    assert torch.allclose(traj.sum(-1), torch.full((200, 161), 1e6, dtype=torch.float64))
    assert (traj >= -1e-6).all()


def test_lotka_volterra_conserves_its_first_integral(generator):
    # V = delta u1 - gamma log u1 + beta u2 - alpha log u2 is constant along every solution.
    theta = lotka_volterra.prior().sample((200,), generator=generator).double()
    u = lotka_volterra.solve(theta)
    alpha, beta, gamma, delta = (theta[:, i : i + 1] for i in range(4))
    prey, predators = u[..., 0], u[..., 1]
    terms = [delta * prey, -gamma * prey.log(), beta * predators, -alpha * predators.log()]
    v, size = sum(terms), sum(term.abs() for term in terms)  # size: against cancellation
    assert ((v - v[:, :1]).abs() / size).max() < 1e-5


def test_noise_models_match_their_definition(generator):
    # SIR: mean count 1000 I / N; Lotka-Volterra: log x - log u ~ N(0, 0.1^2).
    n = 4000
    theta = torch.tensor([0.6, 0.15], dtype=torch.float64)
    probs = sir.solve(theta)[sir.observation_times.long(), 1] / sir.population
    counts = sir.simulate(theta.expand(n, -1), generator=generator)
    standard_error = (1000 * probs * (1 - probs) / n).sqrt().clamp(min=1e-3)
    assert ((counts.mean(0) - 1000 * probs).abs() / standard_error).max() < 5

    theta = torch.tensor([0.8, 0.05, 1.0, 0.05], dtype=torch.float64)
    u = lotka_volterra.solve(theta)[::21].clamp(1e-10, 1e4).T.reshape(-1)  # prey, then predators
    residual = lotka_volterra.simulate(theta.expand(n, -1), generator=generator).log() - u.log()
    assert residual.mean(0).abs().max() < 5 * 0.1 / math.sqrt(n)
    assert (residual.std(0) / 0.1 - 1).abs().max() < 0.05


def test_log_likelihoods_match_scipy_stats(generator):
    theta = sir.prior().sample((20,), generator=generator).double()
    x = sir.simulate(theta, generator=generator)
    probs = (sir.solve(theta)[:, ::17, 1] / sir.population).clamp(0, 1)
    expected = stats.binom.logpmf(x.numpy(), 1000, probs.numpy()).sum(-1)
    assert np.allclose(sir.log_likelihood(theta, x).numpy(), expected, rtol=1e-9, atol=1e-9)

    theta = lotka_volterra.prior().sample((20,), generator=generator).double()
    x = lotka_volterra.simulate(theta, generator=generator)
    u = lotka_volterra.solve(theta)[:, ::21].clamp(1e-10, 1e4).transpose(1, 2).reshape(20, -1)
    expected = stats.lognorm.logpdf(x.numpy(), s=0.1, scale=u.numpy()).sum(-1)
    assert np.allclose(lotka_volterra.log_likelihood(theta, x).numpy(), expected, rtol=1e-9)


def test_log_likelihood_outside_the_support_is_minus_infinity():
    theta = torch.tensor([0.5, 0.1])
    x = sir.simulate(theta, generator=torch.Generator().manual_seed(0))
    for bad in (0.5, 1001.0, -1.0):
        x_bad = x.clone()
        x_bad[3] = bad
        assert sir.log_likelihood(theta, x_bad) == -math.inf
    theta = torch.tensor([0.8, 0.05, 1.0, 0.05])
    x = lotka_volterra.simulate(theta, generator=torch.Generator().manual_seed(0))
    x[5] = 0.0
    assert lotka_volterra.log_likelihood(theta, x) == -math.inf


@pytest.mark.parametrize("model", MODELS)
def test_log_likelihood_prefers_the_generating_parameters(model, generator):
    theta = model.prior().sample((50,), generator=generator).double()
    x = model.simulate(theta, generator=generator)
    perturbed = theta * 1.3
    assert (
        model.log_likelihood(theta, x) > model.log_likelihood(perturbed, x)
    ).float().mean() > 0.9


def test_absurd_parameters_give_nan_rows_without_raising(generator):
    # gamma = 1e8 makes SIR stiff (an explicit solver would need ~1e10 steps): the stiffness
    # test gives up at once, and the neighbours in the batch are unaffected.
    theta = torch.tensor([[0.5, 0.1], [0.5, 1e8], [1e8, 0.1], [0.3, 0.12]])
    x = sir.simulate(theta, generator=generator)
    assert x[1:3].isnan().all() and torch.isfinite(x[[0, 3]]).all()
    assert sir.log_likelihood(theta, x[0]).isneginf().tolist() == [False, True, True, False]
    # A fast epidemic that is stiff only briefly, once I has died out, is still solved.
    assert torch.isfinite(sir.solve(torch.tensor([5.0, 1.0]))).all()
    # Lotka-Volterra: predators dying at rate 1e8 is stiff; oscillating ~100 times faster than
    # usual is not, but exceeds the step budget.
    theta = torch.tensor([[0.8, 0.05, 1.0, 0.05], [0.8, 0.05, 1e8, 0.05], [1e2, 0.05, 1e2, 0.05]])
    x = lotka_volterra.simulate(theta[:2], generator=generator)
    assert x[1].isnan().all() and torch.isfinite(x[0]).all()
    u = lotka_volterra.solve(theta[[0, 2]], max_steps=1000)
    assert u[1].isnan().all() and torch.isfinite(u[0]).all()


# --------------------------------------------------------------------------------------------
# sbibm's observations and reference posteriors


def _read_csv(path) -> torch.Tensor:
    opener = bz2.open if str(path).endswith(".bz2") else open
    with opener(path, "rt") as handle:
        return torch.tensor(np.loadtxt(handle, delimiter=",", skiprows=1, ndmin=2))


@pytest.mark.sbibm
@pytest.mark.parametrize("model", MODELS)
def test_sbibm_reference_posteriors_explain_the_observations(model, sbibm_dir):
    num_samples, observations = 200, range(1, 11)
    folders = [sbibm_dir / _name(model) / f"num_observation_{k}" for k in observations]
    x_o = torch.cat([_read_csv(folder / "observation.csv") for folder in folders])
    true_theta = torch.cat([_read_csv(folder / "true_parameters.csv") for folder in folders])
    reference = torch.stack(
        [_read_csv(f / "reference_posterior_samples.csv.bz2")[:num_samples] for f in folders]
    )
    prior = model.prior().sample((10, num_samples), generator=torch.Generator().manual_seed(0))

    # One batched call: reference samples, prior samples and true parameters, each with its x_o.
    theta = torch.cat(
        [
            reference.reshape(-1, model.theta_dim),
            prior.double().reshape(-1, model.theta_dim),
            true_theta,
        ]
    )
    x = torch.cat([x_o.repeat_interleave(num_samples, 0)] * 2 + [x_o])
    log_lik = model.log_likelihood(theta, x)
    ref_ll = log_lik[: 10 * num_samples].reshape(10, -1)
    prior_ll = log_lik[10 * num_samples : 20 * num_samples].reshape(10, -1)
    true_ll = log_lik[20 * num_samples :]

    assert torch.isfinite(ref_ll).all()
    # The reference posterior explains x_o far better than the prior does...
    assert (ref_ll.mean(1) > prior_ll.median(1).values + 50).all()
    # ... and the true parameters explain it about as well as the reference posterior.
    assert (true_ll > torch.quantile(ref_ll, 0.01, dim=1)).all()

    # The noise-free solution at the true parameters is consistent with x_o observation-wise.
    if model is sir:
        probs = (model.solve(true_theta)[:, ::17, 1] / sir.population).clamp(0, 1).numpy()
        lower = stats.binom.cdf(x_o.numpy(), 1000, probs)
        upper = stats.binom.sf(x_o.numpy() - 1, 1000, probs)
        assert np.minimum(lower, upper).min() > 1e-5
    else:
        u = model.solve(true_theta)[:, ::21].clamp(1e-10, 1e4).transpose(1, 2).reshape(10, -1)
        z = (x_o.log() - u.log()) / lotka_volterra.noise_scale
        assert z.abs().max() < 5
