"""Tests of the task registry and of reading sbibm's reference files."""

from __future__ import annotations

import bz2
import importlib
import shutil

import pytest
import torch

from sbi_course import tasks

OWN = ["two_moons", "gaussian_linear", "gaussian_mixture", "slcp", "bernoulli_glm"]
OTHERS = ["sir", "lotka_volterra", "hodgkin_huxley", "gravitational_wave"]
SBIBM_DIMS = {
    "two_moons": (2, 2),
    "gaussian_linear": (10, 10),
    "gaussian_mixture": (2, 2),
    "slcp": (5, 8),
    "bernoulli_glm": (10, 10),
    "sir": (2, 10),
    "lotka_volterra": (4, 20),
}


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_names():
    assert tasks.names() == [
        "two_moons",
        "gaussian_linear",
        "gaussian_mixture",
        "slcp",
        "bernoulli_glm",
        "sir",
        "lotka_volterra",
        "hodgkin_huxley",
        "gravitational_wave",
    ]
    assert set(tasks.SBIBM_TASKS) == set(SBIBM_DIMS)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="two_mons.*two_moons.*gravitational_wave"):
        tasks.get("two_mons")


@pytest.mark.parametrize("name", OWN)
def test_task_attributes_and_simulation(name):
    task = tasks.get(name)
    module = importlib.import_module(f"sbi_course.simulators.{name}")
    assert task.name == name and task.module is module
    assert (task.theta_dim, task.x_dim) == (module.theta_dim, module.x_dim)
    assert task.parameter_labels == tuple(module.parameter_labels)
    assert task.prior.event_shape == (task.theta_dim,)
    assert task.in_sbibm
    assert task.has_reference_posterior == (
        name in ("gaussian_linear", "two_moons", "gaussian_mixture")
    )
    theta, x = task.sample_joint(40, generator=seeded(0))
    assert theta.shape == (40, task.theta_dim) and x.shape == (40, task.x_dim)
    theta2, x2 = task.sample_joint(40, generator=seeded(0))
    assert torch.equal(theta, theta2) and torch.equal(x, x2)
    assert torch.equal(task.simulate(theta, generator=seeded(1)), module.simulate(theta, seeded(1)))
    assert task.simulate(theta[0], generator=seeded(1)).shape == (task.x_dim,)


@pytest.mark.parametrize("name", OWN)
def test_task_rejects_bad_input(name):
    task = tasks.get(name)
    d = task.theta_dim
    with pytest.raises(ValueError, match=rf"task {name}.*\(\*, {d}\)|\(\*, {d}\).*task {name}"):
        task.simulate(torch.zeros(3, d + 1))
    with pytest.raises(ValueError, match=f"task {name}.*NaN"):
        task.simulate(torch.full((2, d), float("nan")))
    with pytest.raises(ValueError, match="num_simulations"):
        task.sample_joint(0)


@pytest.mark.parametrize("name", ["two_moons", "gaussian_linear", "gaussian_mixture"])
def test_reference_posterior(name):
    task = tasks.get(name)
    theta, x = task.sample_joint(1, generator=seeded(0))
    samples = task.reference_posterior(x[0], 500, generator=seeded(1))
    assert samples.shape == (500, task.theta_dim)
    assert torch.isfinite(task.prior.log_prob(samples)).all()
    assert torch.equal(samples, task.reference_posterior(x, 500, generator=seeded(1)))
    with pytest.raises(ValueError, match="num_samples"):
        task.reference_posterior(x[0], 0)


@pytest.mark.parametrize("name", ["slcp", "bernoulli_glm"])
def test_no_reference_posterior_points_to_load_sbibm(name):
    task = tasks.get(name)
    with pytest.raises(NotImplementedError, match="load_sbibm"):
        task.reference_posterior(torch.zeros(task.x_dim), 10)


@pytest.mark.parametrize("name", OTHERS)
def test_other_helpers_tasks_have_the_interface(name):
    pytest.importorskip(f"sbi_course.simulators.{name}")
    task = tasks.get(name)
    assert task.prior.event_shape == (task.theta_dim,)
    assert len(task.parameter_labels) == task.theta_dim
    assert task.in_sbibm == (name in SBIBM_DIMS)
    if name in SBIBM_DIMS:
        assert (task.theta_dim, task.x_dim) == SBIBM_DIMS[name]
    with pytest.raises(NotImplementedError, match="load_sbibm"):
        task.reference_posterior(torch.zeros(task.x_dim), 10)
    with pytest.raises(ValueError, match=name):
        task.simulate(torch.zeros(task.theta_dim + 1))


# --- load_sbibm ------------------------------------------------------------------------------


@pytest.mark.sbibm
@pytest.mark.parametrize("name", list(SBIBM_DIMS))
def test_load_sbibm_shapes(sbibm_dir, name):
    d, l = SBIBM_DIMS[name]
    obs = tasks.load_sbibm(sbibm_dir, name, 1)
    assert obs.x_o.shape == (l,) and obs.true_theta.shape == (d,)
    assert obs.reference_samples.shape == (10_000, d)
    assert all(t.dtype == torch.float32 for t in obs)
    assert torch.isfinite(obs.reference_samples).all()


@pytest.mark.sbibm
def test_load_sbibm_values(sbibm_dir):
    obs = tasks.load_sbibm(str(sbibm_dir), "two_moons", 1)
    assert torch.allclose(obs.x_o, torch.tensor([-0.6396706, 0.16234657]))
    assert torch.allclose(obs.true_theta, torch.tensor([-0.8176656, -0.5756806]))
    assert torch.allclose(obs.reference_samples[0], torch.tensor([-0.8059562, -0.5836492]))
    # The true parameters lie in the prior's support and the observation is finite.
    task = tasks.get("two_moons")
    assert torch.isfinite(task.prior.log_prob(obs.true_theta))


@pytest.mark.sbibm
def test_load_sbibm_errors(sbibm_dir, tmp_path):
    for bad in (0, 11, True, 1.0, "1"):
        with pytest.raises(ValueError, match="num_observation"):
            tasks.load_sbibm(sbibm_dir, "two_moons", bad)
    with pytest.raises(ValueError, match="hodgkin_huxley.*two_moons"):
        tasks.load_sbibm(sbibm_dir, "hodgkin_huxley", 1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tasks.load_sbibm(tmp_path / "nowhere", "two_moons", 1)
    with pytest.raises(FileNotFoundError, match="num_observation_1"):
        tasks.load_sbibm(tmp_path, "two_moons", 1)
    # A copy of one observation with a file missing, then with a file of the wrong width.
    folder = tmp_path / "two_moons" / "num_observation_1"
    shutil.copytree(sbibm_dir / "two_moons" / "num_observation_1", folder)
    (folder / "reference_posterior_samples.csv.bz2").unlink()
    with pytest.raises(FileNotFoundError, match="reference_posterior_samples"):
        tasks.load_sbibm(tmp_path, "two_moons", 1)
    with bz2.open(folder / "reference_posterior_samples.csv.bz2", "wt") as handle:
        handle.write("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="3"):
        tasks.load_sbibm(tmp_path, "two_moons", 1)
