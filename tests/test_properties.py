"""Property-based tests: generated bad and good input at the public functions (issue #14).

Hypothesis generates shapes (extra batch dimensions, wrong widths, empty batches), dtypes
(float32, float64, integers), NaN and infinite entries and counts (zero, negative, floats, numpy
integers). Every call must end in one of two ways:

* a ``ValueError``/``TypeError`` raised inside ``sbi_course`` whose message names the argument
  (or, for parameters that must be positive, the parameter), or
* a result of the documented shape: finite for simulators and samples; no NaN (``-inf`` is a
  valid log-density outside the support) for densities and likelihoods.

The runs are derandomised (the same examples every time) and bounded, a few seconds in all.
"""

from __future__ import annotations

import math
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sbi_course import tasks
from sbi_course.abc import chebyshev, euclidean, manhattan
from sbi_course.priors import BoxUniform, GaussianPrior, LogNormalPrior

PACKAGE = Path(__import__("sbi_course").__file__).parent
FAST_TASKS = ["two_moons", "gaussian_linear", "gaussian_mixture", "slcp", "bernoulli_glm"]
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _raised_by_package(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(PACKAGE)


def _check_error(error: BaseException, names: tuple[str, ...]) -> None:
    assert isinstance(error, ValueError | TypeError), repr(error)
    assert _raised_by_package(error), "".join(traceback.format_exception(error))
    message = str(error)
    assert any(name in message for name in names), (names, message)


@st.composite
def arrays(draw, width: int, *, magnitude: float = 3.0):
    """Mostly well-formed ``(*, width)`` arrays, sometimes with a wrong width, an empty batch,
    another dtype, or NaN/inf entries."""
    batch = draw(st.lists(st.integers(0, 3), min_size=0, max_size=2))
    last = draw(st.sampled_from([width] * 4 + [width + 1, max(width - 1, 0)]))
    shape = (*batch, last)
    dtype = draw(st.sampled_from([torch.float32, torch.float32, torch.float64, torch.int64]))
    seed = draw(st.integers(0, 2**16))
    value = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    value = (2 * value - 1) * magnitude
    if value.numel() and draw(st.booleans()) and draw(st.booleans()):
        flat = value.reshape(-1)
        flat[draw(st.integers(0, flat.numel() - 1))] = draw(
            st.sampled_from([math.nan, math.inf, -math.inf])
        )
    return value.to(dtype) if dtype != torch.int64 else value.round().nan_to_num(0).to(dtype)


counts = st.one_of(
    st.integers(-3, 5),
    st.sampled_from([2.0, 2.5, np.int64(3), np.int32(2), True, None, "3"]),
)


@pytest.mark.parametrize("name", FAST_TASKS + ["gravitational_wave"])
def test_simulate(name):
    task = tasks.get(name)
    magnitude = 3.0 if name != "gravitational_wave" else 50.0

    @SETTINGS
    @given(theta=arrays(task.theta_dim, magnitude=magnitude))
    def check(theta):
        try:
            x = task.simulate(theta, generator=torch.Generator().manual_seed(0))
        except (ValueError, TypeError) as error:
            _check_error(error, ("theta", *task.parameter_labels))
            return
        assert x.shape == (*theta.shape[:-1], task.x_dim)
        assert torch.isfinite(x).all()

    check()


@pytest.mark.parametrize("name", FAST_TASKS)
def test_log_likelihood(name):
    task = tasks.get(name)

    @SETTINGS
    @given(theta=arrays(task.theta_dim), x=arrays(task.x_dim))
    def check(theta, x):
        try:
            log_lik = task.spec.log_likelihood(theta, x)
        except (ValueError, TypeError) as error:
            _check_error(error, ("theta", "x"))
            return
        shape = torch.broadcast_shapes(theta.shape[:-1], x.shape[:-1])
        assert log_lik.shape == shape
        assert not log_lik.isnan().any()

    check()


PRIORS = {
    "BoxUniform": lambda: BoxUniform(-torch.ones(3), 2 * torch.ones(3)),
    "GaussianPrior": lambda: GaussianPrior(torch.zeros(3), covariance_matrix=torch.eye(3)),
    "LogNormalPrior": lambda: LogNormalPrior(torch.zeros(3), torch.ones(3)),
}


@pytest.mark.parametrize("name", PRIORS)
def test_prior_log_prob_and_sample(name):
    prior = PRIORS[name]()

    @SETTINGS
    @given(theta=arrays(3), count=counts)
    def check(theta, count):
        try:
            log_prob = prior.log_prob(theta)
        except (ValueError, TypeError) as error:
            _check_error(error, ("value",))
        else:
            assert log_prob.shape == theta.shape[:-1]
            finite_rows = torch.isfinite(theta.double()).all(dim=-1)
            assert not log_prob[finite_rows].isnan().any()
        try:
            samples = prior.sample((count,), generator=torch.Generator().manual_seed(0))
        except (ValueError, TypeError) as error:
            _check_error(error, ("sample_shape",))
        else:
            assert samples.shape == (count, 3) and torch.isfinite(samples).all()

    check()


@pytest.mark.parametrize("distance", [euclidean, manhattan, chebyshev])
def test_distances(distance):
    @SETTINGS
    @given(x=arrays(4), x_o=arrays(4))
    def check(x, x_o):
        try:
            d = distance(x, x_o)
        except (ValueError, TypeError) as error:
            _check_error(error, ("x", "x_o"))
            return
        assert d.shape == x.shape[:-1]

    check()


@SETTINGS
@given(count=counts)
def test_task_counts(count):
    task = tasks.get("two_moons")
    try:
        theta, x = task.sample_joint(count, generator=torch.Generator().manual_seed(0))
    except (ValueError, TypeError) as error:
        _check_error(error, ("num_simulations",))
        return
    assert theta.shape == (count, 2) and x.shape == (count, 2)
    assert torch.isfinite(x).all()
