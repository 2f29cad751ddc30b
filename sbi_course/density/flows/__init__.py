"""Conditional normalizing flows: affine coupling (RealNVP), MAF and neural spline flows.

Every flow is a :class:`~sbi_course.density.flows.base.ConditionalFlow` with ``log_prob``,
``sample`` and the transforms ``forward`` (data -> noise) and ``inverse`` (noise -> data), each
returning its log-determinant.

Example:
    >>> import torch
    >>> from sbi_course.density.flows import NSF
    >>> flow = NSF(input_dim=2, context_dim=3)
    >>> z, log_det = flow.forward(torch.randn(5, 2), torch.randn(5, 3))
    >>> z.shape, log_det.shape
    (torch.Size([5, 2]), torch.Size([5]))
"""

from sbi_course.density.flows.base import ConditionalFlow, Permutation, Transform, alternating_mask
from sbi_course.density.flows.coupling import AffineCoupling, CouplingTransform, RealNVP
from sbi_course.density.flows.linear import LULinear
from sbi_course.density.flows.maf import MADE, MAF, MaskedAffineAutoregressive
from sbi_course.density.flows.spline import NSF, RQSplineCoupling, rational_quadratic_spline

__all__ = [
    "Transform",
    "Permutation",
    "ConditionalFlow",
    "alternating_mask",
    "LULinear",
    "CouplingTransform",
    "AffineCoupling",
    "RealNVP",
    "MADE",
    "MaskedAffineAutoregressive",
    "MAF",
    "RQSplineCoupling",
    "rational_quadratic_spline",
    "NSF",
]
