r"""The interface every conditional density estimator shares.

A conditional density estimator :math:`q_\phi(v \mid c)` models the density of an *input*
:math:`v` (shape (D,)) given a *context* :math:`c` (shape (C,)). In neural posterior
estimation the input is the parameter :math:`\theta` and the context the data :math:`x`;
in neural likelihood estimation it is the other way round.

Each estimator z-scores both variables with a :class:`~sbi_course.density.standardize.Standardize`
fitted to the training data, optionally passes the context through an embedding network,
and models the density of the z-scored input; :meth:`log_prob` adds the log-determinant of
the z-scoring, so that it is the density of the original variable.

Called on a context, an estimator returns a torch distribution (the interface to use):
``estimator(context)`` is a :class:`~sbi_course.density.distribution.ConditionalDistribution`
with ``batch_shape == context.shape[:-1]``, whose ``sample(sample_shape, generator=None)``
gives ``sample_shape + batch_shape + (D,)`` and whose ``log_prob`` broadcasts over ``(*, D)``.
The older methods ``log_prob(inputs, context)`` (inputs (N, D)) and
``sample(num_samples, context)`` (context first: (M, num_samples, D)) are kept, with the same
numbers, for the lectures written against them.

Subclasses implement two methods on the z-scored scale:

* ``_log_prob(u, c)``: log-density of ``u`` (N, D) given embedded context ``c`` (N, E),
  shape (N,);
* ``_sample(num_samples, c, generator)``: draws of shape (M, num_samples, D) for
  contexts ``c`` (M, E).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sbi_course._validation import check_generator
from sbi_course.density.distribution import ConditionalDistribution
from sbi_course.density.standardize import Standardize

__all__ = ["ConditionalDensityEstimator"]


class ConditionalDensityEstimator(nn.Module):
    """Base class: z-scoring, shape checks, and the public ``log_prob``/``sample``.

    Args:
        input_dim: dimension D of the modelled variable.
        context_dim: dimension C of the conditioning variable (0 for an unconditional density).
        input_standardize: z-scoring of the inputs (default: none).
        context_standardize: z-scoring of the context (default: none).
        embedding_net: optional network applied to the z-scored context; its output size is
            ``embedding_dim``.
        embedding_dim: output size of ``embedding_net`` (default: ``context_dim``).
    """

    def __init__(
        self,
        input_dim: int,
        context_dim: int,
        input_standardize: Standardize | None = None,
        context_standardize: Standardize | None = None,
        embedding_net: nn.Module | None = None,
        embedding_dim: int | None = None,
    ):
        super().__init__()
        if input_dim < 1 or context_dim < 0:
            raise ValueError(
                f"need input_dim >= 1 and context_dim >= 0, got {input_dim} and {context_dim}"
            )
        self.input_dim = int(input_dim)
        self.context_dim = int(context_dim)
        self.input_standardize = input_standardize or Standardize.identity(input_dim)
        self.context_standardize = context_standardize or Standardize.identity(context_dim)
        if self.input_standardize.dim != input_dim or self.context_standardize.dim != context_dim:
            raise ValueError("standardisation dimensions do not match input_dim / context_dim")
        self.embedding_net = embedding_net if embedding_net is not None else nn.Identity()
        self.embedding_dim = context_dim if embedding_dim is None else int(embedding_dim)

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def dtype(self) -> torch.dtype:
        return self.input_standardize.mean.dtype

    # -- shape handling -------------------------------------------------------------------
    def _check_inputs(self, inputs: Tensor) -> Tensor:
        inputs = torch.as_tensor(inputs, dtype=self.dtype)
        if inputs.ndim != 2 or inputs.shape[1] != self.input_dim:
            raise ValueError(
                f"inputs for {self.name} must have shape (N, {self.input_dim}), "
                f"got {tuple(inputs.shape)}"
            )
        return inputs

    def _check_context(self, context: Tensor | None, num_rows: int | None) -> Tensor:
        """Return the context as (M, C); a single context (C,) or (1, C) is broadcast."""
        if context is None:
            if self.context_dim != 0:
                raise ValueError(f"{self.name} needs a context of shape (N, {self.context_dim})")
            return torch.zeros(num_rows or 1, 0, dtype=self.dtype)
        context = torch.as_tensor(context, dtype=self.dtype)
        if context.ndim == 1:
            context = context.unsqueeze(0)
        if context.ndim != 2 or context.shape[1] != self.context_dim:
            raise ValueError(
                f"context for {self.name} must have shape (N, {self.context_dim}) or "
                f"({self.context_dim},), got {tuple(context.shape)}"
            )
        if num_rows is not None and context.shape[0] != num_rows:
            if context.shape[0] != 1:
                raise ValueError(
                    f"{self.name}: inputs have {num_rows} rows but context has {context.shape[0]}"
                )
            context = context.expand(num_rows, -1)
        return context

    def embed(self, context: Tensor) -> Tensor:
        """Z-score and embed a context of shape (N, C) -> (N, E)."""
        return self.embedding_net(self.context_standardize(context))

    # -- public interface -----------------------------------------------------------------
    def __call__(self, context: Tensor | None = None) -> ConditionalDistribution:
        """The distribution ``q(. | context)``: batch shape ``context.shape[:-1]``, event (D,).

        Args:
            context: shape ``(*B, C)``; ``None`` for an unconditional estimator.

        (A flow's data-to-noise map stays available as ``flow.forward(inputs, context)``.)
        """
        return ConditionalDistribution(self, context)

    def evaluate(self, inputs: Tensor, context: Tensor) -> Tensor:
        """Log-density of row-aligned ``inputs`` (N, D) given ``context`` (N, C), shape (N,).

        The z-scoring is applied here, as a change of variables; no shape checks.
        """
        u = self.input_standardize(inputs)
        return self._log_prob(u, self.embed(context)) + self.input_standardize.log_abs_det()

    def draw(self, num_samples: int, context: Tensor, generator: torch.Generator | None) -> Tensor:
        """``num_samples`` draws per context (M, C): shape (M, num_samples, D), no gradients."""
        with torch.no_grad():
            if num_samples == 0 or context.shape[0] == 0:
                u = torch.zeros(context.shape[0], num_samples, self.input_dim, dtype=self.dtype)
            else:
                u = self._sample(int(num_samples), self.embed(context), generator)
            return self.input_standardize.inverse(u)

    def log_prob(self, inputs: Tensor, context: Tensor | None = None) -> Tensor:
        """Log-density of ``inputs`` given ``context`` (older form of ``self(context).log_prob``).

        Args:
            inputs: values of the modelled variable, shape (N, D).
            context: conditioning values, shape (N, C), or one context (C,) / (1, C) shared by
                all rows. ``None`` for an unconditional estimator (``context_dim == 0``).

        Returns:
            Log-densities of shape (N,), in the units of the original (not z-scored) inputs.
        """
        inputs = self._check_inputs(inputs)
        return self.evaluate(inputs, self._check_context(context, inputs.shape[0]))

    def sample(
        self,
        num_samples: int,
        context: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw samples given one or several contexts (older form of ``self(context).sample``).

        Note the context-first layout (M, num_samples, D) of this form; the distribution
        ``self(context).sample((num_samples,))`` gives (num_samples, M, D) like torch.

        Args:
            num_samples: number of draws per context.
            context: a single context of shape (C,) or (1, C) -> result (num_samples, D);
                several contexts of shape (M, C) -> result (M, num_samples, D).
            generator: random generator for the draws.

        Returns:
            Samples on the original scale.
        """
        check_generator(generator, f"{self.name}.sample")
        if int(num_samples) != num_samples or num_samples < 0:
            raise ValueError(f"num_samples must be a non-negative integer, got {num_samples}")
        single = context is None or torch.as_tensor(context).ndim == 1
        context = self._check_context(context, None)
        single = single or context.shape[0] == 1
        samples = self.draw(int(num_samples), context, generator)
        return samples[0] if single else samples

    # -- to implement ---------------------------------------------------------------------
    def _log_prob(self, u: Tensor, c: Tensor) -> Tensor:
        raise NotImplementedError

    def _sample(self, num_samples: int, c: Tensor, generator: torch.Generator | None) -> Tensor:
        raise NotImplementedError
