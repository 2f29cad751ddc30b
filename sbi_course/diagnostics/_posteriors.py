"""How the diagnostics get a posterior for each of many observations.

SBC and expected coverage need posterior samples (and log-densities) for many simulated
observations ``x_i``. A posterior in this course is conditioned on one observation, so the
diagnostics accept any of:

* a trained inference object with a ``posterior(x_o)`` method (``NPE``, ``NLE``, ``NRE``);
* a function ``x_o -> posterior`` (for example ``npe.posterior``, or an exact posterior);
* for samples only: a function ``(x_o, num_samples, generator) -> Tensor (num_samples, D)``.

where a *posterior* has ``sample(sample_shape, generator=None)`` and ``log_prob(theta)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

Sampler = Callable[[Tensor, int, "torch.Generator | None"], Tensor]


def _num_required_positional(function: Callable) -> int:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds and p.default is inspect.Parameter.empty for p in parameters)


def posterior_factory(posterior: Any, owner: str) -> Callable[[Tensor], Any] | None:
    """Return ``x_o -> posterior`` for an inference object or a one-argument function.

    Returns ``None`` for a sampling function of three arguments.
    """
    method = getattr(posterior, "posterior", None)
    if callable(method):
        return method
    if not callable(posterior):
        raise ValueError(
            f"{owner} needs an object with a .posterior(x_o) method, a function x_o -> "
            f"posterior, or a sampler (x_o, num_samples, generator) -> samples; got "
            f"{type(posterior).__name__}"
        )
    if _num_required_positional(posterior) >= 2:
        return None
    return posterior


def as_sampler(posterior: Any, owner: str) -> Sampler:
    """Return ``(x_o, num_samples, generator) -> samples (num_samples, D)``."""
    factory = posterior_factory(posterior, owner)
    if factory is None:
        return posterior

    def sampler(x_o: Tensor, num_samples: int, generator: torch.Generator | None) -> Tensor:
        return factory(x_o).sample((num_samples,), generator=generator)

    return sampler
