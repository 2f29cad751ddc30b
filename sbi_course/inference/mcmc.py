r"""Markov chain Monte Carlo with many chains in parallel, for NLE, NRE and reference posteriors.

NLE and NRE learn a likelihood or a likelihood-to-evidence ratio, so their posterior is only
known up to a constant,

.. math::
    p(\theta \mid x_o) \propto \exp(\text{potential}(\theta)), \qquad
    \text{potential}(\theta) = \log q(x_o \mid \theta) + \log p(\theta),

and samples come from MCMC. This module runs ``C`` chains at once: the target
``log_prob_fn`` maps a batch of states of shape (C, D) to log-densities of shape (C,), so one
call of a neural network advances every chain.

Two samplers:

* ``"slice"`` (default): slice sampling one direction at a time, with stepping out and
  shrinkage (Neal, 2003). It needs no step size and accepts every move. During warm-up it
  tunes the bracket width of each direction, and halfway through it turns from the coordinate
  axes to the principal axes of the chains' covariance, so that correlated posteriors mix fast.
* ``"mh"``: random-walk Metropolis-Hastings with a Gaussian proposal whose covariance is learnt
  from the chains during warm-up (adaptive Metropolis, Haario et al., 2001) and whose scale is
  tuned towards an acceptance rate of 0.234 (Roberts et al., 1997).

Chains start from the prior, from the best of many prior draws, or (default) by
sampling-importance-resampling (SIR) of prior draws, which already puts about the right share
of chains into each mode of a multimodal posterior. A single chain rarely crosses between
well-separated modes, so with many chains the *share* of chains per mode matters.

Convergence is checked with the split :math:`\hat R` (Gelman et al., 2013; near 1 when the
chains agree, above 1.01-1.1 when they do not) and the effective sample size
(Geyer's initial positive sequence).

Example:
    >>> import torch
    >>> log_prob = lambda theta: -0.5 * (theta**2).sum(-1)
    >>> g = torch.Generator().manual_seed(0)
    >>> result = run_mcmc(log_prob, torch.randn(20, 2, generator=g), 50, generator=g)
    >>> result.samples.shape
    torch.Size([1000, 2])

References:
    Neal (2003), Slice sampling, Annals of Statistics 31(3).
    Haario, Saksman & Tamminen (2001), An adaptive Metropolis algorithm, Bernoulli 7(2).
    Gelman, Carlin, Stern, Dunson, Vehtari & Rubin (2013), Bayesian Data Analysis, 3rd ed.,
    chapter 11 (split R-hat, effective sample size).
    Geyer (1992), Practical Markov chain Monte Carlo, Statistical Science 7(4).
"""

from __future__ import annotations

from torch import Tensor
from torch.distributions import Distribution

from sbi_course.inference.mcmc_diagnostics import MCMCResult, effective_sample_size, rhat
from sbi_course.inference.mcmc_init import initial_chains
from sbi_course.inference.mcmc_sampler import LogProbFn, run_mcmc
from sbi_course.inference.unnormalized import UnnormalizedPosterior

__all__ = [
    "MCMCResult",
    "run_mcmc",
    "initial_chains",
    "rhat",
    "effective_sample_size",
    "MCMCPosterior",
]


class MCMCPosterior(UnnormalizedPosterior):
    r"""An :class:`~sbi_course.inference.unnormalized.UnnormalizedPosterior` given its whole
    target: ``potential_fn`` is the unnormalised log-posterior itself (prior and masking
    included), not only the likelihood term. Kept for code written before the redesign.

    Args:
        potential_fn: unnormalised log-posterior, (N, D) -> (N,), ``-inf`` outside the prior.
        prior: the prior (also the proposal of the initial states).
        x_o: the observation(s) the potential is conditioned on.
        **mcmc_kwargs: ``num_chains``, ``method``, ``warmup_steps``, ``thin``,
            ``init_strategy``, ``num_init_candidates``, ``show_progress`` (see
            :class:`~sbi_course.inference.unnormalized.UnnormalizedPosterior`).
    """

    def __init__(self, potential_fn: LogProbFn, prior: Distribution, x_o: Tensor, **mcmc_kwargs):
        super().__init__(potential_fn, prior, x_o, **mcmc_kwargs)
        self.potential_fn = potential_fn

    def _target(self, theta: Tensor) -> Tensor:
        return self.potential_fn(theta)

    def log_prob(self, theta: Tensor) -> Tensor:
        """The *unnormalised* log-posterior of ``theta`` (N, D), shape (N,): the older name of
        :meth:`unnormalized_log_prob`, kept for the lectures written against it.
        """
        theta = self._check_theta(theta)
        return self._target(theta)
