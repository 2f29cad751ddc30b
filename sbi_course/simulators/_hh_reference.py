"""A plain numpy reference for the Hodgkin-Huxley simulator: one neuron, one step at a time.

:func:`simulate_loop` integrates the equations of :mod:`sbi_course.simulators.hodgkin_huxley`
the way the ``sbi`` library's Hodgkin-Huxley tutorial does: numpy, one neuron at a time, a
Python loop over the time steps with scalar rate functions. The batched simulator must give the
same traces for the same pre-drawn noise; ``tests/test_hodgkin_huxley.py`` checks that, and
``benchmarks/hodgkin_huxley_speed.py`` times the two against each other. It is not part of the
public API (slow by design).
"""

from __future__ import annotations

import numpy as np
import torch

from sbi_course.simulators import hodgkin_huxley as hh

__all__ = ["simulate_loop", "loop_traces"]


def simulate_loop(
    params: dict[str, float],
    current: np.ndarray,
    noise: np.ndarray,
    dt: float = hh.DT,
    v_initial: float = hh.V_INITIAL,
    tutorial_style: bool = False,
) -> np.ndarray:
    """One neuron, one time step at a time, written as plainly as possible.

    Args:
        params: all eight parameters by name (see ``hh.FIXED_VALUES``).
        current: injected current density in uA/cm^2, shape (T,).
        noise: standard normal draws, shape (T - 1,); entry i drives step i -> i + 1.
        dt: time step in ms.
        v_initial: voltage at t = 0 in mV.
        tutorial_style: update each gate as the ``sbi`` tutorial writes it,
            ``x_inf(V) + (x - x_inf(V)) exp(-dt / tau_x(V))`` with functions ``x_inf`` and
            ``tau_x`` that each evaluate the rates again (four times the rate evaluations);
            by default each rate is evaluated once per step.

    Returns:
        The voltage trace in mV, shape (T,).
    """
    g_na, g_k = params["gbar_Na"], params["gbar_K"]
    g_leak, g_m = params["gbar_leak"], params["gbar_M"]
    tau_max, v_t = params["tau_max"], params["V_T"]
    sigma, e_leak = params["noise_factor"], params["E_leak"]

    def efun(z):
        # z / (exp(z) - 1), with its limit near z = 0
        return 1.0 - z / 2.0 if abs(z) < 1e-4 else z / (np.exp(z) - 1.0)

    def alpha_m(v):
        return 0.32 * efun(-0.25 * (v - v_t - 13.0)) / 0.25

    def beta_m(v):
        return 0.28 * efun(0.2 * (v - v_t - 40.0)) / 0.2

    def alpha_h(v):
        return 0.128 * np.exp(-(v - v_t - 17.0) / 18.0)

    def beta_h(v):
        return 4.0 / (1.0 + np.exp(-0.2 * (v - v_t - 40.0)))

    def alpha_n(v):
        return 0.032 * efun(-0.2 * (v - v_t - 15.0)) / 0.2

    def beta_n(v):
        return 0.5 * np.exp(-(v - v_t - 10.0) / 40.0)

    def p_inf(v):
        return 1.0 / (1.0 + np.exp(-0.1 * (v + 35.0)))

    def tau_p(v):
        return tau_max / (3.3 * np.exp(0.05 * (v + 35.0)) + np.exp(-0.05 * (v + 35.0)))

    def relax(x, alpha, beta):
        # exact step of dx/dt = alpha (1 - x) - beta x with the rates held fixed
        x_inf, tau = alpha / (alpha + beta), 1.0 / (alpha + beta)
        return x_inf + (x - x_inf) * np.exp(-dt / tau)

    def relax_recomputing(x, alpha, beta, v):
        def x_inf(u):
            return alpha(u) / (alpha(u) + beta(u))

        def tau(u):
            return 1.0 / (alpha(u) + beta(u))

        return x_inf(v) + (x - x_inf(v)) * np.exp(-dt / tau(v))

    v = np.zeros(len(current))
    v[0] = v_initial
    m = alpha_m(v[0]) / (alpha_m(v[0]) + beta_m(v[0]))
    h = alpha_h(v[0]) / (alpha_h(v[0]) + beta_h(v[0]))
    n = alpha_n(v[0]) / (alpha_n(v[0]) + beta_n(v[0]))
    p = p_inf(v[0])
    for i in range(1, len(current)):
        g_total = g_na * m**3 * h + g_k * n**4 + g_leak + g_m * p
        v_inf = (
            g_na * m**3 * h * hh.E_NA
            + g_k * n**4 * hh.E_K
            + g_leak * e_leak
            + g_m * p * hh.E_K
            + current[i - 1]
            + sigma * noise[i - 1] / dt**0.5
        ) / g_total
        tau_v = hh.CAPACITANCE / g_total
        v[i] = v_inf + (v[i - 1] - v_inf) * np.exp(-dt / tau_v)
        if tutorial_style:
            m = relax_recomputing(m, alpha_m, beta_m, v[i])
            h = relax_recomputing(h, alpha_h, beta_h, v[i])
            n = relax_recomputing(n, alpha_n, beta_n, v[i])
        else:
            m = relax(m, alpha_m(v[i]), beta_m(v[i]))
            h = relax(h, alpha_h(v[i]), beta_h(v[i]))
            n = relax(n, alpha_n(v[i]), beta_n(v[i]))
        p = p_inf(v[i]) + (p - p_inf(v[i])) * np.exp(-dt / tau_p(v[i]))
    return v


def loop_traces(theta: torch.Tensor, noise: torch.Tensor, **kwargs) -> torch.Tensor:
    """:func:`simulate_loop` for each row of ``theta`` (gbar_Na, gbar_K), shape (N, T)."""
    current = hh.step_current().numpy()
    rows = []
    for theta_row, noise_row in zip(theta.tolist(), noise.numpy(), strict=True):
        params = dict(hh.FIXED_VALUES, gbar_Na=theta_row[0], gbar_K=theta_row[1])
        rows.append(simulate_loop(params, current, noise_row, **kwargs))
    return torch.from_numpy(np.stack(rows))
