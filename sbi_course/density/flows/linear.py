r"""A learned invertible linear layer in LU form, to mix features between coupling layers.

A coupling layer only transforms some features, conditioned on the others, along fixed
coordinate axes. A learned linear map :math:`y = W x + b` between coupling layers lets the
flow choose its own axes (in two dimensions: rotate and shear). Writing :math:`W = L U` with
:math:`L` unit lower triangular and :math:`U` upper triangular with a positive diagonal keeps
:math:`W` invertible, makes :math:`\log|\det W| = \sum_i \log U_{ii}` cheap and the inverse
two triangular solves.

References:
    Kingma & Dhariwal (2018), Glow: generative flow with invertible 1x1 convolutions, NeurIPS.
    Durkan, Bekasov, Murray & Papamakarios (2019), Neural spline flows, NeurIPS.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sbi_course.density.flows.base import Transform

__all__ = ["LULinear"]


class LULinear(Transform):
    """``y = x W^T + b`` with ``W = L U``; starts as the identity map.

    The map does not depend on the context.

    Args:
        features: D.
    """

    def __init__(self, features: int):
        super().__init__()
        self.features = features
        self.lower_entries = nn.Parameter(torch.zeros(features * (features - 1) // 2))
        self.upper_entries = nn.Parameter(torch.zeros(features * (features - 1) // 2))
        self.log_diagonal = nn.Parameter(torch.zeros(features))
        self.bias = nn.Parameter(torch.zeros(features))
        self.register_buffer("lower_index", torch.tril_indices(features, features, offset=-1))
        self.register_buffer("upper_index", torch.triu_indices(features, features, offset=1))

    def factors(self) -> tuple[Tensor, Tensor]:
        """The factors ``L`` (unit lower triangular) and ``U`` (upper, positive diagonal)."""
        D = self.features
        eye = torch.eye(D, dtype=self.bias.dtype)
        lower = eye.index_put(tuple(self.lower_index), self.lower_entries)
        upper = torch.diag(torch.exp(self.log_diagonal)).index_put(
            tuple(self.upper_index), self.upper_entries
        )
        return lower, upper

    def forward(self, x: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        lower, upper = self.factors()
        y = x @ (lower @ upper).T + self.bias
        return y, self.log_diagonal.sum().expand(x.shape[0])

    def inverse(self, y: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        lower, upper = self.factors()
        # Solve L U x = y - b for each row (as columns of a matrix).
        rhs = (y - self.bias).T
        z = torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(upper, z, upper=True).T
        return x, -self.log_diagonal.sum().expand(y.shape[0])
