r"""Conditional normalizing flows: an invertible map from data to Gaussian noise.

A flow models a density through a bijection :math:`z = f(v; c)` onto a standard normal
:math:`z`. By the change-of-variables formula,

.. math::
    \log q(v \mid c) = \log \mathcal N\big(f(v; c); 0, I\big)
        + \log \left| \det \frac{\partial f(v; c)}{\partial v} \right| .

:math:`f` is a composition of simple layers :math:`f = f_K \circ \dots \circ f_1`, each with a
cheap inverse and a cheap log-determinant, and the log-determinants add up.

Conventions in this package (those of ``nflows``): a :class:`Transform`'s ``forward`` maps
data towards noise (the direction needed for ``log_prob``) and returns ``(output, log|det J|)``;
``inverse`` maps noise towards data (the direction needed for ``sample``) and returns the
log-determinant of *its own* Jacobian, so that ``forward`` and ``inverse`` log-determinants
of matching points are negatives of each other.

References:
    Papamakarios, Nalisnick, Rezende, Mohamed & Lakshminarayanan (2021), Normalizing flows for
    probabilistic modeling and inference, JMLR 22(57).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from sbi_course.density.base import ConditionalDensityEstimator

__all__ = ["Transform", "Permutation", "ConditionalFlow", "alternating_mask"]


class Transform(nn.Module):
    """An invertible layer ``y = f(x; c)``, batched over rows.

    Subclasses implement ``forward(x, context) -> (y, log_abs_det)`` and
    ``inverse(y, context) -> (x, log_abs_det)`` with ``x, y`` of shape (N, D), ``context`` of
    shape (N, E) and log-determinants of shape (N,).
    """

    def forward(self, x: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse(self, y: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class Permutation(Transform):
    """Reorder the features: ``y = x[:, permutation]`` (volume preserving, log-det 0).

    Autoregressive and coupling layers treat features unequally; permuting between layers
    lets every feature be transformed conditioned on every other.
    """

    def __init__(self, permutation: Tensor):
        super().__init__()
        permutation = torch.as_tensor(permutation, dtype=torch.long)
        self.register_buffer("permutation", permutation)
        self.register_buffer("inverse_permutation", torch.argsort(permutation))

    @classmethod
    def reverse(cls, dim: int) -> Permutation:
        return cls(torch.arange(dim - 1, -1, -1))

    def forward(self, x: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, self.permutation], x.new_zeros(x.shape[0])

    def inverse(self, y: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        return y[:, self.inverse_permutation], y.new_zeros(y.shape[0])


def alternating_mask(dim: int, layer: int) -> Tensor:
    """Boolean mask of the features a coupling layer transforms (``True``) in layer ``layer``.

    Even layers transform the odd-numbered features and odd layers the even-numbered ones, so
    that consecutive layers alternate. A single feature is always transformed (conditioned on
    the context only).
    """
    if dim == 1:
        return torch.ones(1, dtype=torch.bool)
    return (torch.arange(dim) + layer) % 2 == 1


class ConditionalFlow(ConditionalDensityEstimator):
    """A conditional flow: z-scoring, then ``transforms`` in order, onto a standard normal.

    Args:
        input_dim: dimension D of the modelled variable.
        context_dim: dimension C of the context.
        transforms: the layers, applied in order from data to noise.
        **kwargs: passed to :class:`~sbi_course.density.base.ConditionalDensityEstimator`.
    """

    def __init__(self, input_dim: int, context_dim: int, transforms=(), **kwargs):
        super().__init__(input_dim, context_dim, **kwargs)
        self.transforms = nn.ModuleList(transforms)

    # The methods below work on the z-scored scale and with an embedded context.
    def _to_noise(self, u: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        log_det = u.new_zeros(u.shape[0])
        for transform in self.transforms:
            u, step = transform(u, c)
            log_det = log_det + step
        return u, log_det

    def _to_data(self, z: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        log_det = z.new_zeros(z.shape[0])
        for transform in reversed(self.transforms):
            z, step = transform.inverse(z, c)
            log_det = log_det + step
        return z, log_det

    def _log_prob(self, u: Tensor, c: Tensor) -> Tensor:
        z, log_det = self._to_noise(u, c)
        base = -0.5 * (z**2).sum(-1) - 0.5 * self.input_dim * math.log(2 * math.pi)
        return base + log_det

    def _sample(self, num_samples: int, c: Tensor, generator: torch.Generator | None) -> Tensor:
        M = c.shape[0]
        z = torch.randn(M * num_samples, self.input_dim, generator=generator, dtype=self.dtype)
        u, _ = self._to_data(z, c.repeat_interleave(num_samples, dim=0))
        return u.reshape(M, num_samples, self.input_dim)

    # Public transforms on the original scale, z-scoring included.
    def forward(self, inputs: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""Map data to noise: ``(z, log|det dz/dv|)`` with z of shape (N, D), log-det (N,).

        Args:
            inputs: data ``v``, shape (N, D).
            context: shape (N, C), or a single context (C,) shared by all rows.
        """
        inputs = self._check_inputs(inputs)
        c = self.embed(self._check_context(context, inputs.shape[0]))
        z, log_det = self._to_noise(self.input_standardize(inputs), c)
        return z, log_det + self.input_standardize.log_abs_det()

    def inverse(self, noise: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""Map noise to data: ``(v, log|det dv/dz|)`` with v of shape (N, D), log-det (N,).

        Args:
            noise: points ``z`` of the base space, shape (N, D).
            context: shape (N, C), or a single context (C,) shared by all rows.
        """
        noise = self._check_inputs(noise)
        c = self.embed(self._check_context(context, noise.shape[0]))
        u, log_det = self._to_data(noise, c)
        return self.input_standardize.inverse(u), log_det - self.input_standardize.log_abs_det()
