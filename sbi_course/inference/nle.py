r"""Neural likelihood estimation (NLE): learn :math:`p(x \mid \theta)`, then run MCMC.

Simulate pairs :math:`\theta_i \sim p(\theta)`, :math:`x_i \sim p(x \mid \theta_i)` and fit a
conditional density estimator of the *data* given the parameters by maximum likelihood,

.. math::
    \mathcal L(\phi) = -\frac1N \sum_{i=1}^N \log q_\phi(x_i \mid \theta_i).

The minimiser approaches the true likelihood wherever the prior puts parameters. Bayes' rule
then gives the posterior up to its normalising constant,

.. math::
    p(\theta \mid x_o) \propto q_\phi(x_o \mid \theta)\, p(\theta),

which is sampled by MCMC (:mod:`~sbi_course.inference.mcmc`). Two consequences:

* sampling costs many network evaluations (a few seconds to minutes), and the posterior's
  ``log_prob`` is only known up to a constant;
* independent repeated observations :math:`x_o^{(1..K)}` are easy: their log-likelihoods add,
  so one network trained on single simulations serves any K.

Example:
    >>> import torch
    >>> from sbi_course.priors import GaussianPrior
    >>> prior = GaussianPrior(torch.zeros(2), torch.eye(2))
    >>> g = torch.Generator().manual_seed(0)
    >>> theta = prior.sample((500,), generator=g)
    >>> x = theta + 0.5 * torch.randn(500, 2, generator=g)
    >>> nle = NLE(prior, density_estimator="gaussian")
    >>> history = nle.train(theta, x, generator=g, max_num_epochs=5, show_progress=False)
    >>> posterior = nle.posterior(torch.zeros(2), num_chains=10, warmup_steps=10)
    >>> posterior.sample((50,), generator=g).shape
    torch.Size([50, 2])

References:
    Papamakarios, Sterratt & Murray (2019), Sequential neural likelihood: fast
    likelihood-free inference with autoregressive flows, AISTATS.
    Lueckmann, Bassetto, Karaletsos & Macke (2019), Likelihood-free inference with emulator
    networks, AABI.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course._validation import as_batch
from sbi_course.density import ConditionalDensityEstimator
from sbi_course.inference.base import DensityInference
from sbi_course.inference.unnormalized import UnnormalizedPosterior

__all__ = ["NLE", "LikelihoodPosterior", "TRAINING_DEFAULTS"]

#: Training settings used by :meth:`NLE.train` unless overridden.
TRAINING_DEFAULTS: dict = {
    "batch_size": 256,
    "learning_rate": 1e-3,
    "max_num_epochs": 500,
    "stop_after_epochs": 20,
    "validation_fraction": 0.1,
    "clip_max_norm": 5.0,
}


class NLE(DensityInference):
    """Neural likelihood estimation with a conditional density estimator of ``x`` given ``theta``.

    Args:
        prior: the prior the training parameters were drawn from (event shape (D,)).
        density_estimator: ``"maf"`` (default), ``"nsf"``, ``"realnvp"``, ``"mdn"``,
            ``"gaussian"`` or ``"gaussian_diag"`` (built and z-scored on the training data by
            :func:`~sbi_course.density.build_estimator`), or a ready
            :class:`~sbi_course.density.ConditionalDensityEstimator` of ``x`` given ``theta``.
        **estimator_kwargs: hyperparameters for the builder (``hidden_features``,
            ``num_transforms``, ...).

    Attributes:
        estimator: the trained likelihood estimator (``None`` before :meth:`train`).
        history: the training history of the last :meth:`train` call.
    """

    name = "NLE"
    # The roles of NPE are swapped: x is the modelled variable, theta the context.
    modelled = "x"

    def __init__(
        self,
        prior: Distribution,
        density_estimator: str | ConditionalDensityEstimator = "maf",
        **estimator_kwargs,
    ):
        super().__init__(prior, density_estimator, **estimator_kwargs)

    training_defaults = TRAINING_DEFAULTS

    def posterior(self, x_o: Tensor, **mcmc_kwargs) -> LikelihoodPosterior:
        """The MCMC posterior for one observation, or for K independent ones.

        Args:
            x_o: the observation, shape (L,), or K independent observations, shape (K, L),
                whose log-likelihoods are summed.
            **mcmc_kwargs: sampler settings of
                :class:`~sbi_course.inference.unnormalized.UnnormalizedPosterior`
                (``num_chains``, ``method``, ``warmup_steps``, ``thin``, ``init_strategy``,
                ``show_progress``).

        Raises:
            RuntimeError: before :meth:`train`.
            ValueError: for an ``x_o`` of the wrong shape.
        """
        if self.estimator is None:
            raise RuntimeError("NLE.posterior needs a trained estimator: call NLE.train first")
        return LikelihoodPosterior(self.estimator, self.prior, x_o, **mcmc_kwargs)


class LikelihoodPosterior(UnnormalizedPosterior):
    r"""Posterior of NLE: :math:`\sum_k \log q(x_o^{(k)} \mid \theta) + \log p(\theta)` + const.

    An :class:`~sbi_course.inference.unnormalized.UnnormalizedPosterior` whose potential is
    the estimated log-likelihood of the observation(s); samples come from MCMC.
    ``log_prob`` is kept as the older name of ``unnormalized_log_prob`` (it is *not*
    normalised).

    Args:
        estimator: a trained estimator of ``x`` given ``theta``.
        prior: the prior.
        x_o: one observation (L,) or (1, L), or K independent observations (K, L).
        **mcmc_kwargs: see :class:`~sbi_course.inference.unnormalized.UnnormalizedPosterior`.
    """

    def __init__(
        self,
        estimator: ConditionalDensityEstimator,
        prior: Distribution,
        x_o: Tensor,
        **mcmc_kwargs,
    ):
        x_o, _ = as_batch(x_o, estimator.input_dim, name="x_o", owner="NLE posterior")
        self.estimator = estimator
        self.x_batch = x_o.to(estimator.dtype)
        super().__init__(self.log_likelihood, prior, x_o, **mcmc_kwargs)

    def log_likelihood(self, theta: Tensor) -> Tensor:
        r"""Estimated :math:`\sum_k \log q(x_o^{(k)} \mid \theta)` for ``theta`` (N, D), (N,)."""
        with torch.no_grad():
            theta = theta.to(self.estimator.dtype)
            n, k = theta.shape[0], self.x_batch.shape[0]
            # Every (theta, x_o^(k)) pair at once: rows ordered theta-major.
            context = theta.repeat_interleave(k, dim=0)
            inputs = self.x_batch.repeat(n, 1)
            return self.estimator.log_prob(inputs, context).reshape(n, k).sum(1)

    def log_prob(self, theta: Tensor) -> Tensor:
        """Older name of :meth:`unnormalized_log_prob` (unnormalised!), shape (N,)."""
        return self._target(self._check_theta(theta))
