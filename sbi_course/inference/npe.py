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
from sbi_course.density import ConditionalDensityEstimator, ConditionalDistribution
from sbi_course.inference.base import DensityInference
from sbi_course.inference.posterior import Posterior, num_samples_from_shape
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

    training_defaults = TRAINING_DEFAULTS

    def _training_settings(self, theta: Tensor, x: Tensor, overrides: dict) -> dict:
        settings = super()._training_settings(theta, x, overrides)
        if settings["batch_size"] == "auto":
            settings["batch_size"] = auto_batch_size(len(theta))
        return settings

    def posterior(self, x_o: Tensor, **kwargs) -> NPEPosterior:
        """The posterior for one observation, or for several at once.

        Args:
            x_o: the observation, shape (L,) or (1, L); or M observations (M, L), which give a
                posterior of ``batch_shape`` (M,) (amortisation: one network, M posteriors).
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

    It is the estimator's distribution at ``x_o`` (``estimator(x_o)``, a torch distribution)
    with the draws outside the prior's support rejected, so it is itself a
    :class:`torch.distributions.Distribution`: usable as a prior or proposal of a next round.
    Several observations at once: ``x_o`` of shape (M, L) gives ``batch_shape == (M,)``,
    ``sample((n,))`` of shape (n, M, D) and ``log_prob`` broadcasting over (M,). (A single row
    (1, L) is read as one observation, ``batch_shape == ()``, as before.)

    The fraction accepted, :math:`a = \int_{\mathrm{supp}\,p} q(\theta \mid x_o)\,d\theta`,
    is kept in :attr:`acceptance_rate`; a small value means the estimator puts much mass where
    the prior has none ("leakage"), a sign of a poor fit. Rejection stops early, with the
    likely causes, when the first proposals show that ``max_proposals`` cannot be enough.

    :meth:`log_prob` returns :math:`\log q(\theta \mid x_o) - \log \hat a` inside the support
    and :math:`-\infty` outside, which is normalised when :math:`\hat a` (estimated once from
    ``num_normalization_samples`` draws, see :meth:`log_normalizer`) is accurate;
    :meth:`unnormalized_log_prob` (or the older ``log_prob(theta, normalize=False)``) skips it.

    Args:
        estimator: a trained estimator of ``theta`` given ``x``.
        prior: the prior.
        x_o: the observation, shape (L,) or (1, L); or M observations, shape (M, L).
        max_proposals: give up after proposing this many draws (per observation) in one
            :meth:`sample` call.
        warn_below: warn when the acceptance rate is below this value.
        num_normalization_samples: draws used to estimate the acceptance rate for
            :meth:`log_prob`.
        normalization_generator: random generator of those draws (default: a generator seeded
            with 0, so that ``log_prob`` is a deterministic function of ``theta``).

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
        normalization_generator: torch.Generator | None = None,
    ):
        x_o = _check_observations(x_o, estimator.context_dim)
        super().__init__(prior, x_o, batch_shape=x_o.shape[:-1])
        check_generator(normalization_generator, "NPEPosterior")
        self.estimator = estimator
        self.max_proposals = int(max_proposals)
        self.warn_below = warn_below
        self.num_normalization_samples = int(num_normalization_samples)
        self.normalization_generator = normalization_generator
        self.num_proposed, self.num_accepted = 0, 0
        self._log_normalizer: Tensor | None = None

    @property
    def acceptance_rate(self) -> float:
        return self.num_accepted / self.num_proposed if self.num_proposed else math.nan

    @property
    def distribution(self) -> ConditionalDistribution:
        """The estimator's (unrestricted) distribution at ``x_o``."""
        return self.estimator(self.x_o.to(self.estimator.dtype))

    def _contexts(self) -> Tensor:
        return self.x_o.reshape(-1, self.estimator.context_dim).to(self.estimator.dtype)

    def sample(self, sample_shape=torch.Size(), generator: torch.Generator | None = None) -> Tensor:
        """Draw samples of shape ``sample_shape + batch_shape + (D,)`` inside the prior's support.

        Raises:
            ValueError: when more samples are requested than ``max_proposals``.
            RuntimeError: when the estimator proposes NaN, or when the acceptance rate seen so
                far shows that ``max_proposals`` proposals cannot give enough samples.
        """
        check_generator(generator, "NPEPosterior.sample")
        num_samples, shape = num_samples_from_shape(sample_shape, "NPEPosterior.sample")
        if num_samples > self.max_proposals:
            raise ValueError(
                f"NPEPosterior.sample: {num_samples} samples requested but at most "
                f"max_proposals={self.max_proposals} draws are proposed; ask for fewer samples "
                "or build the posterior with a larger max_proposals"
            )
        contexts = self._contexts()
        rows = _RejectionRows(contexts.shape[0], num_samples, self.theta_dim, self.estimator.dtype)
        proposed = 0
        while rows.remaining() > 0:
            if proposed >= self.max_proposals:
                raise RuntimeError(self._stall_message(rows, proposed, "after"))
            # Propose enough for the remaining samples at the acceptance rate seen so far.
            # (Counting at least one acceptance makes the batches grow while none is accepted.)
            rate = max(self.num_accepted, 1) / self.num_proposed if self.num_proposed else 1.0
            batch = int(min(max(rows.remaining() / rate * 1.1, 100), 100_000))
            batch = min(batch, self.max_proposals - proposed)
            theta = self.estimator.draw(batch, contexts, generator)  # (M, batch, D)
            if bool(torch.isnan(theta).all()):
                raise RuntimeError(
                    "NPE posterior: every proposal of the density estimator is NaN; its weights "
                    "are probably NaN (training diverged: lower the learning rate, check the "
                    "training data for NaN or huge values) or x_o is NaN"
                )
            keep = in_support(self.prior, theta)
            self.num_proposed += batch * contexts.shape[0]
            self.num_accepted += int(keep.sum())
            rows.add(theta, keep)
            proposed += batch
            rate = max(self.num_accepted, 1) / self.num_proposed
            if rows.remaining() > 0 and proposed + rows.remaining() / rate > self.max_proposals:
                raise RuntimeError(self._stall_message(rows, proposed, "expected from"))
        if self.acceptance_rate < self.warn_below:
            warnings.warn(
                f"NPE posterior: only {self.acceptance_rate:.2%} of the estimator's samples lie "
                "inside the prior's support; the posterior estimate is unreliable",
                stacklevel=2,
            )
        samples = rows.result()  # (M, n, D)
        if not self.batch_shape:
            return samples[0].reshape(*shape, self.theta_dim)
        return samples.transpose(0, 1).reshape(*shape, *self.batch_shape, self.theta_dim)

    def _stall_message(self, rows: _RejectionRows, proposed: int, when: str) -> str:
        return (
            f"NPE posterior: only {rows.fewest()} of {rows.num_samples} samples inside the "
            f"prior {when} {proposed} proposals (acceptance rate {self.acceptance_rate:.2e}); "
            f"max_proposals={self.max_proposals} cannot give them. The estimator puts almost "
            "all its mass outside the prior. Likely causes: x_o in other units or scaling than "
            "the training data; training parameters drawn from another prior; a network with "
            "NaN weights or too little training (train longer or on more simulations)"
        )

    def log_normalizer(self, generator: torch.Generator | None = None) -> Tensor | float:
        """Log of the estimated acceptance rate, per observation (computed once).

        Args:
            generator: random generator of the ``num_normalization_samples`` draws (default:
                ``normalization_generator`` of the constructor, else one seeded with 0).

        Returns:
            A float for one observation, a tensor of shape ``batch_shape`` for several.
        """
        if self._log_normalizer is None:
            check_generator(generator, "NPEPosterior.log_normalizer")
            if generator is None:
                generator = self.normalization_generator or torch.Generator().manual_seed(0)
            draws = self.estimator.draw(self.num_normalization_samples, self._contexts(), generator)
            inside = in_support(self.prior, draws).sum(dim=1)  # (M,)
            # At least one accepted draw, so that the normaliser stays finite.
            rate = inside.clamp(min=1).double() / self.num_normalization_samples
            if not self.batch_shape:
                # One observation: the same arithmetic in Python floats as before.
                self._log_normalizer = math.log(
                    max(int(inside[0]), 1) / self.num_normalization_samples
                )
            else:
                self._log_normalizer = rate.log().reshape(self.batch_shape)
        return self._log_normalizer

    def unnormalized_log_prob(self, theta: Tensor) -> Tensor:
        """``log q(theta | x_o)`` inside the prior's support, ``-inf`` outside (no normaliser).

        Args:
            theta: parameters, shape (*, D), broadcast against ``batch_shape``.
        """
        return self.log_prob(theta, normalize=False)

    def log_prob(self, theta: Tensor, normalize: bool = True) -> Tensor:
        """Log-density of ``theta`` (*, D), broadcast against ``batch_shape``; ``-inf`` outside.

        Args:
            theta: parameters, shape (N, D), (D,) or (*, D).
            normalize: subtract the log of the estimated acceptance rate, so that the density
                integrates to (about) one over the prior's support.
        """
        theta = torch.as_tensor(theta)
        if theta.ndim < 1 or theta.shape[-1] != self.theta_dim:
            raise ValueError(
                f"theta for NPEPosterior.log_prob must have shape (*, {self.theta_dim}), "
                f"got {tuple(theta.shape)}"
            )
        if not self.batch_shape and theta.ndim <= 2:
            theta, _ = as_batch(theta, self.theta_dim, name="theta", owner="NPEPosterior.log_prob")
        theta = theta.to(self.estimator.dtype)
        with torch.no_grad():
            log_q = self.distribution.log_prob(theta)
        if normalize:
            log_q = log_q - self.log_normalizer()
        inside = in_support(self.prior, theta)
        return torch.where(inside, log_q, torch.full_like(log_q, -math.inf))


def _check_observations(x_o: Tensor, x_dim: int) -> Tensor:
    """One observation as (1, L) (from (L,) or (1, L)), or M observations as (M, L)."""
    x_o, _ = as_batch(x_o, x_dim, name="x_o", owner="NPE posterior")
    return x_o[0] if x_o.shape[0] == 1 else x_o


class _RejectionRows:
    """Accepted draws of M rejection samplers run side by side, ``num_samples`` each."""

    def __init__(self, num_rows: int, num_samples: int, dim: int, dtype: torch.dtype):
        self.num_samples, self.dim, self.dtype = num_samples, dim, dtype
        self.accepted: list[list[Tensor]] = [[] for _ in range(num_rows)]
        self.counts = [0] * num_rows

    def remaining(self) -> int:
        return max((self.num_samples - c for c in self.counts), default=0)

    def fewest(self) -> int:
        return min(self.counts, default=0)

    def add(self, theta: Tensor, keep: Tensor) -> None:
        for m in range(theta.shape[0]):
            if self.counts[m] < self.num_samples:
                new = theta[m][keep[m]]
                self.accepted[m].append(new)
                self.counts[m] += new.shape[0]

    def result(self) -> Tensor:
        rows = [
            torch.cat(a)[: self.num_samples] if a else torch.zeros(0, self.dim, dtype=self.dtype)
            for a in self.accepted
        ]
        return torch.stack(rows) if rows else torch.zeros(0, self.num_samples, self.dim)
