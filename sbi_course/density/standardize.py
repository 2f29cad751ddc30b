r"""Z-scoring: an affine change of variables fitted to the training data.

Networks train best when their inputs are of order one. Parameters and data of real
simulators are not (a rate of 0.001, a count of 5,000), so every estimator first maps a
variable :math:`v` to :math:`u = (v - m) / s` with the mean :math:`m` and standard deviation
:math:`s` of the training set.

For the variable whose *density* is modelled this is a change of variables, and the
log-determinant must be added so that the density stays the density of the original
variable:

.. math::
    \log q_v(v) = \log q_u\big((v - m)/s\big) - \sum_i \log s_i .

For the conditioning variable (the context) no correction is needed: it is only an input
of a network.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Standardize"]


class Standardize(nn.Module):
    r"""The affine map :math:`u = (v - m) / s`, with its inverse and log-determinant.

    Args:
        mean: shift :math:`m`, shape (D,).
        std: scale :math:`s`, shape (D,), positive.

    Use :meth:`from_data` to fit ``mean`` and ``std`` to a training set; ``Standardize.identity(D)``
    switches z-scoring off while keeping the interface.
    """

    def __init__(self, mean: Tensor, std: Tensor):
        super().__init__()
        mean = torch.as_tensor(mean, dtype=torch.get_default_dtype()).reshape(-1)
        std = torch.as_tensor(std, dtype=torch.get_default_dtype()).reshape(-1)
        if mean.shape != std.shape:
            raise ValueError(
                f"mean and std must have the same shape, got {mean.shape}, {std.shape}"
            )
        if not (std > 0).all():
            raise ValueError("Standardize needs strictly positive standard deviations")
        # Buffers move with .to()/.double() and are saved in state_dict, but are not trained.
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    @classmethod
    def from_data(cls, data: Tensor, min_std: float = 1e-8) -> Standardize:
        """Fit mean and standard deviation to ``data`` of shape (N, D), ignoring NaN rows.

        A column with (almost) no spread keeps scale one, so that it does not blow up.
        """
        data = torch.as_tensor(data)
        if data.ndim != 2:
            raise ValueError(f"Standardize.from_data needs data of shape (N, D), got {data.shape}")
        data = data[torch.isfinite(data).all(dim=1)].to(torch.get_default_dtype())
        if data.shape[0] == 0:
            raise ValueError("Standardize.from_data needs at least one finite row")
        if data.shape[0] == 1 or data.shape[1] == 0:
            return cls(data[0], torch.ones(data.shape[1]))
        std = data.std(dim=0)
        std = torch.where(std > min_std, std, torch.ones_like(std))
        return cls(data.mean(dim=0), std)

    @classmethod
    def identity(cls, dim: int) -> Standardize:
        """No-op standardisation of ``dim`` features (mean 0, scale 1)."""
        return cls(torch.zeros(dim), torch.ones(dim))

    @property
    def dim(self) -> int:
        return self.mean.shape[0]

    def forward(self, value: Tensor) -> Tensor:
        """Map ``value`` of shape (..., D) to z-scores."""
        return (value - self.mean) / self.std

    def inverse(self, value: Tensor) -> Tensor:
        """Map z-scores of shape (..., D) back to the original scale."""
        return value * self.std + self.mean

    def log_abs_det(self) -> Tensor:
        r"""Log-determinant of the forward map, :math:`-\sum_i \log s_i` (a scalar)."""
        return -torch.log(self.std).sum()

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
