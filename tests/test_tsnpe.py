"""Truncated sequential NPE (sbi_course.inference.tsnpe) on a conjugate Gaussian problem."""

from __future__ import annotations

import pytest
import torch

from sbi_course.inference.tsnpe import truncated_sequential_npe
from sbi_course.priors import BoxUniform


def _simulator(theta, generator=None):
    # x = theta + N(0, 0.1^2): with a wide flat prior the posterior is N(x_o, 0.1^2 I).
    return theta + 0.1 * torch.randn(theta.shape, generator=generator)


@pytest.mark.slow
def test_rounds_truncate_the_prior_and_recover_the_posterior():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
    x_o = torch.tensor([0.5, -1.0])
    result = truncated_sequential_npe(
        prior,
        _simulator,
        x_o,
        [500, 500],
        density_estimator="maf",
        estimator_kwargs={"num_transforms": 2, "hidden_features": 20},
        train_kwargs={"max_num_epochs": 40, "show_progress": False},
        generator=g,
    )
    assert [r["round"] for r in result.rounds] == [1, 2]
    assert result.theta.shape == (1000, 2) and result.x.shape == (1000, 2)
    # Round 2 draws only from a small region around x_o: a small acceptance rate, and its
    # parameters lie far closer to x_o than round 1's prior draws.
    assert result.rounds[1]["acceptance_rate"] < 0.3
    spread = [(result.theta[s] - x_o).norm(dim=1).median() for s in (slice(500), slice(500, None))]
    assert spread[1] < spread[0] / 3
    samples = result.npe.posterior(x_o).sample((2000,), generator=g)
    assert torch.allclose(samples.mean(0), x_o, atol=0.05)
    assert torch.allclose(samples.std(0), torch.full((2,), 0.1), rtol=0.3)


def test_bad_arguments_are_clear_errors():
    prior = BoxUniform(-torch.ones(1), torch.ones(1))
    with pytest.raises(ValueError, match="simulations_per_round"):
        truncated_sequential_npe(prior, _simulator, torch.zeros(1), [])
    with pytest.raises(ValueError, match="epsilon"):
        truncated_sequential_npe(prior, _simulator, torch.zeros(1), [10], epsilon=0.0)
