r"""Mixture density network: a Gaussian mixture whose parameters are functions of the context.

.. math::
    q(v \mid c) = \sum_{k=1}^K \pi_k(c)\, \mathcal N\big(v;\ \mu_k(c),\ L_k(c) L_k(c)^\top\big),

with mixture weights :math:`\pi(c) = \mathrm{softmax}(\text{logits}(c))` and full covariances
through Cholesky factors :math:`L_k(c)`. The log-density is computed stably with
log-sum-exp over the components. A mixture can represent multimodal posteriors that a single
Gaussian cannot; it was the estimator of the first neural posterior estimation papers.

References:
    Bishop (1994), Mixture density networks, Aston University technical report.
    Papamakarios & Murray (2016), Fast epsilon-free inference of simulation models with
    Bayesian conditional density estimation, NeurIPS.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sbi_course.density.base import ConditionalDensityEstimator
from sbi_course.density.gaussian import cholesky_from_raw, gaussian_log_prob
from sbi_course.density.nets import make_net

__all__ = ["MixtureDensityNetwork"]


class MixtureDensityNetwork(ConditionalDensityEstimator):
    """Conditional mixture of ``num_components`` full-covariance Gaussians.

    Args:
        input_dim: dimension D of the modelled variable.
        context_dim: dimension C of the context.
        num_components: number of mixture components K.
        hidden_features: width of the hidden layers.
        num_layers: number of hidden layers.
        **kwargs: passed to :class:`~sbi_course.density.base.ConditionalDensityEstimator`.
    """

    def __init__(
        self,
        input_dim: int,
        context_dim: int,
        num_components: int = 10,
        hidden_features: int = 50,
        num_layers: int = 2,
        **kwargs,
    ):
        super().__init__(input_dim, context_dim, **kwargs)
        if num_components < 1:
            raise ValueError(f"num_components must be at least 1, got {num_components}")
        self.num_components = K = int(num_components)
        D = input_dim
        self.num_off = D * (D - 1) // 2
        self.net = make_net(
            self.embedding_dim, K * (1 + 2 * D + self.num_off), hidden_features, num_layers
        )

    def mixture(self, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mixture parameters on the z-scored scale for contexts ``c`` (N, E).

        Returns:
            ``(log_weights, means, scale_trils)`` of shapes (N, K), (N, K, D), (N, K, D, D).
        """
        K, D = self.num_components, self.input_dim
        out = self.net(c)
        logits, rest = out[:, :K], out[:, K:].reshape(-1, K, 2 * D + self.num_off)
        means, raw_diag, raw_off = rest[..., :D], rest[..., D : 2 * D], rest[..., 2 * D :]
        scale_trils = cholesky_from_raw(raw_diag, raw_off if self.num_off else None, D)
        return torch.log_softmax(logits, dim=-1), means, scale_trils

    def _log_prob(self, u: Tensor, c: Tensor) -> Tensor:
        log_weights, means, scale_trils = self.mixture(c)
        component_lp = gaussian_log_prob(u.unsqueeze(1), means, scale_trils)  # (N, K)
        return torch.logsumexp(log_weights + component_lp, dim=-1)

    def _sample(self, num_samples: int, c: Tensor, generator: torch.Generator | None) -> Tensor:
        log_weights, means, scale_trils = self.mixture(c)
        M, D = c.shape[0], self.input_dim
        # Pick a component for each draw, then draw from that Gaussian.
        k = torch.multinomial(log_weights.exp(), num_samples, replacement=True, generator=generator)
        rows = torch.arange(M).unsqueeze(1)
        mean, tril = means[rows, k], scale_trils[rows, k]  # (M, n, D), (M, n, D, D)
        eps = torch.randn(M, num_samples, D, generator=generator, dtype=means.dtype)
        return mean + (tril @ eps.unsqueeze(-1)).squeeze(-1)
