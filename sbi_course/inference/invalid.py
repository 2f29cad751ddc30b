"""Dropping failed simulations before training.

Simulators in this course return a NaN row when a simulation fails (an ODE solver that
diverges, a population that dies out). Such rows carry no information a network could learn
from, and one of them in a mini-batch makes the loss NaN; every method drops them before it
trains, with a warning that says how many.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

__all__ = ["drop_invalid"]


def drop_invalid(theta: Tensor, x: Tensor, owner: str) -> tuple[Tensor, Tensor]:
    """Remove simulations whose parameters or data contain NaN or infinite values.

    Simulators in this course return a NaN row when a simulation fails (an ODE solver that
    diverges, a population that dies out); such rows carry no information a density
    estimator could use, so they are dropped, and a warning says how many.

    Args:
        theta: parameters, shape (N, D).
        x: simulated data, shape (N, L), row-aligned with ``theta``.
        owner: who asks (``"NPE"``), used in messages.

    Returns:
        ``(theta, x)`` without the invalid rows, as floating-point tensors.

    Raises:
        ValueError: when the inputs are not 2-D, have different numbers of rows, or no valid
            row is left.
    """
    tensors = []
    for name, value in (("theta", theta), ("x", x)):
        value = torch.as_tensor(value)
        if not value.is_floating_point():
            value = value.to(torch.get_default_dtype())
        if value.ndim != 2:
            hint = " (use .reshape(-1, 1) for a single dimension)" if value.ndim == 1 else ""
            raise ValueError(
                f"{name} for {owner} must have shape (N, dim), got {tuple(value.shape)}{hint}"
            )
        tensors.append(value)
    theta, x = tensors
    if theta.shape[0] != x.shape[0]:
        raise ValueError(
            f"theta and x for {owner} must have the same number of rows, got "
            f"{theta.shape[0]} and {x.shape[0]}"
        )
    if theta.shape[0] == 0:
        raise ValueError(f"{owner} got no simulations: theta and x have 0 rows")
    valid = torch.isfinite(theta).all(dim=1) & torch.isfinite(x).all(dim=1)
    num_invalid = int((~valid).sum())
    if num_invalid == theta.shape[0]:
        raise ValueError(
            f"{owner} has no valid simulations: all {theta.shape[0]} rows contain NaN or inf"
        )
    if num_invalid > 0:
        warnings.warn(
            f"{owner}: dropped {num_invalid} of {theta.shape[0]} simulations that contain NaN "
            f"or infinite values",
            stacklevel=2,
        )
        theta, x = theta[valid], x[valid]
    return theta, x
