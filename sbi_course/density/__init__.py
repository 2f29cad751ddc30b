"""Conditional density estimators ``q(inputs | context)`` for neural SBI.

Called on a context, every estimator returns a torch distribution
(:class:`ConditionalDistribution`): ``estimator(context).sample((n,), generator=g)`` is
``(n, *B, D)`` for contexts ``(*B, C)``, and ``estimator(context).log_prob(theta)`` broadcasts
``theta`` of shape ``(*, D)``. The older methods, kept with the same numbers:

* ``log_prob(inputs, context)``: inputs (N, D), context (N, C) or one context (C,) -> (N,);
* ``sample(num_samples, context, generator=None)``: one context (C,) -> (num_samples, D);
  several contexts (M, C) -> (M, num_samples, D).

They z-score inputs and context (:class:`Standardize`), and ``log_prob`` is the density of the
original, un-standardised inputs. :func:`build_estimator` creates one by name, fitted to data.

Estimators: :class:`ConditionalGaussian` (full or diagonal covariance),
:class:`MixtureDensityNetwork`, and the flows :class:`RealNVP`, :class:`MAF`, :class:`NSF`
(see :mod:`sbi_course.density.flows`).
"""

from sbi_course.density.base import ConditionalDensityEstimator
from sbi_course.density.build import ESTIMATORS, build_estimator
from sbi_course.density.distribution import ConditionalDistribution
from sbi_course.density.flows import MAF, NSF, ConditionalFlow, RealNVP
from sbi_course.density.gaussian import ConditionalGaussian
from sbi_course.density.mdn import MixtureDensityNetwork
from sbi_course.density.standardize import Standardize

__all__ = [
    "ConditionalDensityEstimator",
    "ConditionalDistribution",
    "Standardize",
    "ConditionalGaussian",
    "MixtureDensityNetwork",
    "ConditionalFlow",
    "RealNVP",
    "MAF",
    "NSF",
    "ESTIMATORS",
    "build_estimator",
]
