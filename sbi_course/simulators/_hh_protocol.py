"""The stimulus protocol of the Hodgkin-Huxley example: time grid and current step.

The ``sbi`` tutorial's protocol: a 120 ms run sampled every ``dt = 0.01`` ms, with 0.5 nA
injected from 10 ms to 110 ms into a cylindrical soma 70 um long and 70 um across. Used by
:mod:`sbi_course.simulators.hodgkin_huxley`, which re-exports every name here.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["DT", "DURATION", "T_ON", "T_OFF", "SOMA_AREA", "time_grid", "step_current"]

# Protocol of the sbi tutorial (ms).
DT = 0.01
DURATION = 120.0
T_ON, T_OFF = 10.0, 110.0
# Lateral area of a 70 um x 70 um cylinder, in cm^2: pi * d * L.
SOMA_AREA = math.pi * (70e-4) ** 2


def time_grid(duration: float = DURATION, dt: float = DT) -> Tensor:
    """Times of the voltage samples in ms, shape (T,) with T = round(duration / dt) + 1."""
    num_steps = round(duration / dt)
    return torch.arange(num_steps + 1, dtype=torch.float64).mul(dt).to(torch.get_default_dtype())


def step_current(
    amplitude_nA: float = 0.5,
    t_on: float = T_ON,
    t_off: float = T_OFF,
    duration: float = DURATION,
    dt: float = DT,
) -> Tensor:
    """A current step as a current density in uA/cm^2, shape (T,).

    The current is ``amplitude_nA / SOMA_AREA`` at the sample indices
    ``round(t_on / dt) <= i < round(t_off / dt)`` and zero elsewhere; 0.5 nA gives
    3.25 uA/cm^2.
    """
    current = torch.zeros(round(duration / dt) + 1, dtype=torch.float64)
    # 1 nA = 1e-3 uA, spread over the membrane area.
    current[round(t_on / dt) : round(t_off / dt)] = amplitude_nA * 1e-3 / SOMA_AREA
    return current


def _num_steps(duration: float, dt: float, owner: str) -> int:
    """``round(duration / dt)``, after checking both are positive and finite numbers."""
    for name, value in (("dt", dt), ("duration", duration)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"{name} for {owner} must be a positive number (ms), got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} for {owner} must be finite, got {value!r}")
    num_steps = round(duration / dt)
    if num_steps < 1:
        raise ValueError(f"{owner}: duration={duration} ms is shorter than one step of dt={dt} ms")
    return num_steps
