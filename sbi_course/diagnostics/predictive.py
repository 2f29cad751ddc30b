r"""Prior and posterior predictive checks: does the model produce data like ``x_o``?

*Prior predictive*: simulate with :math:`\theta \sim p(\theta)`. Before any inference, the
observation should look like a plausible draw; if it lies outside everything the prior
predicts, the model or the prior is wrong (and neural estimators will extrapolate).

*Posterior predictive*: simulate with :math:`\theta \sim q(\theta \mid x_o)`. If the
posterior is good and the model adequate, the observation looks typical among these
simulations (Gelman et al., 2013, chapter 6). A statistic :math:`T(x)` in a tail of its
predictive distribution,

.. math::
    p_T = \Pr\big(T(x^{\mathrm{rep}}) \ge T(x_o)\big),

near 0 or 1 signals a misfit. Posterior predictive p-values are conservative (the data are
used twice), so a failed check is informative while a passed one is weak evidence.

Example:
    >>> import torch
    >>> simulate = lambda theta, generator=None: theta + torch.randn(
    ...     theta.shape, generator=generator)
    >>> g = torch.Generator().manual_seed(0)
    >>> x_rep = predictive_samples(simulate, torch.zeros(1000, 2), generator=g)
    >>> predictive_quantile(x_rep, torch.zeros(2)).shape
    torch.Size([2])

References:
    Gelman, Carlin, Stern, Dunson, Vehtari & Rubin (2013), Bayesian Data Analysis, 3rd ed.,
    chapter 6 (model checking).
    Box (1980), Sampling and Bayes' inference in scientific modelling and robustness, JRSS A.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course._validation import as_batch, check_generator
from sbi_course.priors import sample_prior

__all__ = [
    "predictive_samples",
    "prior_predictive",
    "posterior_predictive",
    "predictive_quantile",
    "predictive_pvalue",
]


def _simulate_fn(simulator: Any) -> Callable:
    """Accept a simulator module (with ``simulate``) or a function ``(theta, generator)``."""
    simulate = getattr(simulator, "simulate", simulator)
    if not callable(simulate):
        raise ValueError(
            "simulator must be a function simulate(theta, generator=None) or a simulator "
            f"module with .simulate, got {type(simulator).__name__}"
        )
    return simulate


def predictive_samples(
    simulator: Any, theta_samples: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Simulate one data set for each parameter sample.

    Args:
        simulator: a simulator module (``sbi_course.simulators.two_moons``) or a function
            ``simulate(theta, generator=None)`` mapping (N, D) to (N, L).
        theta_samples: parameters from the prior or a posterior, shape (N, D).
        generator: random generator of the simulations.

    Returns:
        Simulated data, shape (N, L); failed simulations are NaN rows.
    """
    check_generator(generator, "predictive_samples")
    theta_samples = torch.as_tensor(theta_samples)
    theta_samples, _ = as_batch(
        theta_samples, theta_samples.shape[-1], name="theta_samples", owner="predictive_samples"
    )
    return _simulate_fn(simulator)(theta_samples, generator=generator)


def prior_predictive(
    prior: Distribution,
    simulator: Any,
    num_samples: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw ``(theta, x)`` with ``theta`` from the prior: shapes (N, D) and (N, L)."""
    theta = sample_prior(prior, int(num_samples), generator=generator)
    return theta, predictive_samples(simulator, theta, generator=generator)


def posterior_predictive(
    posterior: Any,
    simulator: Any,
    num_samples: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw ``(theta, x)`` with ``theta`` from a posterior (anything with ``sample``).

    Returns:
        Parameters (N, D) and simulated data (N, L).
    """
    theta = posterior.sample((int(num_samples),), generator=generator)
    return theta, predictive_samples(simulator, theta, generator=generator)


def _statistic_values(
    x_rep: Tensor, x_o: Tensor, statistic: Callable[[Tensor], Tensor] | None
) -> tuple[Tensor, Tensor]:
    x_rep = torch.as_tensor(x_rep)
    x_rep, _ = as_batch(
        x_rep, x_rep.shape[-1], name="x_rep", owner="predictive checks", allow_nan=True
    )
    x_o, _ = as_batch(x_o, x_rep.shape[1], name="x_o", owner="predictive checks")
    if x_o.shape[0] != 1:
        raise ValueError(
            f"predictive checks compare simulations with one observation x_o of shape "
            f"({x_rep.shape[1]},) or (1, {x_rep.shape[1]}), got {x_o.shape[0]} rows"
        )
    x_rep = x_rep[torch.isfinite(x_rep).all(dim=1)]  # failed simulations carry no information
    if x_rep.shape[0] == 0:
        raise ValueError("predictive checks: every simulated data set is NaN")
    if statistic is not None:
        x_rep, x_o = statistic(x_rep), statistic(x_o)
        x_rep = x_rep.reshape(x_rep.shape[0], -1)
        x_o = x_o.reshape(1, -1)
    return x_rep, x_o


def predictive_quantile(
    x_rep: Tensor, x_o: Tensor, statistic: Callable[[Tensor], Tensor] | None = None
) -> Tensor:
    r"""Where ``x_o`` falls among predictive simulations: :math:`\Pr(T(x^{rep}) \le T(x_o))`.

    Args:
        x_rep: predictive simulations, shape (N, L) (NaN rows are ignored).
        x_o: the observation, shape (L,) or (1, L).
        statistic: optional :math:`T`, mapping (N, L) to (N,) or (N, K); default: each data
            dimension on its own.

    Returns:
        Quantiles in [0, 1], one per statistic component, shape (K,) (K = L by default);
        values near 0 or 1 mean ``x_o`` is atypical.
    """
    x_rep, x_o = _statistic_values(x_rep, x_o, statistic)
    # Ties count half, so that a discrete statistic equal to x_o sits in the middle.
    below = (x_rep < x_o).double().mean(dim=0)
    equal = (x_rep == x_o).double().mean(dim=0)
    return below + 0.5 * equal


def predictive_pvalue(
    x_rep: Tensor, x_o: Tensor, statistic: Callable[[Tensor], Tensor] | None = None
) -> Tensor:
    """Two-sided predictive p-value, ``2 * min(q, 1 - q)`` of :func:`predictive_quantile`.

    Returns:
        p-values in [0, 1], shape (K,); small values flag a misfit of that statistic.
    """
    quantile = predictive_quantile(x_rep, x_o, statistic)
    return torch.clamp(2 * torch.minimum(quantile, 1 - quantile), max=1.0)
