"""Batched, seeded simulators: parameters ``theta`` (*, D) -> data ``x`` (*, L).

Each module defines ``simulate(theta, generator=None)``, ``prior()`` and the constants
``theta_dim``, ``x_dim`` and ``parameter_labels``, and declares them once more as a single
:class:`~sbi_course.simulators._spec.SimulatorSpec` named ``spec`` (with the exact
log-likelihood and posterior sampler where they exist), which :mod:`sbi_course.tasks` reads.
Model-specific helpers (traces, summary statistics) live beside them. Extra leading batch
dimensions of ``theta`` are kept in ``x``.

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
