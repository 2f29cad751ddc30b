r"""An estimator at a context is a torch distribution.

A conditional density estimator :math:`q_\phi(v \mid c)` becomes, once a context :math:`c` is
fixed, an ordinary distribution over :math:`v`. :class:`ConditionalDistribution` is that
object, in the form of :class:`torch.distributions.Distribution` (the convention of zuko):

* contexts of shape ``(*B, C)`` give a distribution with ``batch_shape == B`` and
  ``event_shape == (D,)``, one distribution per context;
* ``sample(sample_shape, generator=None)`` returns ``sample_shape + B + (D,)``;
* ``log_prob(v)`` broadcasts ``v`` of shape ``(*, D)`` against ``B``.

The z-scoring of the modelled variable is a transform inside it: with the affine map
:math:`u = (v - m) / s` (:class:`~sbi_course.density.standardize.Standardize`) the estimator
models :math:`u`, and

.. math::
    \log q(v \mid c) = \log q_u\big((v - m)/s \mid c\big) - \sum_i \log s_i ,
    \qquad v = m + s\,u,\; u \sim q_u(\cdot \mid c).

Example:
    >>> import torch
    >>> from sbi_course.density import build_estimator
    >>> theta, x = torch.randn(200, 2), torch.randn(200, 3)
    >>> q = build_estimator("gaussian", theta, x)
    >>> d = q(x[:5])  # five distributions, one per context
    >>> d.batch_shape, d.event_shape
    (torch.Size([5]), torch.Size([2]))
    >>> d.sample((10,)).shape
    torch.Size([10, 5, 2])
    >>> d.log_prob(theta[:5]).shape
    torch.Size([5])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from sbi_course._validation import check_generator

__all__ = ["ConditionalDistribution"]


class ConditionalDistribution(Distribution):
    """The distribution ``q(. | context)`` of an estimator at one or several contexts.

    Build it by calling the estimator: ``estimator(context)``.

    Args:
        estimator: a :class:`~sbi_course.density.ConditionalDensityEstimator`.
        context: shape ``(*B, C)``; ``None`` for an unconditional estimator (``B == ()``).

    Attributes:
        estimator: the estimator.
        context: the contexts, shape ``B + (C,)``.
        transform: the z-scoring of the modelled variable (a ``Standardize``).
    """

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = False

    def __init__(self, estimator, context: Tensor | None = None):
        owner = f"{estimator.name}(context)"
        if context is None:
            if estimator.context_dim != 0:
                raise ValueError(
                    f"{owner} needs a context of shape (*, {estimator.context_dim}), got None"
                )
            context = torch.zeros(0, dtype=estimator.dtype)
        context = torch.as_tensor(context, dtype=estimator.dtype)
        if context.ndim < 1 or context.shape[-1] != estimator.context_dim:
            raise ValueError(
                f"{owner}: context must have shape (*, {estimator.context_dim}), "
                f"got {tuple(context.shape)}"
            )
        self.estimator = estimator
        self.context = context
        self.transform = estimator.input_standardize
        super().__init__(context.shape[:-1], torch.Size([estimator.input_dim]), validate_args=False)

    def _flat_context(self) -> Tensor:
        return self.context.reshape(-1, self.estimator.context_dim)

    def sample(self, sample_shape=torch.Size(), generator: torch.Generator | None = None) -> Tensor:
        """Draws of shape ``sample_shape + batch_shape + (D,)``, without gradients."""
        check_generator(generator, f"{self.estimator.name} distribution .sample")
        sample_shape = torch.Size(sample_shape)
        draws = self.estimator.draw(math.prod(sample_shape), self._flat_context(), generator)
        # (M, n, D) -> (n, M, D) -> sample_shape + batch_shape + (D,)
        return draws.transpose(0, 1).reshape(*sample_shape, *self.batch_shape, -1).contiguous()

    def log_prob(self, value: Tensor) -> Tensor:
        """Log-density of ``value`` (shape ``(*, D)``, broadcast against ``batch_shape``)."""
        value = torch.as_tensor(value, dtype=self.estimator.dtype)
        dim = self.estimator.input_dim
        if value.ndim < 1 or value.shape[-1] != dim:
            raise ValueError(
                f"{self.estimator.name} distribution .log_prob: value must have shape (*, {dim}),"
                f" got {tuple(value.shape)}"
            )
        try:
            shape = torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        except RuntimeError:
            raise ValueError(
                f"{self.estimator.name} distribution .log_prob: value of shape "
                f"{tuple(value.shape)} does not broadcast against batch_shape "
                f"{tuple(self.batch_shape)}"
            ) from None
        context_dim = self.estimator.context_dim
        inputs = value.expand(*shape, dim).reshape(-1, dim)
        context = self.context.expand(*shape, context_dim).reshape(-1, context_dim)
        return self.estimator.evaluate(inputs, context).reshape(shape)

    def __repr__(self) -> str:
        return (
            f"ConditionalDistribution({self.estimator.name}, batch_shape="
            f"{tuple(self.batch_shape)}, event_shape={tuple(self.event_shape)})"
        )
