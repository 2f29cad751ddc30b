"""Speed of the batched Hodgkin-Huxley simulator against a one-neuron-at-a-time loop.

The reference :func:`simulate_loop` integrates the same equations the way the ``sbi``
library's Hodgkin-Huxley tutorial does: numpy, one neuron at a time, a Python loop over the
12,000 time steps with scalar rate functions. :mod:`sbi_course.simulators.hodgkin_huxley`
loops over time too, but each step updates a whole batch of neurons with a few dozen tensor
operations. Both get the same pre-drawn noise, so their traces must agree.

Run from the repository root::

    python benchmarks/hodgkin_huxley_speed.py [--loop-sims 10] [--batch-sizes 100 1000 2000 5000]

It prints a table and writes it to ``benchmarks/results/hodgkin_huxley_speed.md``.
``tests/test_hodgkin_huxley.py`` imports :func:`simulate_loop` to check the equality on a few
neurons.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from sbi_course.simulators import hodgkin_huxley as hh

RESULTS = Path(__file__).parent / "results" / "hodgkin_huxley_speed.md"


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


def _timed(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, the CPU seconds and the wall-clock seconds it took.

    The speeds use CPU time (one thread), which other jobs on a shared machine barely move;
    on an idle machine the two agree.
    """
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loop-sims", type=int, default=10, help="neurons for the loop")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 1000, 2000, 5000])
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    generator = torch.Generator().manual_seed(args.seed)
    num_steps = round(hh.DURATION / hh.DT)
    prior = hh.prior()

    # Same parameters and noise for both: the traces must agree to rounding.
    theta = prior.sample((args.loop_sims,), generator=generator).double()
    noise = torch.randn(args.loop_sims, num_steps, generator=generator, dtype=torch.float64)
    tutorial, tutorial_seconds, tutorial_wall = _timed(
        loop_traces, theta, noise, tutorial_style=True
    )
    reference, loop_seconds, loop_wall = _timed(loop_traces, theta, noise)
    batched = hh.voltage_traces(theta, noise=noise)
    max_diff = max(
        (batched - reference).abs().max().item(), (tutorial - reference).abs().max().item()
    )
    assert max_diff < 1e-6, max_diff
    stats_equal = torch.allclose(
        hh.summary_statistics(batched), hh.summary_statistics(reference), rtol=1e-6, atol=1e-6
    )
    assert stats_equal
    loop_rate = args.loop_sims / loop_seconds
    tutorial_rate = args.loop_sims / tutorial_seconds

    rows = [
        ("loop, tutorial's structure", args.loop_sims, tutorial_seconds, tutorial_wall),
        ("loop, each rate once per step", args.loop_sims, loop_seconds, loop_wall),
    ]
    for batch in args.batch_sizes:
        theta = prior.sample((batch,), generator=generator)
        _, seconds, wall = _timed(hh.simulate, theta, generator, batch_size=batch)
        rows.append((f"batched (torch, {batch} at once)", batch, seconds, wall))

    lines = [
        "# Hodgkin-Huxley simulator: batched vs loop",
        "",
        f"120 ms at dt = {hh.DT} ms ({num_steps} steps), float64, {args.threads} torch thread(s), "
        "noise draws and summary statistics included for the batched runs only, "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}.",
        f"Largest voltage difference between the loops and the batched simulator on "
        f"{args.loop_sims} neurons with the same noise: {max_diff:.1e} mV. The loops are numpy, "
        "one neuron at a time; the tutorial's structure evaluates each rate four times a step.",
        "Speed-ups are in CPU time (robust to other jobs on a shared machine).",
        "",
        "| simulator | simulations | CPU s | wall s | simulations / CPU s | speed-up vs "
        "loop | vs tutorial's loop |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, count, seconds, wall in rows:
        rate = count / seconds
        lines.append(
            f"| {name} | {count} | {seconds:.2f} | {wall:.2f} | {rate:.1f} | "
            f"{rate / loop_rate:.1f}x | {rate / tutorial_rate:.1f}x |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
