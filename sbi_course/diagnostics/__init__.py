"""Diagnostics: is a posterior estimate right, and does the model fit the data?

* :func:`c2st`: classifier two-sample test against reference samples (0.5 = indistinguishable);
* :func:`sbc_ranks`, :func:`sbc_uniformity`, :func:`ecdf_band`: simulation-based calibration;
* :func:`expected_coverage`, :func:`hpd_levels`: coverage of highest-posterior-density regions;
* :func:`tarp`: TARP coverage with random or chosen reference points (needs samples only);
* :class:`LocalC2ST`, :func:`local_c2st`: local C2ST, a posterior test at any ``x_o``;
* :class:`EnsemblePosterior`, :class:`Ensemble`: mixtures of K trained estimators;
* :func:`misspecification_mmd`, :func:`marginal_logprob_test`: can the model produce ``x_o``?;
* :func:`failure_matrix`: which diagnostic detects which failure (power over seeds);
* :func:`prior_predictive`, :func:`posterior_predictive`, :func:`predictive_pvalue`: predictive
  checks of the model against the observation.

They return numbers and arrays; :mod:`sbi_course.plotting` draws them.
"""

from sbi_course.diagnostics.c2st import c2st
from sbi_course.diagnostics.coverage import coverage_from_levels, expected_coverage, hpd_levels
from sbi_course.diagnostics.ensemble import Ensemble, EnsemblePosterior
from sbi_course.diagnostics.local_c2st import LC2STResult, LocalC2ST, local_c2st
from sbi_course.diagnostics.matrix import DIAGNOSTICS, FAILURES, FailureMatrix, failure_matrix
from sbi_course.diagnostics.misspecification import (
    MisspecificationTest,
    marginal_logprob_test,
    misspecification_mmd,
    mmd,
)
from sbi_course.diagnostics.predictive import (
    posterior_predictive,
    predictive_pvalue,
    predictive_quantile,
    predictive_samples,
    prior_predictive,
)
from sbi_course.diagnostics.sbc import (
    SBCTest,
    discrete_rank_ecdf_band,
    ecdf_band,
    rank_ecdf,
    sbc_ranks,
    sbc_uniformity,
)
from sbi_course.diagnostics.tarp import TARPResult, tarp, tarp_coverage, tarp_credibility

__all__ = [
    "c2st",
    "sbc_ranks",
    "sbc_uniformity",
    "SBCTest",
    "rank_ecdf",
    "ecdf_band",
    "discrete_rank_ecdf_band",
    "hpd_levels",
    "coverage_from_levels",
    "expected_coverage",
    "predictive_samples",
    "prior_predictive",
    "posterior_predictive",
    "predictive_quantile",
    "predictive_pvalue",
    "tarp",
    "TARPResult",
    "tarp_credibility",
    "tarp_coverage",
    "LocalC2ST",
    "LC2STResult",
    "local_c2st",
    "EnsemblePosterior",
    "Ensemble",
    "mmd",
    "misspecification_mmd",
    "marginal_logprob_test",
    "MisspecificationTest",
    "failure_matrix",
    "FailureMatrix",
    "FAILURES",
    "DIAGNOSTICS",
]
