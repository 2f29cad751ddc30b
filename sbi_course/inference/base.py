"""What NPE, NLE and NRE share: the prior, the checks on training data, the first network.

:class:`NeuralInference` holds the prior and checks simulated pairs before training;
:class:`DensityInference` adds the choice of a conditional density estimator by name (NPE
models ``theta`` given ``x``, NLE ``x`` given ``theta``). Students need not read this file: each
method's own module shows its loss and its posterior.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course._validation import check_generator
from sbi_course.density import ConditionalDensityEstimator, build_estimator
from sbi_course.inference.invalid import drop_invalid
from sbi_course.inference.training import TrainingHistory, seeded_init, train
from sbi_course.priors import _support_mask

__all__ = ["NeuralInference", "DensityInference"]


class NeuralInference:
    """Base of the neural inference methods: a prior, a network trained on simulations.

    Args:
        prior: the prior the training parameters were drawn from (event shape (D,)).

    Attributes:
        prior: the prior.
        theta_dim: D.
        estimator: the trained network (``None`` before training).
        history: the training history of the last training call.
    """

    #: The method's name in error messages and progress bars.
    name = "inference"
    #: Training settings used by :meth:`train` unless overridden (each method sets its own).
    training_defaults: dict = {}

    def __init__(self, prior: Distribution):
        if not isinstance(prior, Distribution) or len(prior.event_shape) != 1:
            raise ValueError(
                f"{self.name} needs a prior that is a torch Distribution with event shape (D,)"
            )
        self.prior = prior
        self.theta_dim = int(prior.event_shape[0])
        self.estimator = None
        self.history: TrainingHistory | None = None

    def train(
        self,
        theta: Tensor,
        x: Tensor,
        generator: torch.Generator | None = None,
        **training_kwargs,
    ) -> TrainingHistory:
        """Fit the network to simulated pairs ``(theta, x)`` by minimising the method's loss.

        Rows with NaN or inf are dropped with a warning. The network is built (its z-scoring
        fitted to these data, its initial weights drawn from ``generator``) on the first call;
        later calls continue training it. The same generator state gives the same network.

        Args:
            theta: parameters drawn from the prior, shape (N, D).
            x: simulated data, shape (N, L).
            generator: random generator for the initial weights, the validation split and
                the mini-batch order.
            **training_kwargs: override the method's ``TRAINING_DEFAULTS`` (see
                :func:`~sbi_course.inference.training.train`).

        Returns:
            The training history (also kept in :attr:`history`).

        Raises:
            RuntimeError: when the loss is NaN or infinite in every epoch (training diverged).
        """
        theta, x = self._training_pairs(theta, x, generator)
        settings = self._training_settings(theta, x, training_kwargs)
        estimator, theta, x = self._prepare(theta, x, generator)
        loss = self._loss(estimator)
        self.history = train(estimator, loss, (theta, x), generator=generator, **settings)
        return self.history

    def _training_settings(self, theta: Tensor, x: Tensor, overrides: dict) -> dict:
        """The method's defaults, its name as the progress label, the caller's overrides."""
        return {**self.training_defaults, "description": self.name, **overrides}

    def _prepare(
        self, theta: Tensor, x: Tensor, generator: torch.Generator | None
    ) -> tuple[torch.nn.Module, Tensor, Tensor]:
        """The network (built on the first call) and the pairs in its dtype."""
        raise NotImplementedError

    def _loss(self, estimator: torch.nn.Module):
        """The method's loss: a function of a mini-batch ``(theta, x)`` -> scalar tensor."""
        raise NotImplementedError

    def _training_pairs(
        self, theta: Tensor, x: Tensor, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor]:
        """Check the generator and the shapes, drop rows with NaN or inf (with a warning)."""
        check_generator(generator, f"{self.name}.train")
        theta, x = drop_invalid(theta, x, owner=self.name)
        if theta.shape[1] != self.theta_dim:
            raise ValueError(
                f"theta must have shape (N, {self.theta_dim}) to match the prior, "
                f"got {tuple(theta.shape)}"
            )
        outside = int((~_support_mask(self.prior, theta)).sum())
        if outside:
            everything = "all" if outside == theta.shape[0] else f"{outside} of"
            warnings.warn(
                f"{self.name}.train: {everything} {theta.shape[0]} training parameters lie "
                f"outside the prior's support; were they drawn from another prior (other units, "
                f"another box)? The posterior is restricted to the prior, so such rows teach the "
                f"network regions it may never sample",
                stacklevel=3,
            )
        return theta, x


class DensityInference(NeuralInference):
    """Base of NPE and NLE: a conditional density estimator, given by name or ready-made.

    Args:
        prior: the prior (event shape (D,)).
        density_estimator: a name for :func:`~sbi_course.density.build_estimator`, or a ready
            :class:`~sbi_course.density.ConditionalDensityEstimator`.
        **estimator_kwargs: hyperparameters for the builder.
    """

    #: The variable the estimator models: ``"theta"`` given ``x`` (NPE) or ``"x"`` given
    #: ``theta`` (NLE).
    modelled: str = "theta"

    def __init__(
        self,
        prior: Distribution,
        density_estimator: str | ConditionalDensityEstimator,
        **estimator_kwargs,
    ):
        super().__init__(prior)
        if isinstance(density_estimator, ConditionalDensityEstimator):
            self.estimator = density_estimator
        elif not isinstance(density_estimator, str):
            raise ValueError(
                "density_estimator must be a name such as 'nsf' or 'maf', or a "
                "ConditionalDensityEstimator"
            )
        self.density_estimator = density_estimator
        self.estimator_kwargs = estimator_kwargs

    def _prepare(self, theta: Tensor, x: Tensor, generator: torch.Generator | None):
        """The estimator of the modelled variable given the other, and the pairs in its dtype."""
        roles = ("parameters theta", "data x")
        if self.modelled == "theta":
            estimator = self._estimator_for(theta, x, generator, roles)
        else:
            estimator = self._estimator_for(x, theta, generator, roles[::-1])
        return estimator, theta.to(estimator.dtype), x.to(estimator.dtype)

    def _loss(self, estimator: ConditionalDensityEstimator):
        r"""The negative mean log-density of the modelled variable given the other:
        :math:`-\frac1B \sum_i \log q(\theta_i \mid x_i)` for NPE,
        :math:`-\frac1B \sum_i \log q(x_i \mid \theta_i)` for NLE."""
        swap = self.modelled != "theta"

        def loss(theta_batch: Tensor, x_batch: Tensor) -> Tensor:
            if swap:
                return -estimator.log_prob(x_batch, theta_batch).mean()
            return -estimator.log_prob(theta_batch, x_batch).mean()

        return loss

    def _estimator_for(
        self,
        inputs: Tensor,
        context: Tensor,
        generator: torch.Generator | None,
        roles: tuple[str, str],
    ) -> ConditionalDensityEstimator:
        """The estimator, built on the first call (z-scoring fitted to these data, initial
        weights drawn from ``generator``) and checked against the data's dimensions.

        ``roles`` names the modelled variable and the context in error messages, for example
        ``("parameters theta", "data x")`` for NPE.

        Raises:
            ValueError: when a ready-made (or earlier built) estimator's dimensions do not
                match ``inputs`` and ``context``.
        """
        if self.estimator is None:
            dtype = torch.get_default_dtype()
            with seeded_init(generator):
                self.estimator = build_estimator(
                    self.density_estimator,
                    inputs.to(dtype),
                    context.to(dtype),
                    **self.estimator_kwargs,
                )
        estimator = self.estimator
        if estimator.input_dim != inputs.shape[1] or estimator.context_dim != context.shape[1]:
            raise ValueError(
                f"the {self.name} estimator models {roles[0]} of dimension "
                f"{estimator.input_dim} given {roles[1]} of dimension {estimator.context_dim}; "
                f"got {roles[0]} of shape {tuple(inputs.shape)} and {roles[1]} of shape "
                f"{tuple(context.shape)}"
            )
        return estimator
