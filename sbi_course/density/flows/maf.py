r"""Masked autoregressive flow (MAF) built from MADE networks.

An autoregressive layer transforms feature :math:`i` with parameters that depend only on the
features before it:

.. math::
    z_i = (x_i - \mu_i(x_{<i}, c))\, e^{-\alpha_i(x_{<i}, c)},
    \qquad \log\left|\det \frac{\partial z}{\partial x}\right| = -\sum_i \alpha_i .

The Jacobian is triangular. MADE computes all :math:`\mu_i, \alpha_i` in *one* network pass
by masking weights: every unit gets a degree, and a connection is kept only if it cannot
carry information from :math:`x_j, j \ge i`, to the outputs of feature :math:`i`. So the
density (data -> noise) costs one pass, while sampling (noise -> data) must compute
:math:`x_1, x_2, \dots` in turn and costs D passes. Layers alternate the feature order.

References:
    Germain, Gregor, Murray & Larochelle (2015), MADE: masked autoencoder for distribution
    estimation, ICML.
    Papamakarios, Pavlakou & Murray (2017), Masked autoregressive flow for density estimation,
    NeurIPS.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sbi_course.density.flows.base import ConditionalFlow, Permutation, Transform

__all__ = ["MaskedLinear", "MADE", "MaskedAffineAutoregressive", "MAF"]


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied elementwise by a fixed 0/1 mask (out, in)."""

    def __init__(self, mask: Tensor):
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, h: Tensor) -> Tensor:
        return F.linear(h, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Masked autoencoder: ``params_per_feature`` outputs for each of ``features`` inputs.

    Output ``(p, i)`` depends only on inputs ``0..i-1`` (in the given order) and on the context.
    Input ``i`` has degree ``i + 1``; hidden units get degrees ``0..D-1`` in turn (degree 0 sees
    only the context); a hidden unit of degree ``m`` sees inputs of degree ``<= m``, and output
    ``i`` sees hidden units of degree ``< i + 1``.

    Args:
        features: D.
        context_features: E (context enters every unit of the first hidden layer).
        params_per_feature: outputs per feature.
        hidden_features: hidden width.
        num_layers: hidden layers (at least 1).
    """

    def __init__(
        self,
        features: int,
        context_features: int,
        params_per_feature: int,
        hidden_features: int = 50,
        num_layers: int = 2,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError("MADE needs at least one hidden layer")
        self.features, self.params_per_feature = features, params_per_feature
        input_degrees = torch.arange(1, features + 1)
        hidden_degrees = torch.arange(hidden_features) % features
        layers, degrees = [], input_degrees
        for _ in range(num_layers):
            layers.append(MaskedLinear(hidden_degrees[:, None] >= degrees[None, :]))
            degrees = hidden_degrees
        output_degrees = input_degrees.repeat(params_per_feature)  # output index p * D + i
        self.output_layer = MaskedLinear(output_degrees[:, None] > degrees[None, :])
        self.hidden_layers = nn.ModuleList(layers)
        self.context_layer = nn.Linear(context_features, hidden_features, bias=False)
        # Start as the identity transform: zero outputs give mu = 0 and alpha = 0.
        nn.init.zeros_(self.output_layer.weight)
        nn.init.zeros_(self.output_layer.bias)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        """Parameters of shape (N, params_per_feature, D) for inputs (N, D) and context (N, E)."""
        h = F.relu(self.hidden_layers[0](x) + self.context_layer(context))
        for layer in self.hidden_layers[1:]:
            h = F.relu(layer(h))
        return self.output_layer(h).reshape(x.shape[0], self.params_per_feature, self.features)


class MaskedAffineAutoregressive(Transform):
    r"""One MAF layer: :math:`z = (x - \mu) e^{-\alpha}` with MADE parameters.

    The log-scale is softly bounded, :math:`\alpha = b \tanh(\tilde\alpha / b)`.
    """

    def __init__(self, features: int, context_features: int, scale_bound: float = 3.0, **kwargs):
        super().__init__()
        self.made = MADE(features, context_features, params_per_feature=2, **kwargs)
        self.scale_bound = scale_bound

    def _shift_and_log_scale(self, x: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        params = self.made(x, context)
        log_scale = self.scale_bound * torch.tanh(params[:, 1] / self.scale_bound)
        return params[:, 0], log_scale

    def forward(self, x: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        shift, log_scale = self._shift_and_log_scale(x, context)
        return (x - shift) * torch.exp(-log_scale), -log_scale.sum(-1)

    def inverse(self, z: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        # After pass i, features 0..i are final: feature i only needs features before it.
        x = torch.zeros_like(z)
        for _ in range(z.shape[1]):
            shift, log_scale = self._shift_and_log_scale(x, context)
            x = z * torch.exp(log_scale) + shift
        return x, log_scale.sum(-1)


class MAF(ConditionalFlow):
    """Conditional masked autoregressive flow; the feature order is reversed between layers.

    Args:
        input_dim: dimension D of the modelled variable.
        context_dim: dimension C of the context.
        num_transforms: number of autoregressive layers.
        hidden_features: hidden width of each MADE.
        num_layers: hidden layers per MADE.
        scale_bound: soft bound of each layer's log-scale.
        **kwargs: passed to :class:`~sbi_course.density.flows.base.ConditionalFlow`.
    """

    def __init__(
        self,
        input_dim: int,
        context_dim: int,
        num_transforms: int = 5,
        hidden_features: int = 50,
        num_layers: int = 2,
        scale_bound: float = 3.0,
        **kwargs,
    ):
        super().__init__(input_dim, context_dim, **kwargs)
        for layer in range(num_transforms):
            if layer > 0 and input_dim > 1:
                self.transforms.append(Permutation.reverse(input_dim))
            self.transforms.append(
                MaskedAffineAutoregressive(
                    input_dim,
                    self.embedding_dim,
                    scale_bound=scale_bound,
                    hidden_features=hidden_features,
                    num_layers=num_layers,
                )
            )
