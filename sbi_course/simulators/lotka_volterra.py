r"""The Lotka-Volterra predator-prey model, exactly as the sbibm task ``lotka_volterra``.

Prey :math:`u_1` grow at rate :math:`\alpha` and are eaten at rate :math:`\beta u_1 u_2`;
predators :math:`u_2` die at rate :math:`\gamma` and multiply at rate :math:`\delta u_1 u_2`:

.. math::

    \frac{du_1}{dt} = \alpha u_1 - \beta u_1 u_2, \qquad
    \frac{du_2}{dt} = -\gamma u_2 + \delta u_1 u_2,

from :math:`(u_1, u_2) = (30, 1)` at :math:`t = 0` to :math:`t = 20` (arbitrary time units;
populations in arbitrary units). The solution oscillates: prey boom, predators follow, prey
crash, predators starve. The data are both populations at the 10 times
:math:`t = 0, 2.1, \dots, 18.9` (every 21st point of the grid of step 0.1) with
multiplicative noise,

.. math:: x \sim \mathrm{LogNormal}\big(\log \mathrm{clamp}(u(t), 10^{-10}, 10^4),\; 0.1\big),

prey values first, then predator values. Parameters ``theta = (alpha, beta, gamma, delta)``,
shape (N, 4), with the prior :math:`\log\theta \sim N((-0.125, -3, -0.125, -3), 0.5^2 I)`.
Data ``x``: shape (N, 20), positive. The likelihood is tractable given the ODE solution
(:func:`log_likelihood`).

Example:
    >>> import torch
    >>> from sbi_course.simulators import lotka_volterra
    >>> g = torch.Generator().manual_seed(0)
    >>> theta = lotka_volterra.prior().sample((3,), generator=g)
    >>> lotka_volterra.simulate(theta, generator=g).shape
    torch.Size([3, 20])
    >>> lotka_volterra.solve(theta).shape  # prey and predators on the grid of 201 times
    torch.Size([3, 201, 2])

References:
    Lotka, A. J. (1925). Elements of Physical Biology. Williams & Wilkins.

    Volterra, V. (1926). Fluctuations in the abundance of a species considered
    mathematically. Nature 118, 558-560.

    Lueckmann, J.-M. et al. (2021). Benchmarking simulation-based inference. AISTATS
    (the task ``lotka_volterra`` of sbibm).
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
    "initial_state",
    "times",
    "observation_times",
    "noise_scale",
    "prior",
    "solve",
    "simulate",
    "log_likelihood",
    "spec",
]

theta_dim: int = 4
x_dim: int = 20
parameter_labels: tuple[str, ...] = ("alpha", "beta", "gamma", "delta")

#: (prey, predators) at t = 0.
initial_state: tuple[float, float] = (30.0, 1.0)
#: The save grid 0, 0.1, ..., 20, shape (201,).
times: Tensor = torch.arange(201, dtype=torch.float64) / 10
#: Every 21st grid point, 0, 2.1, ..., 18.9: the observed times, shape (10,).
observation_times: Tensor = times[::21]
#: Standard deviation of the log-normal observation noise.
noise_scale: float = 0.1
# Populations are clamped to this range before the noise (as in sbibm).
_CLAMP = (1e-10, 1e4)

# ODE solver settings. Populations can dip to 1e-8 and recover, and the timing of the recovery
# depends on their *relative* accuracy, so the absolute tolerance is negligible and the
# relative one tight: the saved trajectories stay within about 3e-5 (relative) of a
# high-accuracy reference. Prior draws need at most ~1,250 steps (100,000 tried); the budget
# of 5,000 only stops absurd parameters.
_RTOL, _ATOL, _MAX_STEPS = 1e-7, 1e-20, 5_000


def prior() -> LogNormalPrior:
    r"""The sbibm prior: :math:`\log\theta \sim N((-0.125, -3, -0.125, -3), 0.5^2 I)`."""
    return LogNormalPrior(mu=torch.tensor([-0.125, -3.0, -0.125, -3.0]), sigma=torch.tensor(0.5))


def _rhs(t: Tensor, u: Tensor, rates: Tensor) -> Tensor:
    r"""du/dt = u * (a + b * (u_2, u_1)), the per-capita growth rates of prey and predators.

    ``rates`` = (alpha, -gamma, -beta, delta), shape (n, 4): with a = (alpha, -gamma) and
    b = (-beta, delta) this is :math:`(\alpha u_1 - \beta u_1 u_2, -\gamma u_2 + \delta u_1 u_2)`
    in three tensor operations, which keeps the batched solver fast.
    """
    return u * torch.addcmul(rates[:, :2], rates[:, 2:], u.flip(-1))


def _solve(theta: Tensor, at: Tensor, rtol: float, atol: float, max_steps: int) -> Tensor:
    """Populations at the times ``at`` (which end at t = 20), float64, shape (N, T, 2)."""
    alpha, beta, gamma, delta = theta.to(torch.float64).unbind(-1)
    rates = torch.stack([alpha, -gamma, -beta, delta], dim=-1)
    u0 = torch.tensor(initial_state, dtype=torch.float64)
    return solve_batch(_rhs, u0, at, rates, rtol=rtol, atol=atol, max_steps=max_steps).y


def _log_mean(theta: Tensor) -> Tensor:
    """log clamp(u) at the observed times, prey then predators, float64, shape (N, 20)."""
    # Integrate to t = 20 as :func:`solve` does, so both see the same steps.
    at = torch.cat([observation_times, times[-1:]])
    u = _solve(theta, at, _RTOL, _ATOL, _MAX_STEPS)[:, :-1]  # (N, 10, 2)
    return u.clamp(*_CLAMP).log().transpose(1, 2).reshape(-1, x_dim)


def solve(
    theta: Tensor,
    *,
    rtol: float = _RTOL,
    atol: float = _ATOL,
    max_steps: int = _MAX_STEPS,
) -> Tensor:
    """The noise-free populations (prey, predators) at t = 0, 0.1, ..., 20.

    Args:
        theta: parameters (alpha, beta, gamma, delta), shape (*, 4); positive.
        rtol: relative tolerance of the ODE solver.
        atol: absolute tolerance of the ODE solver.
        max_steps: step budget per trajectory; a trajectory that needs more gives NaN.

    Returns:
        Populations of shape (*, 201, 2), the batch shape of ``theta``, last axis
        (prey, predators), in the dtype of ``theta``; NaN rows where the ODE solve failed.

    Raises:
        ValueError: if ``theta`` has the wrong shape, NaN entries or non-positive values.
    """
    theta, batch_shape = positive_parameters(theta, parameter_labels, owner="lotka_volterra.solve")
    u = _solve(theta, times, rtol, atol, max_steps).to(theta.dtype)
    return unflatten_batch(u, batch_shape)


def simulate(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Noisy prey and predator counts at t = 0, 2.1, ..., 18.9.

    Args:
        theta: parameters (alpha, beta, gamma, delta), shape (*, 4); positive.
        generator: random number generator for the observation noise.

    Returns:
        x of shape (*, 20), the batch shape of ``theta``: 10 prey values, then 10 predator
        values, in the dtype of ``theta``; rows of NaN where the ODE solve failed.

    Raises:
        ValueError: if ``theta`` has the wrong shape, NaN entries or non-positive values.
    """
    check_generator(generator, "lotka_volterra.simulate")
    theta, batch_shape = positive_parameters(
        theta, parameter_labels, owner="lotka_volterra.simulate"
    )
    log_mean = _log_mean(theta)
    noise = torch.randn(log_mean.shape, generator=generator, dtype=torch.float64)
    x = torch.exp(log_mean + noise_scale * noise).to(theta.dtype)
    return unflatten_batch(x, batch_shape)


def log_likelihood(theta: Tensor, x: Tensor) -> Tensor:
    r"""Exact log-likelihood :math:`\sum_j \log \mathrm{LogNormal}(x_j;\,
    \log \mathrm{clamp}(u_j), 0.1)`.

    Args:
        theta: parameters (alpha, beta, gamma, delta), shape (*, 4); positive.
        x: data, shape (*, 20); the batch shapes must broadcast: a single row of ``theta``
            or ``x`` is paired with every row of the other.

    Returns:
        Log-likelihoods of the broadcast batch shape ((N,) for (N, ...) inputs), in the dtype of
        ``theta``. Non-positive data have likelihood 0 (``-inf``), and so do parameters whose
        ODE solve fails.

    Raises:
        ValueError: on wrong shapes, NaN entries or non-positive parameters.
    """
    owner = "lotka_volterra.log_likelihood"
    theta, theta_shape = positive_parameters(theta, parameter_labels, owner=owner)
    x, x_shape = flatten_batch(x, x_dim, name="x", owner=owner, dtype=torch.float64)
    batch_shape = broadcast_rows(
        theta_shape, x_shape, (theta_dim, x_dim), names=("theta", "x"), owner=owner
    )
    # Solve once per row of theta, then pair the rows by broadcasting.
    log_mean = unflatten_batch(_log_mean(theta), theta_shape)
    x = unflatten_batch(x, x_shape)
    log_x = torch.where(x > 0, x, 1.0).log()
    z = (log_x - log_mean) / noise_scale
    log_pdf = -0.5 * z.square() - math.log(noise_scale * math.sqrt(2 * math.pi)) - log_x
    log_pdf = torch.where(x > 0, log_pdf, -math.inf)
    out = log_pdf.sum(dim=-1)
    out = torch.where(out.isnan(), -math.inf, out).to(theta.dtype)
    return out.expand(batch_shape).contiguous()


spec = SimulatorSpec(
    name="lotka_volterra",
    theta_dim=theta_dim,
    x_dim=x_dim,
    parameter_labels=parameter_labels,
    prior=prior,
    simulate=simulate,
    log_likelihood=log_likelihood,
    sample_posterior=None,
)
