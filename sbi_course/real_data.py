r"""Two real data sets and the mechanistic models the course fits to them.

The observations ship with the repository as small CSV files in ``data/`` (source and licence
in ``data/README.md``); nothing is downloaded.

**Lynx and hares.** Hudson's Bay Company pelts, 1900-1920, in thousands. The model is the
Lotka-Volterra system (Lotka, 1925; Volterra, 1926) for hares :math:`u_1` and lynx :math:`u_2`,

.. math::

    \dot u_1 = \alpha u_1 - \beta u_1 u_2, \qquad \dot u_2 = -\gamma u_2 + \delta u_1 u_2,

started at unknown populations :math:`(u_1(0), u_2(0))` in 1900, with multiplicative
(log-normal) observation noise of scale :data:`PELT_NOISE` on the 21 yearly values of both
series (Carpenter, 2018). Parameters ``theta = (alpha, beta, gamma, delta, u1_0, u2_0)``, per
year and in thousands of pelts; data ``x`` of shape (N, 42): the log pelts, hares first.

**Influenza in a boarding school.** 763 boys, one index case, daily counts of boys confined to
bed on days 1-14 of January-February 1978 (BMJ, 1978). The model is the SIR system
(Kermack & McKendrick, 1927) with :math:`S(0) = 762`, :math:`I(0) = 1` on day 0,

.. math::

    \dot S = -\beta S I / N, \qquad \dot I = \beta S I / N - \gamma I,

and the count in bed on day :math:`t` drawn as Poisson with mean :math:`I(t)`. Parameters
``theta = (beta, gamma)`` per day; data ``x`` of shape (N, 14), the counts.

Both ODEs are integrated with the package's adaptive Dormand-Prince solver
(:func:`sbi_course.simulators._ode.solve_batch`); failed solves give NaN rows.

References:
    Carpenter, B. (2018). Predator-prey population dynamics: the Lotka-Volterra model in
    Stan. Stan case study.

    Anonymous (1978). Influenza in a boarding school. British Medical Journal 1(6112), 587.

    Kermack, W. O. & McKendrick, A. G. (1927). A contribution to the mathematical theory of
    epidemics. Proceedings of the Royal Society A 115(772), 700-721.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch import Tensor

from sbi_course._validation import as_batch, check_generator, check_positive
from sbi_course.simulators._ode import solve_batch

__all__ = [
    "DATA_DIR",
    "PELT_NOISE",
    "SCHOOL_SIZE",
    "load_lynx_hare",
    "load_boarding_school_flu",
    "pelts_solve",
    "pelts_simulate",
    "flu_solve",
    "flu_simulate",
]

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
PELT_NOISE = 0.25  # log-scale noise of the pelt counts (Carpenter, 2018, estimates about 0.25)
SCHOOL_SIZE = 763  # boys at the school


def _read(name: str) -> list[dict[str, str]]:
    path = DATA_DIR / name
    if not path.exists():
        raise FileNotFoundError(
            f"{name} not found in {DATA_DIR}: the real data sets ship with the repository's "
            "data/ folder; run from a checkout of the course"
        )
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def load_lynx_hare() -> tuple[Tensor, Tensor]:
    """Years (21,) and pelts (21, 2) in thousands, columns (hare, lynx), float32."""
    rows = _read("lynx_hare.csv")
    years = torch.tensor([float(r["year"]) for r in rows])
    pelts = torch.tensor([[float(r["hare_thousands"]), float(r["lynx_thousands"])] for r in rows])
    return years, pelts


def load_boarding_school_flu() -> tuple[Tensor, Tensor]:
    """Days (14,) and counts of boys confined to bed (14,), float32."""
    rows = _read("boarding_school_flu.csv")
    days = torch.tensor([float(r["day"]) for r in rows])
    counts = torch.tensor([float(r["confined_to_bed"]) for r in rows])
    return days, counts


def _lv_rhs(t: Tensor, u: Tensor, p: Tensor) -> Tensor:
    alpha, beta, gamma, delta = p.unbind(-1)
    hare, lynx = u.unbind(-1)
    return torch.stack(
        [alpha * hare - beta * hare * lynx, -gamma * lynx + delta * hare * lynx], dim=-1
    )


def pelts_solve(theta: Tensor, years: Tensor | None = None) -> Tensor:
    """Noise-free populations (hare, lynx) of the Lotka-Volterra model.

    Args:
        theta: ``(alpha, beta, gamma, delta, hare_1900, lynx_1900)``, shape (N, 6); positive.
        years: times in years since 1900, shape (T,), increasing from 0; default 0, ..., 20.

    Returns:
        Populations, shape (N, T, 2), in ``theta``'s dtype; NaN rows where the solve failed.
    """
    theta, _ = as_batch(theta, 6, name="theta", owner="pelts_solve")
    check_positive(theta, "pelts_solve", ("alpha", "beta", "gamma", "delta", "hare0", "lynx0"))
    at = torch.arange(21.0, dtype=torch.float64) if years is None else years.double()
    theta64 = theta.double()
    y = solve_batch(_lv_rhs, theta64[:, 4:], at, theta64[:, :4], rtol=1e-6, atol=1e-6).y
    return y.to(theta.dtype)


def pelts_simulate(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Log pelts with log-normal noise, shape (N, 42): 21 hare values, then 21 lynx values."""
    check_generator(generator, "pelts_simulate")
    u = pelts_solve(theta).clamp(1e-3, 1e4)  # (N, 21, 2)
    log_u = u.log().transpose(1, 2).reshape(len(u), 42)
    return log_u + PELT_NOISE * torch.randn(log_u.shape, generator=generator, dtype=log_u.dtype)


def _sir_rhs(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
    beta, gamma = p.unbind(-1)
    s, i = y.unbind(-1)
    infections = beta * s * i / SCHOOL_SIZE
    return torch.stack([-infections, infections - gamma * i], dim=-1)


def flu_solve(theta: Tensor, days: Tensor | None = None) -> Tensor:
    """Noise-free number of infected boys I(t) of the SIR model.

    Args:
        theta: ``(beta, gamma)`` per day, shape (N, 2); positive.
        days: times in days, shape (T,), increasing from 0; default 0, 1, ..., 14.

    Returns:
        I(t), shape (N, T), in ``theta``'s dtype.
    """
    theta, _ = as_batch(theta, 2, name="theta", owner="flu_solve")
    check_positive(theta, "flu_solve", ("beta", "gamma"))
    at = torch.arange(15.0, dtype=torch.float64) if days is None else days.double()
    y0 = torch.tensor([SCHOOL_SIZE - 1.0, 1.0], dtype=torch.float64)
    y = solve_batch(_sir_rhs, y0, at, theta.double(), rtol=1e-6, atol=1e-6).y
    return y[..., 1].to(theta.dtype)


def flu_simulate(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Counts of boys in bed on days 1-14, Poisson around I(t), shape (N, 14)."""
    check_generator(generator, "flu_simulate")
    infected = flu_solve(theta)[:, 1:].clamp(min=0.0).nan_to_num(0.0)
    return torch.poisson(infected, generator=generator)
