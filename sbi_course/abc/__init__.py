r"""Approximate Bayesian computation: inference by simulating and comparing.

ABC replaces the likelihood by a question a simulator can answer: does data simulated at
:math:`\theta` look like the observation? The estimators here return an :class:`ABCResult`
(weighted samples, the simulations spent, distances and tolerances):

* :func:`rejection_abc`: prior draws kept when the distance is below a tolerance;
* :func:`regression_adjustment`: local-linear correction of accepted draws (Beaumont 2002);
* :func:`smc_abc`: population Monte Carlo ABC with shrinking tolerances (Beaumont 2009);
* :mod:`sbi_course.abc.distances`: Euclidean, scaled Euclidean, Manhattan, Chebyshev.

Every simulator is called as ``simulator(theta, generator=generator)`` with ``theta`` of
shape (N, D) and must return ``x`` of shape (N, L), NaN rows for failed simulations.

Example:
    >>> import torch
    >>> from sbi_course.abc import rejection_abc, regression_adjustment
    >>> from sbi_course.priors import BoxUniform
    >>> prior = BoxUniform(-3 * torch.ones(2), 3 * torch.ones(2))
    >>> def simulator(theta, generator=None):
    ...     return theta + 0.1 * torch.randn(theta.shape, generator=generator)
    >>> g = torch.Generator().manual_seed(0)
    >>> result = rejection_abc(prior, simulator, torch.zeros(2), 20_000, quantile=0.01, generator=g)
    >>> adjusted = regression_adjustment(result)
    >>> print(result.samples.shape, adjusted.method)
    torch.Size([200, 2]) rejection+regression
"""

from sbi_course.abc.distances import (
    chebyshev,
    euclidean,
    get_distance,
    mad,
    manhattan,
    scaled_euclidean,
)
from sbi_course.abc.regression import epanechnikov, regression_adjustment
from sbi_course.abc.rejection import ABCResult, rejection_abc
from sbi_course.abc.smc import SMCABCResult, smc_abc

__all__ = [
    "ABCResult",
    "SMCABCResult",
    "rejection_abc",
    "regression_adjustment",
    "smc_abc",
    "epanechnikov",
    "euclidean",
    "manhattan",
    "chebyshev",
    "scaled_euclidean",
    "mad",
    "get_distance",
]
