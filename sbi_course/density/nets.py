"""Small fully connected networks used as conditioners inside the density estimators.

A conditioner maps what a layer may look at (the context, and for flows the untouched
coordinates) to the parameters of a distribution or a transform.
"""

from __future__ import annotations

import warnings

from torch import Tensor, nn

__all__ = ["MLP", "ResidualMLP", "make_net"]


class MLP(nn.Sequential):
    """``num_layers`` hidden layers of ``hidden_features`` units with an activation, then linear.

    Args:
        in_features: input size (may be 0: the output is then a learned constant).
        out_features: output size.
        hidden_features: width of each hidden layer.
        num_layers: number of hidden layers.
        activation: activation module class.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int = 50,
        num_layers: int = 2,
        activation: type[nn.Module] = nn.ReLU,
    ):
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_features), activation()]
            width = hidden_features
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)

    @property
    def output_layer(self) -> nn.Linear:
        return self[-1]


class _Block(nn.Module):
    def __init__(self, features: int, activation: type[nn.Module]):
        super().__init__()
        self.net = nn.Sequential(
            activation(),
            nn.Linear(features, features),
            activation(),
            nn.Linear(features, features),
        )

    def forward(self, h: Tensor) -> Tensor:
        return h + self.net(h)


class ResidualMLP(nn.Module):
    """A linear input layer, ``num_blocks`` residual blocks of two layers each, a linear output.

    Residual connections (He et al. 2016) keep gradients flowing through deeper conditioners;
    the neural spline flow paper uses this architecture.

    Args:
        in_features: input size (may be 0).
        out_features: output size.
        hidden_features: width of the blocks.
        num_blocks: number of residual blocks.
        activation: activation module class.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int = 50,
        num_blocks: int = 2,
        activation: type[nn.Module] = nn.ReLU,
    ):
        super().__init__()
        self.input_layer = nn.Linear(in_features, hidden_features)
        self.blocks = nn.Sequential(
            *(_Block(hidden_features, activation) for _ in range(num_blocks))
        )
        self.output_layer = nn.Sequential(activation(), nn.Linear(hidden_features, out_features))

    def forward(self, h: Tensor) -> Tensor:
        return self.output_layer(self.blocks(self.input_layer(h)))


def make_net(
    in_features: int,
    out_features: int,
    hidden_features: int,
    num_layers: int,
    residual: bool = False,
    activation: type[nn.Module] = nn.ReLU,
    zero_init: bool = False,
) -> nn.Module:
    """Build an :class:`MLP` (or a :class:`ResidualMLP` with ``num_layers`` blocks).

    With ``zero_init`` the last layer starts at zero, so that a flow layer starts as the
    identity map: training then begins from the base distribution instead of a random warp.
    """
    with warnings.catch_warnings():
        # Without inputs (an unconditional density) torch warns that it cannot initialise the
        # empty weight matrix; the layer's bias is then a learned constant, as intended.
        warnings.filterwarnings("ignore", "Initializing zero-element tensors")
        if residual:
            net = ResidualMLP(in_features, out_features, hidden_features, num_layers, activation)
            last = net.output_layer[-1]
        else:
            net = MLP(in_features, out_features, hidden_features, num_layers, activation)
            last = net.output_layer
    if zero_init:
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    return net
