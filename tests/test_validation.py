"""The validation layer (issue #12, item 3) and the defects of issue #14 it fixes.

Each test here failed before the fix it names (checked against the commit before it).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from sbi_course import tasks
from sbi_course._validation import (
    check_count,
    flatten_batch,
    paired_batches,
    single_observation,
    unflatten_batch,
)

ALL = tasks.names()
LIKELIHOOD = ["two_moons", "gaussian_linear", "gaussian_mixture", "slcp", "bernoulli_glm"]


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def module(name):
    return importlib.import_module(f"sbi_course.simulators.{name}")


# --- the helpers -------------------------------------------------------------------------------


def test_flatten_and_restore_batch_dims():
    flat, shape = flatten_batch(torch.zeros(4, 3, 2), 2, name="theta", owner="f")
    assert flat.shape == (12, 2) and shape == (4, 3)
    assert unflatten_batch(flat[:, :1], shape).shape == (4, 3, 1)
    flat, shape = flatten_batch([1, 2], 2, name="theta", owner="f")  # ints become floats
    assert flat.dtype == torch.get_default_dtype() and shape == ()


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (torch.zeros(3, 4), ValueError, r"theta must have shape \(\*, 2\) for f"),
        (torch.zeros(0, 2), ValueError, "empty"),
        (torch.tensor([[0.0, float("nan")]]), ValueError, "NaN or infinite values in 1 of 1"),
        ("abc", TypeError, "theta for f must be a tensor"),
        (torch.zeros(2, dtype=torch.complex64), TypeError, "real"),
    ],
)
def test_flatten_batch_errors(value, error, match):
    with pytest.raises(error, match=match):
        flatten_batch(value, 2, name="theta", owner="f")


def test_paired_rows():
    a, b, shape = paired_batches(torch.zeros(3, 2), torch.zeros(5), (2, 5), owner="f")
    assert a.shape == (3, 2) and b.shape == (3, 5) and shape == (3,)
    with pytest.raises(ValueError, match=r"same number of rows.*\(3, 2\) and \(4, 5\)"):
        paired_batches(torch.zeros(3, 2), torch.zeros(4, 5), (2, 5), owner="f")


def test_counts():
    assert check_count(np.int64(3), "n", "f") == 3
    for bad in (0, -1, 2.0, True, np.float64(2.0)):
        with pytest.raises(ValueError, match="n for f must be a positive integer"):
            check_count(bad, "n", "f")
    with pytest.raises(TypeError, match="n for f"):
        check_count("3", "n", "f")


def test_single_observation():
    assert single_observation(torch.zeros(1, 3), 3, owner="f").shape == (3,)
    with pytest.raises(ValueError, match=r"single observation of shape \(3,\) or \(1, 3\)"):
        single_observation(torch.zeros(2, 3), 3, owner="f")


# --- one spec per simulator, read by the tasks --------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_each_simulator_declares_one_spec_that_the_task_reads(name):
    spec = module(name).spec
    task = tasks.get(name)
    assert spec.name == name and task.spec is spec
    assert (task.theta_dim, task.x_dim) == (spec.theta_dim, spec.x_dim)
    assert task.has_reference_posterior == (spec.sample_posterior is not None)
    assert (spec.log_likelihood is not None) == (
        name not in ("hodgkin_huxley", "gravitational_wave")
    )


# --- (*, D): extra leading batch dimensions ------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in ALL if n != "hodgkin_huxley"])
def test_simulators_keep_extra_batch_dims(name):
    task = tasks.get(name)
    theta = task.prior.sample((6,), generator=seeded(0))
    flat = task.simulate(theta, generator=seeded(1))
    batched = task.simulate(theta.reshape(2, 3, -1), generator=seeded(1))
    assert batched.shape == (2, 3, task.x_dim)
    torch.testing.assert_close(batched.reshape(6, -1), flat, equal_nan=True)
    if task.spec.log_likelihood is not None:
        ll = task.spec.log_likelihood(theta.reshape(2, 3, -1), flat.reshape(2, 3, -1))
        torch.testing.assert_close(ll.reshape(6), task.spec.log_likelihood(theta, flat))


# --- issue #14, item 7: mismatched rows reached torch broadcasting -------------------------------


@pytest.mark.parametrize("name", LIKELIHOOD + ["sir", "lotka_volterra"])
def test_log_likelihood_refuses_mismatched_rows(name):
    m = module(name)
    theta = m.prior().sample((3,), generator=seeded(0))
    x = m.simulate(m.prior().sample((4,), generator=seeded(1)), generator=seeded(2))
    with pytest.raises(ValueError, match=rf"theta and x for {name}.log_likelihood.*\(3, "):
        m.log_likelihood(theta, x)


def test_waveform_refuses_a_2d_time_grid():
    gw = module("gravitational_wave")
    theta = torch.tensor([30.0, 400.0, 0.8, 0.0])
    with pytest.raises(
        ValueError, match=r"t for gravitational_wave.waveform must have shape \(L,\)"
    ):
        gw.waveform(theta, torch.zeros(2, 5))


# --- issue #14, item 6: absurd sizes are refused up front ----------------------------------------


def test_absurd_reference_posterior_is_refused():
    gm = module("gaussian_mixture")
    with pytest.raises(MemoryError, match="num_samples.*SBI_COURSE_MAX_BYTES"):
        gm.sample_posterior(torch.zeros(2), 10**9)


def test_absurd_voltage_trace_is_refused():
    hh = module("hodgkin_huxley")
    with pytest.raises(MemoryError, match="duration"):
        hh.voltage_traces(torch.tensor([50.0, 5.0]), duration=1e7)


# --- issue #14, items 9 and 10: hodgkin_huxley ---------------------------------------------------


def test_hodgkin_huxley_bad_protocol():
    hh = module("hodgkin_huxley")
    with pytest.raises(ValueError, match="dt for hodgkin_huxley.voltage_traces must be a positive"):
        hh.voltage_traces(torch.tensor([50.0, 5.0]), dt=0)
    with pytest.raises(ValueError, match="samples, but the protocol"):
        hh.summary_statistics(torch.zeros(3, 500))  # used to return NaN silently


def test_ode_simulators_accept_theta_that_requires_grad():
    for name in ("sir", "lotka_volterra"):
        m = module(name)
        theta = m.prior().sample((2,), generator=seeded(0)).requires_grad_()
        assert m.simulate(theta, generator=seeded(1)).shape == (2, m.x_dim)


def test_tasks_accept_numpy_integer_counts():
    task = tasks.get("two_moons")
    theta, x = task.sample_joint(np.int64(5), generator=seeded(0))
    assert theta.shape == (5, 2)
    assert task.reference_posterior(x[0], np.int32(7), generator=seeded(1)).shape == (7, 2)
