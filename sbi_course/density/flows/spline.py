r"""Rational-quadratic spline coupling layers and the neural spline flow (NSF).

A monotonic rational-quadratic spline maps the interval :math:`[-B, B]` onto itself through
:math:`K` bins. Bin :math:`k` spans :math:`[x_k, x_{k+1}]` in the input and
:math:`[y_k, y_{k+1}]` in the output, with widths :math:`w_k`, heights :math:`h_k`, slope
:math:`s_k = h_k / w_k` and derivatives :math:`d_k, d_{k+1}` at its knots. With
:math:`\xi = (x - x_k)/w_k \in [0, 1]`,

.. math::
    g(x) = y_k + \frac{h_k\,[s_k \xi^2 + d_k \xi (1-\xi)]}
                      {s_k + (d_{k+1} + d_k - 2 s_k)\, \xi (1-\xi)},

.. math::
    g'(x) = \frac{s_k^2\,[d_{k+1} \xi^2 + 2 s_k \xi(1-\xi) + d_k (1-\xi)^2]}
                 {[s_k + (d_{k+1} + d_k - 2 s_k)\, \xi (1-\xi)]^2}.

Outside :math:`[-B, B]` the map is the identity ("linear tails", boundary derivatives 1).
The inverse solves a quadratic equation in :math:`\xi` in closed form. Widths, heights and
interior derivatives come from a conditioner network, so the layer is very flexible yet
exactly invertible, which lets a few layers fit multimodal, crescent-shaped posteriors.

References:
    Durkan, Bekasov, Murray & Papamakarios (2019), Neural spline flows, NeurIPS.
    Gregory & Delbourgo (1982), Piecewise rational quadratic interpolation to monotonic data,
    IMA Journal of Numerical Analysis 2(2).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sbi_course.density.flows.base import ConditionalFlow, alternating_mask
from sbi_course.density.flows.coupling import CouplingTransform, append_couplings

__all__ = ["rational_quadratic_spline", "RQSplineCoupling", "NSF"]

MIN_BIN_SIZE = 1e-3  # smallest bin width and height, as a fraction of 2B
MIN_DERIVATIVE = 1e-3
# softplus(0 + _SOFTPLUS_ONE) + MIN_DERIVATIVE == 1: a zero network output means slope one.
_SOFTPLUS_ONE = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def _knots(unnormalized: Tensor, tail_bound: float) -> Tensor:
    """Knot positions (..., K+1) from -B to B, from raw bin sizes (..., K) (softmax)."""
    num_bins = unnormalized.shape[-1]
    sizes = MIN_BIN_SIZE + (1 - MIN_BIN_SIZE * num_bins) * torch.softmax(unnormalized, dim=-1)
    return F.pad(torch.cumsum(sizes, dim=-1), (1, 0)) * (2 * tail_bound) - tail_bound


def _bin_ends(
    value: Tensor, knots: Tensor, derivatives: Tensor, inverse: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Input knots, output knots and derivatives at both ends of the bin each value falls in.

    Args:
        value: values inside [-B, B], shape (...,): inputs, or outputs when ``inverse``.
        knots: input and output knot positions, shape (..., 2, K+1).
        derivatives: derivatives at the knots, shape (..., K+1).
        inverse: look the bin up by its output interval instead of its input interval.

    Returns:
        ``(x_k, y_k, d_k)``, each of shape (..., 2): at the bin's start and end.
    """
    value = value.unsqueeze(-1)
    search = knots[..., 1 if inverse else 0, 1:-1]
    k = (value >= search).sum(dim=-1, keepdim=True)  # bin index in 0..K-1
    # One gather for the knots and derivatives at both ends of each element's bin.
    table = torch.cat([knots, derivatives.unsqueeze(-2)], dim=-2)  # (..., 3, K+1)
    index = torch.cat([k, k + 1], dim=-1).unsqueeze(-2).expand(*table.shape[:-1], 2)
    ends = table.gather(-1, index)  # (..., 3, 2)
    return ends.unbind(dim=-2)


def rational_quadratic_spline(
    inputs: Tensor,
    unnormalized_widths: Tensor,
    unnormalized_heights: Tensor,
    unnormalized_derivatives: Tensor,
    inverse: bool = False,
    tail_bound: float = 3.0,
) -> tuple[Tensor, Tensor]:
    """Apply a monotonic rational-quadratic spline with linear tails elementwise.

    Args:
        inputs: values, shape (...,).
        unnormalized_widths: raw bin widths, shape (..., K); a softmax makes them sum to 2B.
        unnormalized_heights: raw bin heights, shape (..., K).
        unnormalized_derivatives: raw derivatives at the K-1 interior knots, shape (..., K-1);
            zero means derivative one.
        inverse: compute the inverse map instead.
        tail_bound: B; the spline acts on [-B, B] and is the identity outside.

    Returns:
        ``(outputs, log_abs_det)``, both of shape (...,): the mapped values and
        ``log|d outputs / d inputs|``.
    """
    # Widths and heights go through the same steps together: (..., 2, K+1) knot positions.
    knots = _knots(torch.stack([unnormalized_widths, unnormalized_heights], dim=-2), tail_bound)
    # A zero network output gives slope one at every interior knot; the slope at the two ends
    # is one, to join the identity tails smoothly.
    interior = MIN_DERIVATIVE + F.softplus(unnormalized_derivatives + _SOFTPLUS_ONE)
    derivatives = F.pad(interior, (1, 1), value=1.0)  # (..., K+1)

    inside = (inputs > -tail_bound) & (inputs < tail_bound)
    # Evaluate the spline on clamped values everywhere (no data-dependent indexing, which is
    # slow), then use the identity outside the interval; the clamp keeps every branch finite.
    value = inputs.clamp(-tail_bound, tail_bound)
    x_k, y_k, d_k = _bin_ends(value, knots, derivatives, inverse)
    w, h = x_k[..., 1] - x_k[..., 0], y_k[..., 1] - y_k[..., 0]
    d0, d1 = d_k[..., 0], d_k[..., 1]
    s = h / w
    curvature = d1 + d0 - 2 * s

    if inverse:
        dy = value - y_k[..., 0]
        a = h * (s - d0) + dy * curvature
        b = h * d0 - dy * curvature
        c = -s * dy
        discriminant = (b * b - 4 * a * c).clamp_min(0)
        # The numerically stable root of a xi^2 + b xi + c = 0 (Durkan et al. 2019, eq. 29).
        xi = (2 * c / (-b - torch.sqrt(discriminant))).clamp(0, 1)
        out = xi * w + x_k[..., 0]
    else:
        xi = ((value - x_k[..., 0]) / w).clamp(0, 1)
    xi_one_minus = xi * (1 - xi)
    denominator = s + curvature * xi_one_minus
    if not inverse:
        out = y_k[..., 0] + h * (s * xi * xi + d0 * xi_one_minus) / denominator
    numerator = s * s * (d1 * xi * xi + 2 * s * xi_one_minus + d0 * (1 - xi) ** 2)
    log_det = torch.log(numerator) - 2 * torch.log(denominator)
    if inverse:
        log_det = -log_det
    return torch.where(inside, out, inputs), torch.where(inside, log_det, torch.zeros_like(log_det))


class RQSplineCoupling(CouplingTransform):
    """Coupling layer whose elementwise map is a rational-quadratic spline.

    Args:
        mask: boolean (D,), ``True`` for the transformed features.
        context_features: size E of the (embedded) context.
        num_bins: number of spline bins K.
        tail_bound: B, the half-width of the interval the spline acts on (z-scored units).
        **kwargs: conditioner settings of
            :class:`~sbi_course.density.flows.coupling.CouplingTransform`.
    """

    def __init__(
        self,
        mask: Tensor,
        context_features: int,
        num_bins: int = 8,
        tail_bound: float = 3.0,
        **kwargs,
    ):
        super().__init__(mask, context_features, params_per_feature=3 * num_bins - 1, **kwargs)
        self.num_bins = num_bins
        self.tail_bound = tail_bound

    def _transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        K = self.num_bins
        widths, heights, derivatives = params[..., :K], params[..., K : 2 * K], params[..., 2 * K :]
        return rational_quadratic_spline(
            x, widths, heights, derivatives, inverse=inverse, tail_bound=self.tail_bound
        )


class NSF(ConditionalFlow):
    """Conditional neural spline flow: rational-quadratic spline couplings, alternating masks.

    The defaults (four coupling layers with eight bins, residual conditioners of width 64, a
    learned linear map between layers) are tuned for speed and accuracy on a CPU with
    ``benchmarks/npe_two_moons.py``; the ``sbi`` library uses five layers of width 50.

    Args:
        input_dim: dimension D of the modelled variable.
        context_dim: dimension C of the context.
        num_transforms: number of coupling layers.
        num_bins: spline bins per layer.
        tail_bound: half-width of the spline interval, in z-scored units.
        hidden_features: width of each conditioner's hidden layers.
        num_layers: hidden layers (or residual blocks) per conditioner.
        residual: use residual conditioners.
        activation: activation module class of the conditioners.
        linear: put a learned :class:`~sbi_course.density.flows.linear.LULinear` map between
            consecutive coupling layers.
        **kwargs: passed to :class:`~sbi_course.density.flows.base.ConditionalFlow`.
    """

    def __init__(
        self,
        input_dim: int,
        context_dim: int,
        num_transforms: int = 4,
        num_bins: int = 8,
        tail_bound: float = 3.0,
        hidden_features: int = 64,
        num_layers: int = 2,
        residual: bool = True,
        activation: type[nn.Module] = nn.ReLU,
        linear: bool = True,
        **kwargs,
    ):
        super().__init__(input_dim, context_dim, **kwargs)
        layers = (
            RQSplineCoupling(
                alternating_mask(input_dim, layer),
                self.embedding_dim,
                num_bins=num_bins,
                tail_bound=tail_bound,
                hidden_features=hidden_features,
                num_layers=num_layers,
                residual=residual,
                activation=activation,
            )
            for layer in range(num_transforms)
        )
        append_couplings(self, layers, linear)
