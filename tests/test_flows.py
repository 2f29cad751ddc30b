"""Tests of the normalizing flows: exact inverses, log-determinants, normalisation, sampling."""

from __future__ import annotations

import math

import pytest
import torch

from sbi_course.density import MAF, NSF, RealNVP, Standardize
from sbi_course.density.flows import (
    MADE,
    LULinear,
    Permutation,
    alternating_mask,
    rational_quadratic_spline,
)

FLOWS = {"realnvp": RealNVP, "maf": MAF, "nsf": NSF}


def make_flow(name: str, dim: int, context_dim: int = 2, seed: int = 0) -> torch.nn.Module:
    """A float64 flow with random (not identity) weights and a non-trivial z-scoring."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        standardize = Standardize(torch.linspace(-1.0, 1.0, dim), torch.linspace(0.5, 2.0, dim))
        kwargs = {"num_transforms": 3, "hidden_features": 16, "input_standardize": standardize}
        flow = FLOWS[name](dim, context_dim, **kwargs).double()
        # Last layers start at zero (identity flow); perturb every weight so the test is real.
        with torch.no_grad():
            for parameter in flow.parameters():
                parameter.add_(0.15 * torch.randn_like(parameter))
    return flow


@pytest.mark.parametrize("name", FLOWS)
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_flow_inverts_exactly(name, dim, generator):
    flow = make_flow(name, dim)
    x = 2 * torch.randn(50, dim, generator=generator, dtype=torch.float64)
    context = torch.randn(50, 2, generator=generator, dtype=torch.float64)
    z, log_det = flow.forward(x, context)
    x_back, log_det_inverse = flow.inverse(z, context)
    assert z.shape == x.shape and log_det.shape == (50,)
    assert torch.allclose(x_back, x, atol=1e-9)
    assert torch.allclose(
        log_det + log_det_inverse, torch.zeros(50, dtype=torch.float64), atol=1e-9
    )
    # And the other way round, starting from noise.
    noise = torch.randn(50, dim, generator=generator, dtype=torch.float64)
    assert torch.allclose(
        flow.forward(flow.inverse(noise, context)[0], context)[0], noise, atol=1e-9
    )


@pytest.mark.parametrize("name", FLOWS)
@pytest.mark.parametrize("dim", [1, 3])
def test_log_det_matches_autograd_jacobian(name, dim, generator):
    flow = make_flow(name, dim)
    context = torch.randn(2, generator=generator, dtype=torch.float64)
    for x in 1.5 * torch.randn(4, dim, generator=generator, dtype=torch.float64):
        jacobian = torch.autograd.functional.jacobian(
            lambda v: flow.forward(v.unsqueeze(0), context)[0][0], x
        )
        expected = torch.linalg.slogdet(jacobian).logabsdet
        assert flow.forward(x.unsqueeze(0), context)[1].item() == pytest.approx(
            expected.item(), abs=1e-8
        )


@pytest.mark.parametrize("name", FLOWS)
def test_density_integrates_to_one_in_1d(name):
    flow = make_flow(name, dim=1)
    grid = torch.linspace(-25, 25, 20_001, dtype=torch.float64).unsqueeze(1)
    with torch.no_grad():
        density = flow.log_prob(grid, torch.tensor([0.3, -0.5], dtype=torch.float64)).exp()
    assert torch.trapezoid(density, grid[:, 0]).item() == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("name", FLOWS)
def test_density_integrates_to_one_in_2d(name):
    flow = make_flow(name, dim=2)
    axis = torch.linspace(-12, 12, 301, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        density = flow.log_prob(grid, torch.tensor([0.3, -0.5], dtype=torch.float64)).exp()
    density = density.reshape(len(axis), len(axis))
    integral = torch.trapezoid(torch.trapezoid(density, axis, dim=1), axis)
    assert integral.item() == pytest.approx(1.0, abs=5e-3)


@pytest.mark.parametrize("name", FLOWS)
def test_sampling_shapes_and_reproducibility(name):
    flow = make_flow(name, dim=2)
    context = torch.tensor([0.1, 0.2], dtype=torch.float64)
    first = flow.sample(100, context, generator=torch.Generator().manual_seed(3))
    second = flow.sample(100, context.unsqueeze(0), generator=torch.Generator().manual_seed(3))
    assert first.shape == (100, 2) and torch.equal(first, second)
    several = flow.sample(7, torch.zeros(4, 2, dtype=torch.float64), generator=None)
    assert several.shape == (4, 7, 2)
    assert flow.sample(0, context).shape == (0, 2)


def test_samples_follow_the_density():
    # Samples from the flow (noise -> data) and its density (data -> noise) must agree:
    # compare the sample mean with the mean computed from the density on a grid.
    flow = make_flow("nsf", dim=1)
    context = torch.tensor([0.3, -0.5], dtype=torch.float64)
    samples = flow.sample(20_000, context, generator=torch.Generator().manual_seed(0))
    grid = torch.linspace(-25, 25, 20_001, dtype=torch.float64)
    with torch.no_grad():
        density = flow.log_prob(grid.unsqueeze(1), context).exp()
    mean = torch.trapezoid(density * grid, grid)
    std = torch.trapezoid(density * (grid - mean) ** 2, grid).sqrt()
    assert samples.mean().item() == pytest.approx(mean.item(), abs=4 * std.item() / math.sqrt(2e4))


def test_spline_is_identity_at_zero_parameters_and_outside_the_bound():
    x = torch.linspace(-5, 5, 101, dtype=torch.float64)
    zeros = torch.zeros(101, 8, dtype=torch.float64)
    y, log_det = rational_quadratic_spline(x, zeros, zeros, zeros[:, :7], tail_bound=3.0)
    assert torch.allclose(y, x, atol=1e-12)
    assert log_det.abs().max() < 1e-12

    g = torch.Generator().manual_seed(0)
    # One spline (the same parameters for every point), to check that it is monotonic.
    raw = [torch.randn(k, generator=g, dtype=torch.float64).expand(101, k) for k in (8, 8, 7)]
    y, log_det = rational_quadratic_spline(x, *raw, tail_bound=3.0)
    outside = x.abs() >= 3
    assert torch.equal(y[outside], x[outside]) and (log_det[outside] == 0).all()
    assert (y.diff() > 0).all()  # monotonic


def test_spline_derivative_matches_autograd():
    g = torch.Generator().manual_seed(1)
    x = (4 * torch.rand(200, generator=g, dtype=torch.float64) - 2).requires_grad_()
    raw = [2 * torch.randn(200, k, generator=g, dtype=torch.float64) for k in (6, 6, 5)]
    for inverse in (False, True):
        y, log_det = rational_quadratic_spline(x, *raw, inverse=inverse, tail_bound=2.5)
        (grad,) = torch.autograd.grad(y.sum(), x)  # elementwise map: diagonal Jacobian
        assert torch.allclose(grad.log(), log_det, atol=1e-9)


def test_made_is_autoregressive():
    torch.manual_seed(0)
    made = MADE(features=4, context_features=2, params_per_feature=2, hidden_features=20).double()
    with torch.no_grad():
        made.output_layer.weight.normal_()
    x = torch.randn(4, dtype=torch.float64)
    context = torch.randn(1, 2, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda v: made(v.unsqueeze(0), context)[0], x)
    # jacobian[p, i, j] = d output(p, i) / d x_j: zero unless j < i.
    upper = torch.triu(torch.ones(4, 4, dtype=torch.bool))
    assert (jacobian[:, upper] == 0).all()
    assert (jacobian[:, ~upper] != 0).any()


def test_lu_linear_and_permutation_invert():
    torch.manual_seed(0)
    layer = LULinear(3).double()
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.normal_()
    x = torch.randn(10, 3, dtype=torch.float64)
    context = torch.zeros(10, 0, dtype=torch.float64)
    y, log_det = layer(x, context)
    weight = torch.autograd.functional.jacobian(
        lambda v: layer(v.unsqueeze(0), context)[0][0], x[0]
    )
    assert log_det[0].item() == pytest.approx(torch.linalg.slogdet(weight).logabsdet.item())
    assert torch.allclose(layer.inverse(y, context)[0], x, atol=1e-10)

    permutation = Permutation(torch.tensor([2, 0, 1]))
    assert torch.equal(permutation.inverse(permutation(x, context)[0], context)[0], x)


def test_alternating_masks():
    assert alternating_mask(1, 0).tolist() == [True]
    assert alternating_mask(3, 0).tolist() == [False, True, False]
    assert alternating_mask(3, 1).tolist() == [True, False, True]


def test_unconditional_flow_and_context_errors():
    flow = NSF(2, 0, num_transforms=2)
    assert flow.log_prob(torch.zeros(3, 2)).shape == (3,)
    assert flow.sample(5).shape == (5, 2)
    conditional = NSF(2, 3, num_transforms=2)
    with pytest.raises(ValueError, match=r"context for NSF must have shape \(N, 3\)"):
        conditional.log_prob(torch.zeros(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"inputs for NSF must have shape \(N, 2\)"):
        conditional.log_prob(torch.zeros(3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="needs a context"):
        conditional.sample(3)
