r"""A time-conditioned network for flow matching and score matching.

FMPE and NPSE both learn a function of three inputs, :math:`f_\phi(\theta_t, t, x)`: a point
:math:`\theta_t` on the way from noise to the posterior, the time :math:`t \in [0, 1]` and the
observation :math:`x`. FMPE reads the output as a velocity, NPSE as the noise that was added
(and so, up to a scale, a score). The network here is the simplest one that works well on
the low-dimensional problems of SBI:

* the time enters through a **time embedding**, a few sines and cosines of :math:`t` at
  geometrically spaced frequencies (Vaswani et al. 2017; Tancik et al. 2020): a plain scalar
  :math:`t` is a weak input for a ReLU network, whose output must change quickly in :math:`t`
  near the ends of the path;
* :math:`\theta_t`, the embedding and :math:`x` are concatenated and passed through a
  **residual MLP** (:class:`~sbi_course.density.nets.ResidualMLP`, He et al. 2016);
* :math:`\theta` and :math:`x` are **z-scored** with statistics of the training set
  (:class:`~sbi_course.density.standardize.Standardize`), so that the network sees numbers of
  order one. The whole continuous flow then lives in z-scored coordinates :math:`u`, and a
  density in :math:`\theta` is :math:`\log q(\theta) = \log q_u(u) - \sum_i \log s_i`.

Example:
    >>> import torch
    >>> net = VectorFieldNet(theta_dim=2, x_dim=3)
    >>> net(torch.zeros(5, 2), torch.rand(5), torch.zeros(5, 3)).shape
    torch.Size([5, 2])

References:
    Vaswani et al. (2017), Attention is all you need, NeurIPS (sinusoidal embeddings).
    Tancik et al. (2020), Fourier features let networks learn high frequency functions in low
    dimensional domains, NeurIPS.
    He et al. (2016), Deep residual learning for image recognition, CVPR.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sbi_course.density.nets import make_net
from sbi_course.density.standardize import Standardize

__all__ = ["TimeEmbedding", "VectorFieldNet"]


class TimeEmbedding(nn.Module):
    r"""Map times :math:`t` of shape (N,) to features of shape (N, 2K + 1).

    The features are :math:`t` itself and :math:`\sin(\omega_k t)`, :math:`\cos(\omega_k t)`
    for :math:`K` fixed frequencies :math:`\omega_k` spaced geometrically between
    :math:`\pi/2` and ``max_frequency`` (nothing here is random or trained).

    Args:
        num_frequencies: K.
        max_frequency: the highest angular frequency.
    """

    def __init__(self, num_frequencies: int = 8, max_frequency: float = 64.0):
        super().__init__()
        if num_frequencies < 1:
            raise ValueError(f"TimeEmbedding needs num_frequencies >= 1, got {num_frequencies}")
        frequencies = torch.logspace(
            math.log10(math.pi / 2), math.log10(max_frequency), num_frequencies
        )
        self.register_buffer("frequencies", frequencies)

    @property
    def out_features(self) -> int:
        return 2 * self.frequencies.shape[0] + 1

    def forward(self, t: Tensor) -> Tensor:
        angle = t[:, None] * self.frequencies.to(t.dtype)
        return torch.cat([t[:, None], angle.sin(), angle.cos()], dim=1)


class VectorFieldNet(nn.Module):
    r"""A residual MLP :math:`f_\phi(u_t, t, x)` on z-scored parameters, with a time embedding.

    Args:
        theta_dim: D, the dimension of :math:`\theta`.
        x_dim: L, the dimension of the observation.
        hidden_features: width of the residual blocks.
        num_blocks: number of residual blocks (two layers each).
        num_frequencies: frequencies of the :class:`TimeEmbedding`.
        theta_standardize: z-scoring of :math:`\theta` (identity when ``None``).
        x_standardize: z-scoring of :math:`x` (identity when ``None``).
        embedding_net: optional network applied to the z-scored :math:`x` first (its output
            size is found by running it on zeros).

    The input :math:`u_t` is already in z-scored coordinates; :meth:`forward` z-scores only
    :math:`x`. Use :attr:`theta_standardize` to move between :math:`\theta` and :math:`u`.
    """

    def __init__(
        self,
        theta_dim: int,
        x_dim: int,
        hidden_features: int = 128,
        num_blocks: int = 3,
        num_frequencies: int = 8,
        theta_standardize: Standardize | None = None,
        x_standardize: Standardize | None = None,
        embedding_net: nn.Module | None = None,
    ):
        super().__init__()
        self.theta_dim, self.x_dim = int(theta_dim), int(x_dim)
        self.theta_standardize = theta_standardize or Standardize.identity(theta_dim)
        self.x_standardize = x_standardize or Standardize.identity(x_dim)
        self.embedding_net = embedding_net if embedding_net is not None else nn.Identity()
        with torch.no_grad():
            context_features = self.embedding_net(torch.zeros(1, x_dim)).shape[-1]
        self.time_embedding = TimeEmbedding(num_frequencies)
        in_features = theta_dim + self.time_embedding.out_features + context_features
        self.net = make_net(
            in_features, theta_dim, hidden_features, num_blocks, residual=True, activation=nn.SiLU
        )

    @property
    def dtype(self) -> torch.dtype:
        return self.theta_standardize.mean.dtype

    def embed_context(self, x: Tensor) -> Tensor:
        """Z-score ``x`` of shape (N, L) and apply the embedding net: shape (N, C)."""
        return self.embedding_net(self.x_standardize(x.to(self.dtype)))

    def forward(self, u: Tensor, t: Tensor, x: Tensor, embedded: bool = False) -> Tensor:
        """Evaluate the network.

        Args:
            u: z-scored parameters on the path, shape (N, D).
            t: times, shape (N,) (or a scalar, shared).
            x: observations, shape (N, L), or already embedded contexts (N, C) with
                ``embedded=True`` (saves work inside ODE solvers).
            embedded: whether ``x`` went through :meth:`embed_context` already.

        Returns:
            The output, shape (N, D).
        """
        t = torch.as_tensor(t, dtype=u.dtype).expand(u.shape[0])
        context = x if embedded else self.embed_context(x)
        return self.net(torch.cat([u, self.time_embedding(t), context], dim=1))
