"""Neural simulation-based inference: NPE, NLE, NRE and the pieces they share.

* :mod:`~sbi_course.inference.training`: the training loop (validation split, Adam, gradient
  clipping, early stopping, progress bar), :func:`drop_invalid` for failed simulations and
  :func:`seeded_init` for reproducible weight initialisation;
* :mod:`~sbi_course.inference.posterior`: the :class:`Posterior` interface every method returns;
* :mod:`~sbi_course.inference.npe`: neural posterior estimation;
* :mod:`~sbi_course.inference.nle`, :mod:`~sbi_course.inference.nre`: neural likelihood and
  ratio estimation, sampled with :mod:`~sbi_course.inference.mcmc`;
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

from sbi_course.inference.training import TrainingHistory, drop_invalid, seeded_init, train

__all__ = [
    "train",
    "TrainingHistory",
    "drop_invalid",
    "seeded_init",
    "Posterior",
    "NPE",
    "NPEPosterior",
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
    "NRE": "nre",
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
