"""Shared pytest configuration.

Tests that need sbibm's reference posteriors take the folder from ``--sbibm-dir`` or the
``SBIBM_DIR`` environment variable and are skipped without it (``.ci/run`` sets it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


def pytest_addoption(parser):
    parser.addoption(
        "--sbibm-dir",
        default=os.environ.get("SBIBM_DIR"),
        help="folder with sbibm's reference posteriors (<task>/num_observation_<n>/...)",
    )


@pytest.fixture(scope="session")
def sbibm_dir(request) -> Path:
    value = request.config.getoption("--sbibm-dir")
    if not value:
        if os.environ.get("CI"):
            pytest.fail("CI must set SBIBM_DIR or --sbibm-dir: sbibm tests may not be skipped")
        pytest.skip("no sbibm folder given (set SBIBM_DIR or pass --sbibm-dir)")
    path = Path(value)
    if not path.is_dir():
        pytest.fail(f"sbibm folder {path} does not exist")
    return path


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    """Tests run on 2-core machines, often several at once: keep torch to one thread each."""
    torch.set_num_threads(int(os.environ.get("SBI_COURSE_TEST_THREADS", "1")))
    yield


@pytest.fixture
def generator() -> torch.Generator:
    """A fresh, seeded generator for each test."""
    return torch.Generator().manual_seed(1234)


class GlobalRNGLeak(UserWarning):
    """A test changed the global torch or numpy random state (restored afterwards)."""


@pytest.fixture(autouse=True)
def _no_global_rng_leak(request):
    """Keep each test from changing the global torch and numpy random states for the next.

    A test that draws from the global RNG (``torch.randn`` without a generator,
    ``torch.manual_seed``) would change what later tests see and make their results depend on
    the order the tests run in. The states are saved before and restored after every test, and
    a test that changed them gets a :class:`GlobalRNGLeak` warning in the summary, so that it
    can be given a generator (mark it ``uses_global_rng`` when the global draw is the point).
    Run with ``-W error::conftest.GlobalRNGLeak`` to make every leak a failure.
    """
    import numpy as np

    torch_state = torch.random.get_rng_state()
    numpy_state = np.random.get_state()
    yield
    torch_changed = not torch.equal(torch.random.get_rng_state(), torch_state)
    new_numpy = np.random.get_state()
    numpy_changed = not (
        np.array_equal(new_numpy[1], numpy_state[1]) and new_numpy[2:] == numpy_state[2:]
    )
    torch.random.set_rng_state(torch_state)
    np.random.set_state(numpy_state)
    if (torch_changed or numpy_changed) and not request.node.get_closest_marker("uses_global_rng"):
        which = " and ".join(
            name
            for name, changed in (("torch", torch_changed), ("numpy", numpy_changed))
            if changed
        )
        import warnings

        warnings.warn(
            f"{request.node.nodeid} changed the global {which} random state (restored): pass a "
            f"seeded generator instead",
            GlobalRNGLeak,
            stacklevel=1,
        )
