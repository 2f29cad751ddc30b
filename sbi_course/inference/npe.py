r"""Neural posterior estimation (NPE): learn :math:`p(\theta \mid x)` directly.

Simulate pairs :math:`\theta_i \sim p(\theta)`, :math:`x_i \sim p(x \mid \theta_i)` and fit a
conditional density estimator :math:`q_\phi(\theta \mid x)` by maximum likelihood,

.. math::
    \mathcal L(\phi) = -\frac1N \sum_{i=1}^N \log q_\phi(\theta_i \mid x_i).

In the limit of many simulations and a flexible enough :math:`q_\phi`, the minimiser is the
true posterior: :math:`\mathbb E_{p(\theta, x)}[-\log q(\theta \mid x)]` equals
:math:`\mathbb E_{p(x)}\,\mathrm{KL}(p(\theta\mid x)\,\|\,q(\theta\mid x))` plus a constant. The
estimator is *amortised*: once trained, :math:`q_\phi(\theta \mid x_o)` is available for any
observation without new simulations.

A density estimator on :math:`\mathbb R^D` can put some mass outside the prior's support
("leakage"). :class:`NPEPosterior` therefore samples by rejection, keeping draws inside the
support, and can renormalise its density by the estimated acceptance rate.

Example:
    >>> import torch
    >>> from sbi_course import tasks
    >>> task = tasks.get("two_moons")
    >>> g = torch.Generator().manual_seed(0)
    >>> theta, x = task.sample_joint(2000, generator=g)
    >>> npe = NPE(task.prior, density_estimator="mdn")
    >>> history = npe.train(theta, x, generator=g, max_num_epochs=5, show_progress=False)
    >>> npe.posterior(x[0]).sample((100,), generator=g).shape
    torch.Size([100, 2])

References:
    Papamakarios & Murray (2016), Fast epsilon-free inference of simulation models with
    Bayesian conditional density estimation, NeurIPS.
    Greenberg, Nonnenmacher & Macke (2019), Automatic posterior transformation for
    likelihood-free inference, ICML.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course._validation import as_batch, check_generator
from sbi_course.density import ConditionalDensityEstimator
from sbi_course.inference.base import DensityInference
from sbi_course.inference.posterior import Posterior, check_observation, num_samples_from_shape
from sbi_course.inference.training import TrainingHistory, train
from sbi_course.priors import in_support

__all__ = ["NPE", "NPEPosterior", "TRAINING_DEFAULTS"]

#: Training settings used by :meth:`NPE.train` unless overridden, tuned with
#: benchmarks/npe_two_moons.py. Batches of 512 cost little more per step than batches of 64
#: on a CPU (the step is dominated by per-operation overhead), so they pass through the data
#: faster; halving the learning rate whenever the validation loss stalls for 3 epochs then
#: settles the weights, and training stops after 10 epochs without improvement. With
#: ``"auto"`` the batch size is about an eighth of the simulations, between 64 and 512: small
#: budgets need more (smaller) steps per epoch to learn before early stopping ends training
#: (two moons with 10^3 simulations: C2ST 0.59 with batches of 128, 0.64 with 512).
TRAINING_DEFAULTS: dict = {
    "batch_size": "auto",
    "learning_rate": 2e-3,
    "lr_decay_factor": 0.5,
    "lr_decay_patience": 3,
    "max_num_epochs": 500,
    "stop_after_epochs": 10,
    "validation_fraction": 0.1,
    "clip_max_norm": 5.0,
}


def auto_batch_size(num_simulations: int) -> int:
    """A power of two near ``num_simulations / 8``, at least 64 and at most 512."""
    return int(min(512, max(64, 2 ** round(math.log2(max(num_simulations, 1) / 8)))))


class NPE(DensityInference):
    """Neural posterior estimation with a conditional density estimator.

    Args:
        prior: the prior the training parameters were drawn from (event shape (D,)).
        density_estimator: ``"nsf"``, ``"maf"``, ``"realnvp"``, ``"mdn"``, ``"gaussian"`` or
            ``"gaussian_diag"`` (built and z-scored on the training data by
            :func:`~sbi_course.density.build_estimator`), or a ready
            :class:`~sbi_course.density.ConditionalDensityEstimator` of ``theta`` given ``x``.
        **estimator_kwargs: hyperparameters for the builder (``hidden_features``,
            ``num_transforms``, ``num_bins``, ``num_components``, ``embedding_net``, ...).

    Attributes:
        estimator: the trained density estimator (``None`` before :meth:`train`).
        history: the :class:`~sbi_course.inference.training.TrainingHistory` of the last training.
    """

    name = "NPE"

    def __init__(
        self,
        prior: Distribution,
        density_estimator: str | ConditionalDensityEstimator = "nsf",
        **estimator_kwargs,
    ):
        super().__init__(prior, density_estimator, **estimator_kwargs)

    def train(
        self,
        theta: Tensor,
        x: Tensor,
        generator: torch.Generator | None = None,
        **training_kwargs,
    ) -> TrainingHistory:
        """Fit the density estimator to simulated pairs ``(theta, x)``.

        Rows with NaN or inf are dropped with a warning. A named estimator is built (and its
        z-scoring fitted) on the first call, with initial weights drawn from ``generator``;
        later calls continue training the same network. The same generator state gives the
        same trained network.

        Args:
            theta: parameters drawn from the prior, shape (N, D).
            x: simulated data, shape (N, L).
            generator: random generator for the validation split and mini-batch order.
            **training_kwargs: override :data:`TRAINING_DEFAULTS` (see
                :func:`~sbi_course.inference.training.train`).

        Returns:
            The training history.
        """
        theta, x = self._training_pairs(theta, x, generator)
        estimator = self._estimator_for(theta, x, generator, ("parameters theta", "data x"))
        theta, x = theta.to(estimator.dtype), x.to(estimator.dtype)

        def loss(theta_batch: Tensor, x_batch: Tensor) -> Tensor:
            return -estimator.log_prob(theta_batch, x_batch).mean()

        settings = {**TRAINING_DEFAULTS, "description": "NPE", **training_kwargs}
        if settings["batch_size"] == "auto":
            settings["batch_size"] = auto_batch_size(len(theta))
        self.history = train(estimator, loss, (theta, x), generator=generator, **settings)
        return self.history

    def posterior(self, x_o: Tensor, **kwargs) -> NPEPosterior:
        """The posterior for one observation.

        Args:
            x_o: the observation, shape (L,) or (1, L).
            **kwargs: passed to :class:`NPEPosterior`.

        Raises:
            RuntimeError: before :meth:`train`.
            ValueError: for an ``x_o`` of the wrong shape.
        """
        if self.estimator is None:
            raise RuntimeError("NPE.posterior needs a trained estimator: call NPE.train first")
        return NPEPosterior(self.estimator, self.prior, x_o, **kwargs)


class NPEPosterior(Posterior):
    r"""The estimated posterior :math:`q(\theta \mid x_o)` restricted to the prior's support.

    Sampling draws from the density estimator and rejects draws outside the prior's support.
    The fraction accepted, :math:`a = \int_{\mathrm{supp}\,p} q(\theta \mid x_o)\,d\theta`, is
    kept in :attr:`acceptance_rate`; a small value means the estimator puts much mass where the
    prior has none ("leakage"), a sign of a poor fit.

    :meth:`log_prob` returns :math:`\log q(\theta \mid x_o) - \log \hat a` inside the support
    and :math:`-\infty` outside, which is normalised when :math:`\hat a` (estimated once from
    ``num_normalization_samples`` draws) is accurate; pass ``normalize=False`` for the
    unnormalised flow density.

    Args:
        estimator: a trained estimator of ``theta`` given ``x``.
        prior: the prior.
        x_o: the observation, shape (L,) or (1, L).
        max_proposals: give up after proposing this many draws in one :meth:`sample` call.
        warn_below: warn when the acceptance rate is below this value.
        num_normalization_samples: draws used to estimate the acceptance rate for
            :meth:`log_prob`.

    Attributes:
        acceptance_rate: accepted / proposed over all draws so far (``nan`` before any).
    """

    def __init__(
        self,
        estimator: ConditionalDensityEstimator,
        prior: Distribution,
        x_o: Tensor,
        max_proposals: int = 10_000_000,
        warn_below: float = 0.01,
        num_normalization_samples: int = 10_000,
    ):
        x_o = check_observation(x_o, estimator.context_dim, owner="NPE posterior")
        super().__init__(prior, x_o)
        self.estimator = estimator
        self.max_proposals = int(max_proposals)
        self.warn_below = warn_below
        self.num_normalization_samples = int(num_normalization_samples)
        self.num_proposed, self.num_accepted = 0, 0
        self._log_normalizer: float | None = None

    @property
    def acceptance_rate(self) -> float:
        return self.num_accepted / self.num_proposed if self.num_proposed else math.nan

    def _propose(self, num: int, generator: torch.Generator | None) -> Tensor:
        theta = self.estimator.sample(num, self.x_o, generator=generator)
        keep = in_support(self.prior, theta)
        self.num_proposed += num
        self.num_accepted += int(keep.sum())
        return theta[keep]

    def sample(self, sample_shape=(1,), generator: torch.Generator | None = None) -> Tensor:
        """Draw samples of shape ``sample_shape + (D,)`` inside the prior's support.

        Raises:
            RuntimeError: when fewer than the requested samples are accepted within
                ``max_proposals`` proposals (the estimator leaks almost all its mass).
        """
        check_generator(generator, "NPEPosterior.sample")
        num_samples, shape = num_samples_from_shape(sample_shape, "NPEPosterior.sample")
        accepted, count, proposed = [], 0, 0
        while count < num_samples:
            if proposed >= self.max_proposals:
                raise RuntimeError(
                    f"NPE posterior: only {count} of {num_samples} samples inside the prior "
                    f"after {proposed} proposals (acceptance rate {self.acceptance_rate:.2e}); "
                    "the estimator puts its mass outside the prior: train longer or on more "
                    "simulations"
                )
            # Propose enough for the remaining samples at the acceptance rate seen so far.
            # (Counting at least one acceptance makes the batches grow while none is accepted.)
            rate = max(self.num_accepted, 1) / self.num_proposed if self.num_proposed else 1.0
            batch = int(min(max((num_samples - count) / rate * 1.1, 100), 100_000))
            batch = min(batch, self.max_proposals - proposed)
            new = self._propose(batch, generator)
            proposed += batch
            accepted.append(new)
            count += new.shape[0]
        if self.acceptance_rate < self.warn_below:
            warnings.warn(
                f"NPE posterior: only {self.acceptance_rate:.2%} of the estimator's samples lie "
                "inside the prior's support; the posterior estimate is unreliable",
                stacklevel=2,
            )
        samples = torch.cat(accepted)[:num_samples] if accepted else torch.zeros(0, self.theta_dim)
        return samples.reshape(*shape, self.theta_dim)

    def log_normalizer(self) -> float:
        """Log of the estimated acceptance rate (computed once, with a fixed seed)."""
        if self._log_normalizer is None:
            draws = self.estimator.sample(
                self.num_normalization_samples, self.x_o, generator=torch.Generator().manual_seed(0)
            )
            inside = int(in_support(self.prior, draws).sum())
            # At least one accepted draw, so that the normaliser stays finite.
            self._log_normalizer = math.log(max(inside, 1) / self.num_normalization_samples)
        return self._log_normalizer

    def log_prob(self, theta: Tensor, normalize: bool = True) -> Tensor:
        """Log-density of ``theta`` (N, D) or (D,), shape (N,); ``-inf`` outside the prior.

        Args:
            theta: parameters.
            normalize: subtract the log of the estimated acceptance rate, so that the density
                integrates to (about) one over the prior's support.
        """
        theta, _ = as_batch(theta, self.theta_dim, name="theta", owner="NPEPosterior.log_prob")
        theta = theta.to(self.estimator.dtype)
        with torch.no_grad():
            log_q = self.estimator.log_prob(theta, self.x_o.to(self.estimator.dtype))
        if normalize:
            log_q = log_q - self.log_normalizer()
        inside = in_support(self.prior, theta)
        return torch.where(inside, log_q, torch.full_like(log_q, -math.inf))
