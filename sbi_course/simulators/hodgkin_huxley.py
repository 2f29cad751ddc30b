r"""Hodgkin-Huxley neuron driven by a step current: the classic SBI example.

A single-compartment neuron in the style of Pospischil et al. (2008), as in the ``sbi``
library's Hodgkin-Huxley tutorial: a fast sodium current (:math:`m^3 h`), a delayed-rectifier
potassium current (:math:`n^4`), a leak and a slow, non-inactivating M-type potassium current
(:math:`p`), with intrinsic noise on the membrane current,

.. math::

    C \frac{dV}{dt} = \bar g_{Na} m^3 h (E_{Na} - V) + \bar g_K n^4 (E_K - V)
        + g_{leak} (E_{leak} - V) + \bar g_M p (E_K - V) + I(t) + \sigma \xi(t).

The gates follow :math:`dx/dt = \alpha_x(V)(1 - x) - \beta_x(V) x` (Traub-Miles rates shifted by
the threshold :math:`V_T`) and :math:`dp/dt = (p_\infty(V) - p) / \tau_p(V)`. Each step of
``dt = 0.01`` ms is an exponential-Euler step: with the gates frozen, :math:`V` relaxes
exactly towards its instantaneous steady state, then each gate relaxes exactly towards its
steady state at the new voltage. The noise :math:`\sigma \xi` adds
``noise_factor * N(0, 1) / sqrt(dt)`` (uA/cm^2) to the current at every step.

The neuron (a cylinder 70 um long and 70 um across, area :math:`\pi (70\,\mu m)^2`) gets
0.5 nA from 10 ms to 110 ms of a 120 ms run. The data are seven summary statistics of the
voltage trace: spike count, resting potential mean and standard deviation, and the mean,
variance, skewness and kurtosis of the voltage during the stimulus.

Shapes: ``theta`` (N, D) -> traces (N, T) with T = 12001 -> ``x`` (N, 7). By default D = 2,
``theta = (gbar_Na, gbar_K)`` in mS/cm^2; any of :data:`PARAMETER_NAMES` can be inferred by
passing ``parameters=(...)``, the others keep their :data:`FIXED_VALUES`. Voltages are in mV,
times in ms, currents in uA/cm^2, conductances in mS/cm^2.

The module holds the model (parameters, prior, the integration); the stimulus protocol is in
:mod:`sbi_course.simulators._hh_protocol` and the summary statistics in
:mod:`sbi_course.simulators._hh_statistics`; every name is re-exported here.

The time loop is in Python, but each step updates all N neurons at once with a few dozen
tensor operations, so a batch of 1,000 neurons costs only about twice as much as a single one
(see :mod:`sbi_course.simulators._hh_reference` and ``benchmarks/hodgkin_huxley_speed.py``).

References:
    Hodgkin, A. L. and Huxley, A. F. (1952). A quantitative description of membrane current
    and its application to conduction and excitation in nerve. J. Physiol. 117(4).

    Pospischil, M. et al. (2008). Minimal Hodgkin-Huxley type models for different classes of
    cortical and thalamic neurons. Biol. Cybern. 99.

    Goncalves, P. J. et al. (2020). Training deep neural density estimators to identify
    mechanistic models of neural dynamics. eLife 9:e56261.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Distribution

from sbi_course._validation import (
    check_count,
    check_generator,
    check_memory,
    check_positive,
    flatten_batch,
    unflatten_batch,
)
from sbi_course.priors import BoxUniform
from sbi_course.simulators._hh_protocol import (
    DT,
    DURATION,
    SOMA_AREA,
    T_OFF,
    T_ON,
    _num_steps,
    step_current,
    time_grid,
)
from sbi_course.simulators._hh_statistics import (
    SPIKE_THRESHOLD,
    summary_labels,
    summary_statistics,
)
from sbi_course.simulators._spec import SimulatorSpec

__all__ = [
    "theta_dim",
    "x_dim",
    "parameter_labels",
    "summary_labels",
    "PARAMETER_NAMES",
    "FIXED_VALUES",
    "PRIOR_BOUNDS",
    "prior",
    "reference_parameters",
    "time_grid",
    "step_current",
    "voltage_traces",
    "summary_statistics",
    "simulate",
    "spec",
    "DT",
    "DURATION",
    "T_ON",
    "T_OFF",
    "SOMA_AREA",
    "SPIKE_THRESHOLD",
    "V_INITIAL",
    "CAPACITANCE",
    "E_NA",
    "E_K",
]

# The membrane (mV, uF/cm^2); the protocol (DT, DURATION, T_ON, T_OFF, SOMA_AREA) is in
# _hh_protocol, the summary statistics in _hh_statistics.
V_INITIAL = -70.0
CAPACITANCE = 1.0
E_NA, E_K = 53.0, -107.0

PARAMETER_NAMES = (
    "gbar_Na",  # mS/cm^2, sodium
    "gbar_K",  # mS/cm^2, delayed-rectifier potassium
    "gbar_leak",  # mS/cm^2, leak
    "gbar_M",  # mS/cm^2, slow M-type potassium
    "tau_max",  # ms, largest time constant of the M-current gate
    "V_T",  # mV, shifts the spike threshold of the Na and K rates
    "noise_factor",  # uA/cm^2 * sqrt(ms), intrinsic current noise
    "E_leak",  # mV, leak reversal potential
)
# Values of the tutorial; gbar_Na and gbar_K are those of its observed trace.
FIXED_VALUES = {
    "gbar_Na": 50.0,
    "gbar_K": 5.0,
    "gbar_leak": 0.1,
    "gbar_M": 0.07,
    "tau_max": 600.0,
    "V_T": -60.0,
    "noise_factor": 0.1,
    "E_leak": -70.0,
}
# gbar_Na and gbar_K as in the tutorial; the other ranges are the course's wide boxes
# around the fixed values.
PRIOR_BOUNDS = {
    "gbar_Na": (0.5, 80.0),
    "gbar_K": (1e-4, 15.0),
    "gbar_leak": (1e-4, 0.6),
    "gbar_M": (1e-4, 0.6),
    "tau_max": (50.0, 3000.0),
    "V_T": (-90.0, -40.0),
    "noise_factor": (1e-4, 0.15),
    "E_leak": (-100.0, -35.0),
}
_SIGNED = ("V_T", "E_leak")  # potentials may be negative; everything else must be > 0

DEFAULT_PARAMETERS = ("gbar_Na", "gbar_K")
theta_dim: int = len(DEFAULT_PARAMETERS)
x_dim: int = 7
parameter_labels: tuple[str, ...] = DEFAULT_PARAMETERS


def _check_parameters(parameters: Sequence[str]) -> tuple[str, ...]:
    parameters = (parameters,) if isinstance(parameters, str) else tuple(parameters)
    unknown = [p for p in parameters if p not in PARAMETER_NAMES]
    if not parameters or unknown or len(set(parameters)) != len(parameters):
        raise ValueError(
            f"parameters for hodgkin_huxley must be distinct names among {PARAMETER_NAMES}, "
            f"got {parameters}"
        )
    return parameters


def prior(parameters: Sequence[str] = DEFAULT_PARAMETERS) -> Distribution:
    """Uniform prior over the chosen parameters (:data:`PRIOR_BOUNDS`).

    Args:
        parameters: names of the inferred parameters, in the order of ``theta``'s columns.

    Returns:
        A ``BoxUniform`` with event shape (D,); by default gbar_Na in [0.5, 80] and gbar_K in
        [1e-4, 15] mS/cm^2, as in the ``sbi`` tutorial.
    """
    parameters = _check_parameters(parameters)
    low = torch.tensor([PRIOR_BOUNDS[p][0] for p in parameters])
    high = torch.tensor([PRIOR_BOUNDS[p][1] for p in parameters])
    return BoxUniform(low, high)


def reference_parameters(parameters: Sequence[str] = DEFAULT_PARAMETERS) -> Tensor:
    """The tutorial's values of the chosen parameters, shape (D,): its "observed" neuron."""
    parameters = _check_parameters(parameters)
    return torch.tensor([FIXED_VALUES[p] for p in parameters])


# The Traub-Miles rates (1/ms) of the gates m, n, h as functions of u = V - V_T (mV), with
# efun(z) = z / (exp(z) - 1):
#   alpha_m = 0.32 (u - 13) / (1 - exp(-(u - 13) / 4))   = 1.28 efun(-(u - 13) / 4)
#   alpha_n = 0.032 (u - 15) / (1 - exp(-(u - 15) / 5))  = 0.16 efun(-(u - 15) / 5)
#   beta_m  = 0.28 (u - 40) / (exp((u - 40) / 5) - 1)    = 1.4 efun((u - 40) / 5)
#   alpha_h = 0.128 exp(-(u - 17) / 18)
#   beta_n  = 0.5 exp(-(u - 10) / 40)
#   beta_h  = 4 / (1 + exp(-(u - 40) / 5))
# Rates of the same form are evaluated together, one row each, so that a time step costs a
# few dozen tensor operations however many neurons it updates.
# rows alpha_m, alpha_n, beta_m, as scale * efun(slope * u + shift)
_EFUN_ROWS = ((-0.25, 3.25, 1.28), (-0.2, 3.0, 0.16), (0.2, -8.0, 1.4))
# rows alpha_h, beta_n and the exponential of beta_h, as scale * exp(slope * u + shift)
_EXP_ROWS = ((-1 / 18, 17 / 18, 0.128), (-1 / 40, 0.25, 0.5), (-0.2, 8.0, 1.0))


def _rate_table(dtype: torch.dtype, device: torch.device) -> dict[str, Tensor]:
    """The rows above as (3, 1) tensors, made once per call rather than once per step."""
    table = {}
    for kind, rows in (("efun", _EFUN_ROWS), ("exp", _EXP_ROWS)):
        columns = torch.tensor(rows, dtype=dtype, device=device).T[:, :, None]
        table[f"{kind}_slope"], table[f"{kind}_shift"], table[f"{kind}_scale"] = columns
    return table


def _gate_rates(u: Tensor, table: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Opening and closing rates (1/ms) of the gates (m, n, h), each of shape (3, N).

    Args:
        u: voltage above the threshold parameter, V - V_T in mV, shape (N,).
        table: the constants from :func:`_rate_table`.
    """
    # In-place updates (the trailing underscores) save allocating new tensors at every step.
    z = torch.addcmul(table["efun_shift"], table["efun_slope"], u)
    # z / expm1(z) is exact for small z too; only z == 0 exactly gives 0/0, whose limit is 1.
    efun_rates = z.div_(torch.expm1(z)).nan_to_num_(nan=1.0).mul_(table["efun_scale"])
    exps = torch.addcmul(table["exp_shift"], table["exp_slope"], u).exp_().mul_(table["exp_scale"])
    alpha = torch.cat((efun_rates[:2], exps[:1]))  # alpha_m, alpha_n, alpha_h
    beta = torch.cat((efun_rates[2:], exps[1:2], 4.0 / (1.0 + exps[2:])))  # beta_m, beta_n, beta_h
    return alpha, beta


def _m_current_gate(v: Tensor, tau_max: Tensor) -> tuple[Tensor, Tensor]:
    r"""Steady state and rate :math:`1 / \tau_p` (1/ms) of the M-current gate p.

    :math:`p_\infty = 1 / (1 + e^{-(V + 35) / 10})` and
    :math:`\tau_p = \tau_{max} / (3.3 e^{(V + 35) / 20} + e^{-(V + 35) / 20})`.
    """
    e = torch.exp(-0.05 * (v + 35.0))  # one exponential serves all three terms
    p_inf = (e * e).add_(1.0).reciprocal_()
    rate = (3.3 / e).add_(e).div_(tau_max)
    return p_inf, rate


def _relax(x: Tensor, x_inf: Tensor, rate: Tensor, dt: float) -> Tensor:
    """Exact step of dx/dt = rate (x_inf - x) with x_inf and rate held fixed.

    ``x_inf + (x - x_inf) exp(-rate dt)`` is a linear interpolation between ``x_inf`` and
    ``x``, which ``torch.lerp`` does in one operation.
    """
    return torch.lerp(x_inf, x, (-dt * rate).exp_())


def _full_parameters(theta: Tensor, parameters: tuple[str, ...]) -> dict[str, Tensor]:
    """All eight parameters as (N,) tensors: inferred ones from ``theta``, the rest fixed."""
    values = {name: torch.full_like(theta[:, 0], value) for name, value in FIXED_VALUES.items()}
    for j, name in enumerate(parameters):
        values[name] = theta[:, j]
    return values


def voltage_traces(
    theta: Tensor,
    generator: torch.Generator | None = None,
    noise: Tensor | None = None,
    *,
    parameters: Sequence[str] = DEFAULT_PARAMETERS,
    current: Tensor | None = None,
    dt: float = DT,
    duration: float = DURATION,
    v_initial: float = V_INITIAL,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Membrane voltage of N neurons, all integrated together by exponential Euler.

    Args:
        theta: parameters, shape (N, D) or (D,), columns named by ``parameters``.
        generator: random number generator for the intrinsic noise.
        noise: pre-drawn standard normal noise, shape (N, T - 1) or (T - 1,) (the same for
            every neuron); replaces the draws from ``generator``. Entry ``i`` drives the step
            from sample ``i`` to ``i + 1``. (``generator`` draws float32 noise of shape
            (T - 1, N) and uses its transpose.)
        parameters: names of the columns of ``theta`` (see :data:`PARAMETER_NAMES`).
        current: injected current density in uA/cm^2, shape (T,) or (N, T); defaults to
            :func:`step_current`.
        dt: time step in ms.
        duration: length of the run in ms.
        v_initial: voltage at t = 0 in mV; the gates start at their steady state there.
        dtype: floating type of the integration. float32 is about 1.3 times faster for 1,000
            neurons but moves spike peaks by up to ~0.05 mV, so float64 is the default.

    Returns:
        Voltages in mV, shape (N, T) (or (T,) for unbatched ``theta``), in ``dtype``; rows
        that left the finite numbers are NaN.

    Raises:
        ValueError: on a wrong shape, non-finite or non-positive conductances, time
            constants or noise levels, or noise/current of the wrong shape.
    """
    parameters = _check_parameters(parameters)
    owner = "hodgkin_huxley.voltage_traces"
    theta, batch_shape = flatten_batch(theta, len(parameters), name="theta", owner=owner)
    check_generator(generator, owner)
    positive = [j for j, p in enumerate(parameters) if p not in _SIGNED]
    check_positive(theta[:, positive], "hodgkin_huxley", [parameters[j] for j in positive])
    theta = theta.to(dtype)
    num, device = theta.shape[0], theta.device
    num_steps = _num_steps(duration, dt, owner)
    # The trace, the external drive and the transposed copy are alive at the same time.
    check_memory(
        3 * num * (num_steps + 1) * torch.empty((), dtype=dtype).element_size(),
        what=f"{num} traces of {num_steps + 1} samples",
        owner=owner,
        argument="the number of neurons or duration / dt",
    )

    if current is None:
        current = step_current(duration=duration, dt=dt)
    current = torch.as_tensor(current, dtype=dtype, device=device)
    if current.shape not in ((num_steps + 1,), (num, num_steps + 1)):
        raise ValueError(
            f"current for hodgkin_huxley must have shape ({num_steps + 1},) or "
            f"({num}, {num_steps + 1}), got {tuple(current.shape)}"
        )

    par = _full_parameters(theta, parameters)
    g_na, g_k, g_leak, g_m = par["gbar_Na"], par["gbar_K"], par["gbar_leak"], par["gbar_M"]
    v_t, tau_max, e_leak = par["V_T"], par["tau_max"], par["E_leak"]

    # The external drive of every step at once, time-major, shape (T - 1, N), so that step i
    # reads the contiguous row external[i]: standard normal noise ...
    if noise is None:
        # float32 draws are four times faster than float64 ones, and precise enough for noise
        external = torch.randn(num_steps, num, generator=generator, device=device).to(dtype)
    else:
        noise = torch.as_tensor(noise)
        if noise.shape not in ((num_steps,), (num, num_steps)):
            raise ValueError(
                f"noise for hodgkin_huxley must have shape ({num_steps},) or "
                f"({num}, {num_steps}), got {tuple(noise.shape)}"
            )
        external = torch.empty(num_steps, num, dtype=dtype, device=device)
        external.copy_(noise.T if noise.ndim == 2 else noise[:, None])
    # ... scaled to white noise of intensity sigma (sigma N(0, 1) / sqrt(dt) per step), plus
    # the injected current and the constant part of the leak current.
    external.mul_(par["noise_factor"] / math.sqrt(dt))
    external.add_(current[:, :num_steps].T if current.ndim == 2 else current[:num_steps, None])
    external.add_(g_leak * e_leak)
    table = _rate_table(dtype, device)

    v = torch.full((num,), v_initial, dtype=dtype, device=device)
    alpha, beta = _gate_rates(v - v_t, table)
    gates = alpha / (alpha + beta)  # rows m, n, h start at their steady state
    p, _ = _m_current_gate(v, tau_max)
    # Time runs along the first axis while integrating, so each step writes a contiguous row.
    traces = torch.empty(num_steps + 1, num, dtype=dtype, device=device)
    traces[0] = v
    for i in range(num_steps):
        m, n, h = gates.unbind()
        # Voltage step: with the gates frozen, C dV/dt = g_total (V_inf - V), solved exactly.
        g_na_open = m.pow(3).mul_(h).mul_(g_na)
        g_k_open = n.pow(4).mul_(g_k).addcmul_(g_m, p)  # delayed rectifier and M-current: E_K
        g_total = (g_na_open + g_k_open).add_(g_leak)
        drive = torch.add(external[i], g_na_open, alpha=E_NA).add_(g_k_open, alpha=E_K)
        v_inf = drive.div_(g_total)
        v = _relax(v, v_inf, g_total.div_(CAPACITANCE), dt)
        # Gate steps at the new voltage, by the same exact relaxation.
        alpha, beta = _gate_rates(v - v_t, table)
        rate = alpha + beta
        gates = _relax(gates, alpha.div_(rate), rate, dt)
        p_inf, p_rate = _m_current_gate(v, tau_max)
        p = _relax(p, p_inf, p_rate, dt)
        traces[i + 1] = v

    del external  # free its memory before the copy below
    traces = traces.T.contiguous()  # neuron-major, as the summary statistics read it
    traces[~torch.isfinite(traces).all(dim=1)] = float("nan")
    return unflatten_batch(traces, batch_shape)


def simulate(
    theta: Tensor,
    generator: torch.Generator | None = None,
    *,
    parameters: Sequence[str] = DEFAULT_PARAMETERS,
    batch_size: int = 2000,
) -> Tensor:
    """Simulate neurons and return their seven summary statistics.

    Args:
        theta: parameters, shape (*, D); by default (gbar_Na, gbar_K) in mS/cm^2.
        generator: random number generator for the intrinsic noise.
        parameters: names of the columns of ``theta`` (see :data:`PARAMETER_NAMES`).
        batch_size: neurons integrated at once; bounds the memory (about 200 MB per 1,000)
            and does not change the result: every neuron draws its noise from its own
            generator, seeded from ``generator`` in the order of the rows.

    Returns:
        Summary statistics ``x``, shape (*, 7), in ``theta``'s floating dtype; see
        :func:`summary_statistics`. Failed simulations give NaN rows.
    """
    owner = "hodgkin_huxley.simulate"
    parameters = _check_parameters(parameters)
    theta, batch_shape = flatten_batch(theta, len(parameters), name="theta", owner=owner)
    check_generator(generator, owner)
    batch_size = check_count(batch_size, "batch_size", owner)
    seeds = torch.randint(0, 2**62, (theta.shape[0],), generator=generator).tolist()
    num_steps = round(DURATION / DT)
    chunks = []
    for start in range(0, theta.shape[0], batch_size):
        chunk = theta[start : start + batch_size]
        noise = torch.stack(
            [
                torch.randn(num_steps, generator=torch.Generator().manual_seed(seed))
                for seed in seeds[start : start + batch_size]
            ]
        )
        traces = voltage_traces(chunk, noise=noise, parameters=parameters)
        chunks.append(summary_statistics(traces))
    return unflatten_batch(torch.cat(chunks).to(theta.dtype), batch_shape)


spec = SimulatorSpec(
    name="hodgkin_huxley",
    theta_dim=theta_dim,
    x_dim=x_dim,
    parameter_labels=parameter_labels,
    prior=prior,
    simulate=simulate,
    log_likelihood=None,
    sample_posterior=None,
)
