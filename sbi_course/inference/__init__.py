"""Neural simulation-based inference: NPE, NLE, NRE and the pieces they share.

* :mod:`~sbi_course.inference.training`: the training loop (validation split, Adam, gradient
  clipping, early stopping, progress bar) and :func:`seeded_init` for reproducible weight
  initialisation; :mod:`~sbi_course.inference.invalid`: :func:`drop_invalid` for failed
  simulations;
* :mod:`~sbi_course.inference.posterior`: :class:`Posterior`, the torch distribution every
  method returns;
* :mod:`~sbi_course.inference.npe`: neural posterior estimation;
* :mod:`~sbi_course.inference.nle`, :mod:`~sbi_course.inference.nre`: neural likelihood and
  ratio estimation, whose posteriors are an :class:`UnnormalizedPosterior`
  (:mod:`~sbi_course.inference.unnormalized`) sampled with :mod:`~sbi_course.inference.mcmc`
  (sampler, initialisation and diagnostics in ``mcmc_sampler``, ``mcmc_init``,
  ``mcmc_diagnostics``);
* :mod:`~sbi_course.inference.fmpe`, :mod:`~sbi_course.inference.npse`: flow matching and
  score-based (diffusion) posterior estimation, continuous flows sampled by an ODE
  (:mod:`~sbi_course.inference.continuous_flow`, :mod:`~sbi_course.inference.vector_field`).

Example:
    >>> import torch
    >>> from sbi_course.inference import NPE
    >>> from sbi_course.priors import BoxUniform
    >>> prior = BoxUniform(-torch.ones(2), torch.ones(2))
    >>> npe = NPE(prior, density_estimator="gaussian")
"""

from __future__ import annotations

import importlib

from sbi_course.inference.invalid import drop_invalid
from sbi_course.inference.training import TrainingHistory, seeded_init, train

__all__ = [
    "train",
    "TrainingHistory",
    "drop_invalid",
    "seeded_init",
    "Posterior",
    "UnnormalizedPosterior",
    "NPE",
    "NPEPosterior",
    "NLE",
    "LikelihoodPosterior",
    "NRE",
    "RatioPosterior",
    "FMPE",
    "FMPEPosterior",
    "NPSE",
    "NPSEPosterior",
]

# Names loaded on first use, so that importing the training loop does not import every method.
_LAZY = {
    "Posterior": "posterior",
    "NPE": "npe",
    "NPEPosterior": "npe",
    "NLE": "nle",
    "LikelihoodPosterior": "nle",
    "NRE": "nre",
    "RatioPosterior": "nre",
    "UnnormalizedPosterior": "unnormalized",
    "FMPE": "fmpe",
    "FMPEPosterior": "fmpe",
    "NPSE": "npse",
    "NPSEPosterior": "npse",
}


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f"{__name__}.{_LAZY[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    if name in (
        "npe",
        "nle",
        "nre",
        "mcmc",
        "posterior",
        "training",
        "unnormalized",
        "fmpe",
        "npse",
        "continuous_flow",
        "vector_field",
    ):
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
