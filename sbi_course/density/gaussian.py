r"""A conditional Gaussian: a network maps the context to a mean and a covariance.

.. math::
    q(v \mid c) = \mathcal N\big(v;\ \mu(c),\ L(c) L(c)^\top\big),

where :math:`L(c)` is lower triangular with a positive diagonal (a Cholesky factor), so that
every network output is a valid covariance. With ``covariance="diag"`` the off-diagonal
entries are zero. With :math:`z = L^{-1}(v - \mu)`,

.. math::
    \log q(v \mid c) = -\tfrac12 \lVert z \rVert^2 - \sum_i \log L_{ii} - \tfrac D2 \log 2\pi .

This is the simplest neural posterior estimator (Papamakarios & Murray 2016 start from it);
it cannot represent skewed or multimodal posteriors, which motivates mixtures and flows.

References:
    Papamakarios & Murray (2016), Fast epsilon-free inference of simulation models with
    Bayesian conditional density estimation, NeurIPS.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from sbi_course.density.base import ConditionalDensityEstimator
from sbi_course.density.nets import make_net

__all__ = ["ConditionalGaussian", "gaussian_log_prob", "cholesky_from_raw"]

# softplus(x + _SOFTPLUS_ONE) == 1 at x = 0: a zero network output means unit scale.
_SOFTPLUS_ONE = math.log(math.e - 1.0)


def cholesky_from_raw(raw_diag: Tensor, raw_off: Tensor | None, dim: int) -> Tensor:
    """Assemble Cholesky factors from unconstrained network outputs.

    Args:
        raw_diag: unconstrained diagonal, shape (..., D); softplus makes it positive.
        raw_off: strictly-lower-triangular entries, shape (..., D(D-1)/2), or ``None`` (diagonal).
        dim: D.

    Returns:
        Lower-triangular matrices of shape (..., D, D) with positive diagonals.
    """
    diag = F.softplus(raw_diag + _SOFTPLUS_ONE) + 1e-5
    tril = torch.diag_embed(diag)
    if raw_off is not None and dim > 1:
        rows, cols = torch.tril_indices(dim, dim, offset=-1)
        off = raw_off.new_zeros(raw_off.shape[:-1] + (dim, dim))
        off[..., rows, cols] = raw_off
        tril = tril + off
    return tril


def gaussian_log_prob(value: Tensor, mean: Tensor, scale_tril: Tensor) -> Tensor:
    """Log-density of N(mean, L L^T) at ``value``; all arguments broadcast over leading dims.

    Args:
        value: shape (..., D).
        mean: shape (..., D).
        scale_tril: Cholesky factors, shape (..., D, D).

    Returns:
        Log-densities, shape (...,).
    """
    diff = (value - mean).unsqueeze(-1)
    z = torch.linalg.solve_triangular(scale_tril, diff, upper=False).squeeze(-1)
    log_det = torch.log(torch.diagonal(scale_tril, dim1=-2, dim2=-1)).sum(-1)
    dim = value.shape[-1]
    return -0.5 * (z**2).sum(-1) - log_det - 0.5 * dim * math.log(2 * math.pi)


class ConditionalGaussian(ConditionalDensityEstimator):
    """Gaussian whose mean and Cholesky factor are outputs of an MLP of the context.

    Args:
        input_dim: dimension D of the modelled variable.
        context_dim: dimension C of the context (0: an unconditional Gaussian).
        covariance: ``"full"`` (Cholesky factor) or ``"diag"`` (independent dimensions).
        hidden_features: width of the hidden layers.
        num_layers: number of hidden layers (0: a linear map of the context).
        **kwargs: passed to :class:`~sbi_course.density.base.ConditionalDensityEstimator`
            (``input_standardize``, ``context_standardize``, ``embedding_net``, ``embedding_dim``).
    """

    def __init__(
        self,
        input_dim: int,
        context_dim: int,
        covariance: str = "full",
        hidden_features: int = 50,
        num_layers: int = 2,
        **kwargs,
    ):
        super().__init__(input_dim, context_dim, **kwargs)
        if covariance not in ("full", "diag"):
            raise ValueError(f"covariance must be 'full' or 'diag', got {covariance!r}")
        self.covariance = covariance
        D = input_dim
        self.num_off = D * (D - 1) // 2 if covariance == "full" else 0
        self.net = make_net(self.embedding_dim, 2 * D + self.num_off, hidden_features, num_layers)

    def mean_and_scale_tril(self, c: Tensor) -> tuple[Tensor, Tensor]:
        """Mean (N, D) and Cholesky factor (N, D, D) on the z-scored scale, for contexts (N, E)."""
        D = self.input_dim
        out = self.net(c)
        mean, raw_diag, raw_off = out[:, :D], out[:, D : 2 * D], out[:, 2 * D :]
        return mean, cholesky_from_raw(raw_diag, raw_off if self.num_off else None, D)

    def _log_prob(self, u: Tensor, c: Tensor) -> Tensor:
        mean, scale_tril = self.mean_and_scale_tril(c)
        return gaussian_log_prob(u, mean, scale_tril)

    def _sample(self, num_samples: int, c: Tensor, generator: torch.Generator | None) -> Tensor:
        mean, scale_tril = self.mean_and_scale_tril(c)  # (M, D), (M, D, D)
        eps = torch.randn(
            c.shape[0], num_samples, self.input_dim, generator=generator, dtype=mean.dtype
        )
        return mean.unsqueeze(1) + (scale_tril.unsqueeze(1) @ eps.unsqueeze(-1)).squeeze(-1)
