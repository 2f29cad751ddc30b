r"""Coupling layers and RealNVP, the affine coupling flow.

A coupling layer splits the features into a part :math:`x_A` that it copies and a part
:math:`x_B` that it transforms elementwise, with parameters computed from the copied part
(and the context):

.. math::
    y_A = x_A, \qquad y_B = g\big(x_B;\ \psi(x_A, c)\big).

Its Jacobian is block triangular, so :math:`\log|\det J| = \sum_{i \in B} \log|g'(x_i)|`, and
it is inverted in one pass: :math:`x_A = y_A`, then :math:`x_B = g^{-1}(y_B; \psi(y_A, c))`.
The network :math:`\psi` never needs to be inverted, so it can be any network.

RealNVP uses the affine map :math:`g(x; s, t) = x\, e^{s} + t`, with
:math:`\log|\det J| = \sum_{i \in B} s_i`. Alternating which features are copied lets every
feature be transformed.

References:
    Dinh, Sohl-Dickstein & Bengio (2017), Density estimation using Real NVP, ICLR.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sbi_course.density.flows.base import ConditionalFlow, Transform, alternating_mask
from sbi_course.density.flows.linear import LULinear
from sbi_course.density.nets import make_net

__all__ = ["CouplingTransform", "AffineCoupling", "RealNVP"]


class CouplingTransform(Transform):
    """Base class of coupling layers: split by ``mask``, condition, transform elementwise.

    Args:
        mask: boolean tensor of shape (D,), ``True`` for the transformed features.
        context_features: size E of the (embedded) context.
        params_per_feature: number of parameters of the elementwise map per transformed feature.
        hidden_features, num_layers, residual, activation: the conditioner network
            (:func:`~sbi_course.density.nets.make_net`), whose last layer starts at zero.

    Subclasses implement ``_transform(x_B, params, inverse) -> (y_B, log_abs_det)`` with
    ``params`` of shape (N, |B|, params_per_feature).
    """

    def __init__(
        self,
        mask: Tensor,
        context_features: int,
        params_per_feature: int,
        hidden_features: int = 50,
        num_layers: int = 2,
        residual: bool = False,
        activation: type[nn.Module] = nn.ReLU,
    ):
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if not mask.any():
            raise ValueError("a coupling layer must transform at least one feature")
        self.register_buffer("transformed", torch.nonzero(mask).squeeze(1))
        self.register_buffer("identity", torch.nonzero(~mask).squeeze(1))
        self.params_per_feature = params_per_feature
        num_transformed = int(mask.sum())
        self.conditioner = make_net(
            int((~mask).sum()) + context_features,
            num_transformed * params_per_feature,
            hidden_features,
            num_layers,
            residual=residual,
            activation=activation,
            zero_init=True,
        )

    def _params(self, x_identity: Tensor, context: Tensor) -> Tensor:
        out = self.conditioner(torch.cat([x_identity, context], dim=1))
        return out.reshape(out.shape[0], -1, self.params_per_feature)

    def _couple(self, x: Tensor, context: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        x_identity = x[:, self.identity]
        params = self._params(x_identity, context)
        y_transformed, log_det = self._transform(x[:, self.transformed], params, inverse)
        # Write into a copy (index_copy is out of place), so autograd sees a pure function.
        y = x.index_copy(1, self.transformed, y_transformed)
        return y, log_det.sum(-1)

    def forward(self, x: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(x, context, inverse=False)

    def inverse(self, y: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        return self._couple(y, context, inverse=True)

    def _transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class AffineCoupling(CouplingTransform):
    r"""Affine coupling ``y_B = x_B * exp(s) + t`` with ``(s, t)`` from the conditioner.

    The log-scale is softly bounded, :math:`s = b \tanh(\tilde s / b)` with ``scale_bound``
    :math:`b`, so that one layer cannot stretch by more than :math:`e^{b}` (this keeps early
    training stable).
    """

    def __init__(self, mask: Tensor, context_features: int, scale_bound: float = 3.0, **kwargs):
        super().__init__(mask, context_features, params_per_feature=2, **kwargs)
        self.scale_bound = scale_bound

    def _transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        raw_log_scale, shift = params[..., 0], params[..., 1]
        log_scale = self.scale_bound * torch.tanh(raw_log_scale / self.scale_bound)
        if inverse:
            return (x - shift) * torch.exp(-log_scale), -log_scale
        return x * torch.exp(log_scale) + shift, log_scale


def append_couplings(flow: ConditionalFlow, couplings, linear: bool) -> None:
    """Append coupling layers to ``flow.transforms``, with a learned linear map between
    neighbours when ``linear`` is set (it lets the flow pick its own axes).

    ``couplings`` may be a generator: each layer is built just before it is appended, so the
    order in which parameters are initialised is the order of the layers.
    """
    for layer, coupling in enumerate(couplings):
        if linear and flow.input_dim > 1 and layer > 0:
            flow.transforms.append(LULinear(flow.input_dim))
        flow.transforms.append(coupling)


class RealNVP(ConditionalFlow):
    """Conditional RealNVP: ``num_transforms`` affine coupling layers with alternating masks.

    Args:
        input_dim: dimension D of the modelled variable.
        context_dim: dimension C of the context.
        num_transforms: number of coupling layers.
        hidden_features: width of each conditioner's hidden layers.
        num_layers: hidden layers (or residual blocks) per conditioner.
        residual: use residual conditioners.
        activation: activation module class of the conditioners.
        linear: put a learned :class:`~sbi_course.density.flows.linear.LULinear` map between
            consecutive coupling layers.
        scale_bound: soft bound of each layer's log-scale.
        **kwargs: passed to :class:`~sbi_course.density.flows.base.ConditionalFlow`
            (``input_standardize``, ``context_standardize``, ``embedding_net``, ``embedding_dim``).
    """

    def __init__(
        self,
        input_dim: int,
        context_dim: int,
        num_transforms: int = 5,
        hidden_features: int = 50,
        num_layers: int = 2,
        residual: bool = False,
        scale_bound: float = 3.0,
        activation: type[nn.Module] = nn.ReLU,
        linear: bool = True,
        **kwargs,
    ):
        super().__init__(input_dim, context_dim, **kwargs)
        layers = (
            AffineCoupling(
                alternating_mask(input_dim, layer),
                self.embedding_dim,
                scale_bound=scale_bound,
                hidden_features=hidden_features,
                num_layers=num_layers,
                residual=residual,
                activation=activation,
            )
            for layer in range(num_transforms)
        )
        append_couplings(self, layers, linear)
