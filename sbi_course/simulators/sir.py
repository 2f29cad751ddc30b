r"""The SIR epidemic model, exactly as the sbibm task ``sir``.

A population of :math:`N = 10^6` people is split into susceptible :math:`S`, infected :math:`I`
and recovered :math:`R`. Infection happens at rate :math:`\beta S I / N` and recovery at rate
:math:`\gamma I`:

.. math::

    \frac{dS}{dt} = -\beta \frac{S I}{N}, \qquad
    \frac{dI}{dt} = \beta \frac{S I}{N} - \gamma I, \qquad
    \frac{dR}{dt} = \gamma I,

starting from :math:`(S, I, R) = (N - 1, 1, 0)` at day 0 and solved for 160 days (time in days,
rates in 1/day). The data are noisy counts: on the 10 days :math:`t = 0, 17, \dots, 153` (every
17th day of the daily grid) 1,000 people are tested and the number of infected ones is

.. math:: x_j \sim \mathrm{Binomial}\big(1000,\; I(t_j) / N\big).

Parameters ``theta = (beta, gamma)``, shape (N, 2): the contact rate and the recovery rate, with
the prior :math:`\log\beta \sim N(\log 0.4, 0.5^2)`, :math:`\log\gamma \sim N(\log 0.125, 0.2^2)`.
Data ``x``: shape (N, 10), counts in 0..1000 stored as floats. Because the ODE solution fixes the
binomial probabilities, the likelihood is tractable (:func:`log_likelihood`), which makes SIR a
good test bed for comparing SBI with exact inference.

Example:
    >>> import torch
    >>> from sbi_course.simulators import sir
    >>> g = torch.Generator().manual_seed(0)
    >>> theta = sir.prior().sample((3,), generator=g)
    >>> sir.simulate(theta, generator=g).shape
    torch.Size([3, 10])
    >>> sir.solve(theta).shape  # S, I, R on each of the 161 days
    torch.Size([3, 161, 3])

References:
    Kermack, W. O. and McKendrick, A. G. (1927). A contribution to the mathematical theory of
    epidemics. Proceedings of the Royal Society A 115(772), 700-721.

    Lueckmann, J.-M. et al. (2021). Benchmarking simulation-based inference. AISTATS
    (the task ``sir`` of sbibm).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sbi_course._validation import (
    broadcast_rows,
    check_generator,
    flatten_batch,
    positive_parameters,
    unflatten_batch,
)
from sbi_course.priors import LogNormalPrior
from sbi_course.simulators._ode import solve_batch
from sbi_course.simulators._spec import SimulatorSpec

__all__ = [
    "theta_dim",
    "x_dim",
    "parameter_labels",
    "population",
    "initial_state",
    "times",
    "observation_times",
    "num_tested",
    "prior",
    "solve",
    "simulate",
    "log_likelihood",
    "spec",
]

theta_dim: int = 2
x_dim: int = 10
parameter_labels: tuple[str, ...] = ("beta", "gamma")

population: float = 1_000_000.0
#: (S, I, R) on day 0, in people.
initial_state: tuple[float, float, float] = (population - 1.0, 1.0, 0.0)
#: The daily save grid 0, 1, ..., 160 (days), shape (161,).
times: Tensor = torch.arange(161, dtype=torch.float64)
#: Every 17th day, 0, 17, ..., 153: the days that are observed, shape (10,).
observation_times: Tensor = times[::17]
#: People tested on each observation day (the binomial's number of trials).
num_tested: int = 1000

# ODE solver settings. The relative tolerance keeps the saved trajectories within about 2e-6
# (relative) of a high-accuracy reference, far below the binomial noise; the absolute tolerance
# (in people) only matters once I has decayed below a negligible 1e-12 people. Prior draws
# need at most ~350 steps (100,000 tried); the budget of 5,000 only stops absurd parameters.
_RTOL, _ATOL, _MAX_STEPS = 1e-7, 1e-12, 5_000


def prior() -> LogNormalPrior:
    r"""The sbibm prior: :math:`\beta \sim \mathrm{LogNormal}(\log 0.4, 0.5)`,
    :math:`\gamma \sim \mathrm{LogNormal}(\log 0.125, 0.2)`, independent."""
    return LogNormalPrior(
        mu=torch.tensor([math.log(0.4), math.log(0.125)]), sigma=torch.tensor([0.5, 0.2])
    )


def _rhs(t: Tensor, y: Tensor, rates: Tensor) -> Tensor:
    """dS/dt, dI/dt, dR/dt for rates (beta / N, gamma), shape (n, 2); y = (S, I, R), (n, 3)."""
    infections = rates[:, 0] * y[:, 0] * y[:, 1]  # beta S I / N
    recoveries = rates[:, 1] * y[:, 1]  # gamma I
    return torch.stack([-infections, infections - recoveries, recoveries], dim=-1)


def _solve(theta: Tensor, at: Tensor, rtol: float, atol: float, max_steps: int) -> Tensor:
    """Compartments at the times ``at`` (which end on day 160), float64, shape (N, T, 3)."""
    theta = theta.to(torch.float64)
    rates = torch.stack([theta[:, 0] / population, theta[:, 1]], dim=-1)
    y0 = torch.tensor(initial_state, dtype=torch.float64)
    return solve_batch(
        _rhs, y0, at, rates, rtol=rtol, atol=atol, max_steps=max_steps, max_value=10 * population
    ).y


def _infected_fraction(theta: Tensor) -> Tensor:
    """I / N on the observation days, float64, shape (N, 10); NaN rows where the solve failed."""
    # Integrate to day 160 as :func:`solve` does, so both see the same steps.
    at = torch.cat([observation_times, times[-1:]])
    infected = _solve(theta, at, _RTOL, _ATOL, _MAX_STEPS)[:, :-1, 1]
    # The ODE keeps 0 <= I <= N; clamping guards the binomial against rounding (as sbibm does).
    return (infected / population).clamp(0.0, 1.0)


def solve(
    theta: Tensor,
    *,
    rtol: float = _RTOL,
    atol: float = _ATOL,
    max_steps: int = _MAX_STEPS,
) -> Tensor:
    """The noise-free epidemic: S, I, R (people) on each of the days 0, 1, ..., 160.

    Args:
        theta: parameters (beta, gamma), shape (*, 2); positive.
        rtol: relative tolerance of the ODE solver.
        atol: absolute tolerance of the ODE solver, in people.
        max_steps: step budget per trajectory; a trajectory that needs more gives NaN.

    Returns:
        Compartments of shape (*, 161, 3), the batch shape of ``theta``, last axis
        (S, I, R), in the dtype of ``theta``; NaN rows where the ODE solve failed.

    Raises:
        ValueError: if ``theta`` has the wrong shape, NaN entries or non-positive values.
    """
    theta, batch_shape = positive_parameters(theta, parameter_labels, owner="sir.solve")
    y = _solve(theta, times, rtol, atol, max_steps).to(theta.dtype)
    return unflatten_batch(y, batch_shape)


def simulate(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Noisy counts of infected people among 1,000 tested on days 0, 17, ..., 153.

    Args:
        theta: parameters (beta, gamma), shape (*, 2); positive.
        generator: random number generator for the binomial draws.

    Returns:
        x of shape (*, 10), the batch shape of ``theta``, integer counts in the dtype of
        ``theta``; rows of NaN where the ODE solve failed.

    Raises:
        ValueError: if ``theta`` has the wrong shape, NaN entries or non-positive values.
    """
    check_generator(generator, "sir.simulate")
    theta, batch_shape = positive_parameters(theta, parameter_labels, owner="sir.simulate")
    probs = _infected_fraction(theta)
    failed = probs.isnan().any(dim=-1)
    # torch.binomial draws exactly (not by a normal approximation) and takes the generator.
    trials = torch.full_like(probs, float(num_tested))
    x = torch.binomial(trials, probs.nan_to_num(0.0), generator=generator)
    x[failed] = float("nan")
    x = x.to(theta.dtype)
    return unflatten_batch(x, batch_shape)


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    r"""Exact log-likelihood :math:`\sum_j \log \mathrm{Binomial}(x_j;\, 1000,\, I(t_j)/N)`.

    Args:
        theta: parameters (beta, gamma), shape (*, 2); positive.
        x: counts, shape (*, 10); the batch shapes must broadcast: a single row of ``theta``
            or ``x`` is paired with every row of the other.

    Returns:
        Log-likelihoods of the broadcast batch shape ((N,) for (N, ...) inputs), in the dtype of
        ``theta``. Counts that are not integers in 0..1000 have likelihood 0 (``-inf``), and so
        do parameters whose ODE solve fails.

    Raises:
        ValueError: on wrong shapes, NaN entries or non-positive parameters.
    """
    owner = "sir.log_likelihood"
    theta, theta_shape = positive_parameters(theta, parameter_labels, owner=owner)
    x, x_shape = flatten_batch(x, x_dim, name="x", owner=owner, dtype=torch.float64)
    batch_shape = broadcast_rows(
        theta_shape, x_shape, (theta_dim, x_dim), names=("theta", "x"), owner=owner
    )
    # Solve once per row of theta, then pair the rows by broadcasting.
    probs = unflatten_batch(_infected_fraction(theta), theta_shape)
    x = unflatten_batch(x, x_shape)
    n = float(num_tested)
    log_choose = math.lgamma(n + 1) - torch.lgamma(x + 1) - torch.lgamma(n - x + 1)
    log_pmf = log_choose + torch.xlogy(x, probs) + torch.xlogy(n - x, 1 - probs)
    valid = (x >= 0) & (x <= n) & (x == x.round())
    log_pmf = torch.where(valid, log_pmf, -math.inf)
    out = log_pmf.sum(dim=-1)
    out = torch.where(out.isnan(), -math.inf, out).to(theta.dtype)
    return out.expand(batch_shape).contiguous()


spec = SimulatorSpec(
    name="sir",
    theta_dim=theta_dim,
    x_dim=x_dim,
    parameter_labels=parameter_labels,
    prior=prior,
    simulate=simulate,
    log_likelihood=log_likelihood,
    sample_posterior=None,
)
