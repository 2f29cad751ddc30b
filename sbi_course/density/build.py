"""Build a conditional density estimator by name, with z-scoring fitted to the training data.

Example:
    >>> import torch
    >>> theta, x = torch.randn(100, 2), torch.randn(100, 3)
    >>> estimator = build_estimator("nsf", theta, x, num_transforms=3)
    >>> estimator.log_prob(theta, x).shape
    torch.Size([100])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sbi_course.density.base import ConditionalDensityEstimator
from sbi_course.density.flows import MAF, NSF, RealNVP
from sbi_course.density.gaussian import ConditionalGaussian
from sbi_course.density.mdn import MixtureDensityNetwork
from sbi_course.density.standardize import Standardize

__all__ = ["ESTIMATORS", "build_estimator"]

# name -> (class, default hyperparameters). The NSF defaults are tuned so that NPE on
# two_moons with 10,000 simulations trains in about 20 s on a 2-core CPU and beats the sbibm
# paper's accuracy (benchmarks/npe_two_moons.py). Small networks on a CPU spend most of a step
# in per-operation overhead, so moderately wide residual conditioners cost little extra.
ESTIMATORS: dict[str, tuple[type[ConditionalDensityEstimator], dict]] = {
    "gaussian": (ConditionalGaussian, {"covariance": "full", "hidden_features": 50}),
    "gaussian_diag": (ConditionalGaussian, {"covariance": "diag", "hidden_features": 50}),
    "mdn": (MixtureDensityNetwork, {"num_components": 10, "hidden_features": 50}),
    "realnvp": (RealNVP, {"num_transforms": 5, "hidden_features": 50}),
    "maf": (MAF, {"num_transforms": 5, "hidden_features": 50}),
    "nsf": (
        NSF,
        {"num_transforms": 4, "num_bins": 8, "hidden_features": 64, "residual": True},
    ),
}


def _check_data(name: str, inputs: Tensor, context: Tensor) -> None:
    """Raise a ValueError for an unknown estimator ``name`` or data that are not row-aligned
    (N, D) and (N, C) matrices."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown density estimator {name!r}; choose one of {sorted(ESTIMATORS)}")
    for label, value in (("inputs", inputs), ("context", context)):
        if value.ndim != 2:
            raise ValueError(f"build_estimator needs {label} of shape (N, dim), got {value.shape}")
    if inputs.shape[0] != context.shape[0]:
        raise ValueError(
            f"inputs and context need the same number of rows, got {inputs.shape[0]} and "
            f"{context.shape[0]}"
        )


def build_estimator(
    name: str,
    inputs: Tensor,
    context: Tensor,
    *,
    z_score_inputs: bool = True,
    z_score_context: bool = True,
    embedding_net: nn.Module | None = None,
    **hyperparameters,
) -> ConditionalDensityEstimator:
    """Create an untrained estimator of ``q(inputs | context)`` sized and z-scored for the data.

    Args:
        name: one of ``"gaussian"``, ``"gaussian_diag"``, ``"mdn"``, ``"realnvp"``, ``"maf"``,
            ``"nsf"``.
        inputs: training values of the modelled variable, shape (N, D).
        context: training values of the conditioning variable, shape (N, C).
        z_score_inputs: standardise the inputs with their mean and standard deviation.
        z_score_context: standardise the context likewise.
        embedding_net: optional network applied to the z-scored context (its output size is
            found by running it on two rows of ``context``).
        **hyperparameters: override the defaults in :data:`ESTIMATORS` (``hidden_features``,
            ``num_transforms``, ``num_bins``, ``num_components``, ``num_layers``, ...).

    Returns:
        The estimator, in training mode.

    Raises:
        ValueError: for an unknown name or badly shaped data.
    """
    _check_data(name, inputs, context)
    cls, defaults = ESTIMATORS[name]
    input_dim, context_dim = inputs.shape[1], context.shape[1]
    input_standardize = (
        Standardize.from_data(inputs) if z_score_inputs else Standardize.identity(input_dim)
    )
    context_standardize = (
        Standardize.from_data(context) if z_score_context else Standardize.identity(context_dim)
    )
    embedding_dim = None
    if embedding_net is not None:
        with torch.no_grad():
            probe = context_standardize(context[:2].to(context_standardize.mean.dtype))
            embedding_dim = int(embedding_net(probe).shape[-1])
    return cls(
        input_dim,
        context_dim,
        input_standardize=input_standardize,
        context_standardize=context_standardize,
        embedding_net=embedding_net,
        embedding_dim=embedding_dim,
        **{**defaults, **hyperparameters},
    )
