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
