"""The autouse fixture of conftest.py restores the global RNG after a test that changes it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

_SEEN: dict[str, object] = {}


@pytest.mark.uses_global_rng
def test_a_leaky_test_changes_the_global_state():
    _SEEN["torch"] = torch.random.get_rng_state().clone()
    _SEEN["numpy"] = np.random.get_state()[1].copy()
    torch.manual_seed(12345)
    np.random.seed(12345)


def test_the_next_test_sees_the_state_from_before():
    # Runs after the test above (same module, file order): the fixture restored the states.
    assert torch.equal(torch.random.get_rng_state(), _SEEN["torch"])
    assert np.array_equal(np.random.get_state()[1], _SEEN["numpy"])
