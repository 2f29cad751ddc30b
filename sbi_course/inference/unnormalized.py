r"""Posteriors known up to a constant (NLE, NRE), sampled by MCMC.

NLE learns a likelihood and NRE a likelihood-to-evidence ratio, so their posterior is

.. math::
    \log p(\theta \mid x_o) = \underbrace{\text{potential}(\theta)}_{\log q(x_o\mid\theta)
    \text{ or } \log r(x_o, \theta)} + \log p(\theta) + c,

with an unknown constant :math:`c`. :class:`UnnormalizedPosterior` holds the potential and the
prior. Its :meth:`~UnnormalizedPosterior.unnormalized_log_prob` adds the log-prior and masks
parameters outside the prior's support (the one place where the course does this), and
:meth:`~UnnormalizedPosterior.sample` runs the chains of :mod:`~sbi_course.inference.mcmc`.
It has no ``log_prob``: an unnormalised density must not be mistaken for one.

Example:
    >>> import torch
    >>> from sbi_course.priors import BoxUniform
    >>> prior = BoxUniform(-torch.ones(2), torch.ones(2))
    >>> posterior = UnnormalizedPosterior(lambda theta: -(theta**2).sum(-1), prior, num_chains=10)
    >>> g = torch.Generator().manual_seed(0)
    >>> posterior.sample((30,), generator=g).shape
    torch.Size([30, 2])
    >>> posterior.unnormalized_log_prob(torch.tensor([[0.0, 0.0], [2.0, 0.0]]))
    tensor([-1.3863,    -inf])
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course._validation import check_generator, check_memory
from sbi_course.inference.mcmc_diagnostics import MCMCResult
from sbi_course.inference.mcmc_init import initial_chains
from sbi_course.inference.mcmc_sampler import run_mcmc
from sbi_course.inference.posterior import Posterior, num_samples_from_shape
from sbi_course.priors import log_prob_in_support

__all__ = ["UnnormalizedPosterior"]


class UnnormalizedPosterior(Posterior):
    r"""The posterior :math:`\propto \exp(\text{potential}(\theta))\, p(\theta)`, sampled by MCMC.

    Each call of :meth:`sample` starts fresh chains (by ``init_strategy`` from the prior), runs
    ``warmup_steps`` steps, then keeps ``ceil(n / num_chains)`` states per chain (every
    ``thin``-th step). The last run's :class:`~sbi_course.inference.mcmc.MCMCResult` (with
    R-hat and ESS) is kept in :attr:`mcmc_result`.

    Args:
        potential: the log-likelihood-like term, (N, D) -> (N,); it is only called at
            parameters inside the prior's support.
        prior: the prior (also the proposal of the initial states).
        x_o: the observation(s) the potential is conditioned on (for display; optional).
        num_chains: chains run in parallel.
        method: ``"slice"`` or ``"mh"`` (see :func:`~sbi_course.inference.mcmc.run_mcmc`).
        warmup_steps: discarded steps per chain.
        thin: keep every ``thin``-th step.
        init_strategy: ``"sir"``, ``"best"`` or ``"prior"`` (see
            :func:`~sbi_course.inference.mcmc.initial_chains`).
        num_init_candidates: prior draws for ``"sir"`` and ``"best"``.
        show_progress: show a progress bar while sampling.

    Attributes:
        potential: the potential.
        mcmc_result: the ``MCMCResult`` of the last :meth:`sample` call (``None`` before).
    """

    def __init__(
        self,
        potential: Callable[[Tensor], Tensor],
        prior: Distribution,
        x_o: Tensor | None = None,
        *,
        num_chains: int = 100,
        method: str = "slice",
        warmup_steps: int = 50,
        thin: int = 1,
        init_strategy: str = "sir",
        num_init_candidates: int = 10_000,
        show_progress: bool = False,
    ):
        super().__init__(prior, torch.zeros(0) if x_o is None else x_o)
        if int(num_chains) != num_chains or num_chains < 1:
            raise ValueError(f"num_chains must be a positive integer, got {num_chains}")
        self.potential = potential
        self.num_chains = int(num_chains)
        self.method = method
        self.warmup_steps = warmup_steps
        self.thin = thin
        self.init_strategy = init_strategy
        self.num_init_candidates = num_init_candidates
        self.show_progress = show_progress
        self.mcmc_result: MCMCResult | None = None

    def _target(self, theta: Tensor) -> Tensor:
        """Potential plus log-prior of ``theta`` (N, D), ``-inf`` outside the support."""
        with torch.no_grad():
            inside, log_prior = log_prob_in_support(self.prior, theta)
            out = torch.full_like(log_prior, -math.inf)
            if inside.any():
                out[inside] = self.potential(theta[inside]).to(out.dtype) + log_prior[inside]
        return out

    def unnormalized_log_prob(self, theta: Tensor) -> Tensor:
        """Potential plus log-prior of ``theta`` (*, D), shape (*,): the log-posterior up to
        an unknown constant, ``-inf`` outside the prior's support.

        Fine for comparing parameters (MCMC, HPD regions, coverage), not as a density.
        """
        theta = torch.as_tensor(theta)
        if theta.ndim < 1 or theta.shape[-1] != self.theta_dim:
            raise ValueError(
                f"theta for {type(self).__name__}.unnormalized_log_prob must have shape "
                f"(*, {self.theta_dim}), got {tuple(theta.shape)}"
            )
        flat = theta.reshape(-1, self.theta_dim) if theta.ndim != 1 else theta[None]
        out = self._target(flat)
        return out.reshape(theta.shape[:-1]) if theta.ndim != 1 else out

    def log_prob(self, theta: Tensor) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} is known only up to a constant: use unnormalized_log_prob"
        )

    def sample(self, sample_shape=torch.Size(), generator: torch.Generator | None = None) -> Tensor:
        """Draw ``sample_shape + (D,)`` posterior samples by MCMC (see the class docstring)."""
        owner = f"{type(self).__name__}.sample"
        check_generator(generator, owner)
        num_samples, shape = num_samples_from_shape(sample_shape, owner)
        steps = math.ceil(num_samples / self.num_chains)
        check_memory(
            2.0 * self.num_chains * steps * (self.theta_dim + 1) * 8,
            what=f"{num_samples} MCMC samples of {self.theta_dim} parameters",
            owner=owner,
            argument="sample_shape",
        )
        if num_samples == 0:
            return torch.zeros(*shape, self.theta_dim)
        initial = initial_chains(
            self._target,
            self.prior,
            self.num_chains,
            strategy=self.init_strategy,
            num_candidates=self.num_init_candidates,
            generator=generator,
        )
        self.mcmc_result = run_mcmc(
            self._target,
            initial,
            steps,
            method=self.method,
            warmup_steps=self.warmup_steps,
            thin=self.thin,
            generator=generator,
            show_progress=self.show_progress,
        )
        return self.mcmc_result.samples[:num_samples].reshape(*shape, self.theta_dim)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_chains={self.num_chains}, method={self.method!r})"
