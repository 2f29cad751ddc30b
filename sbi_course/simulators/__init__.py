"""Batched, seeded simulators: parameters ``theta`` (N, D) -> data ``x`` (N, L).

Each module defines ``simulate(theta, generator=None)``, ``prior()`` and the constants
``theta_dim``, ``x_dim`` and ``parameter_labels``; model-specific helpers (traces, summary
statistics) live beside them. See :mod:`sbi_course.tasks` for the task registry.

Example:
    >>> import torch
    >>> from sbi_course.simulators import two_moons
    >>> g = torch.Generator().manual_seed(0)
    >>> theta = two_moons.prior().sample((100,), generator=g)
    >>> two_moons.simulate(theta, generator=g).shape
    torch.Size([100, 2])
"""

from __future__ import annotations

import importlib

__all__ = [
    "two_moons",
    "gaussian_linear",
    "gaussian_mixture",
    "slcp",
    "bernoulli_glm",
    "sir",
    "lotka_volterra",
    "hodgkin_huxley",
    "gravitational_wave",
]


def __getattr__(name: str):
    # Modules load on first use, so importing one simulator does not import them all.
    if name in __all__:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
