"""Simulator throughput: simulations per CPU second, batched against one-at-a-time loops.

Every simulator of :mod:`sbi_course.simulators` maps a batch of parameters to a batch of data
in one call. This module times each on a batch drawn from its prior, and times three of them
against the way they are often written, one simulation at a time:

* Hodgkin-Huxley: the numpy loop of ``benchmarks/hodgkin_huxley_speed.py`` (one neuron, one
  time step at a time; each rate evaluated once per step), which gives the same traces;
* Lotka-Volterra and SIR: ``scipy.integrate.solve_ivp`` per simulation, with the same method
  (Dormand-Prince 5(4), ``"RK45"``) and tolerances as the batched solver, then the same
  observation noise.

The loops are checked against the batched noise-free solutions (largest relative difference
reported), so both compute the same thing. Speeds use CPU time of this process with one
thread, which other jobs on a shared machine barely move.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.integrate import solve_ivp

from benchmarks.algorithms import Timer
from sbi_course import tasks
from sbi_course.simulators import hodgkin_huxley, lotka_volterra, sir

__all__ = ["BATCH_SIZES", "LOOP_SIZES", "lotka_volterra_loop", "sir_loop", "measure_throughput"]

#: Simulations per batched call, chosen so each takes a few seconds at most.
BATCH_SIZES: dict[str, int] = {
    "two_moons": 100_000,
    "gaussian_linear": 100_000,
    "gaussian_mixture": 100_000,
    "slcp": 100_000,
    "bernoulli_glm": 10_000,
    "sir": 10_000,
    "lotka_volterra": 10_000,
    "hodgkin_huxley": 1_000,
    "gravitational_wave": 10_000,
}
#: Fast simulators are called repeatedly until they used this much CPU time.
MIN_CPU_SECONDS = 0.5
#: Simulations for the one-at-a-time loops.
LOOP_SIZES: dict[str, int] = {"sir": 200, "lotka_volterra": 200, "hodgkin_huxley": 5}


def lotka_volterra_loop(theta: torch.Tensor, generator: torch.Generator | None = None):
    """Lotka-Volterra one simulation at a time with ``scipy.integrate.solve_ivp``.

    Returns ``(x, u)``: data (N, 20) as :func:`sbi_course.simulators.lotka_volterra.simulate`
    and the noise-free populations at the observed times (N, 10, 2).
    """
    t_eval = lotka_volterra.observation_times.numpy()
    u0 = np.array(lotka_volterra.initial_state)
    solutions = []
    for alpha, beta, gamma, delta in theta.double().tolist():

        def rhs(t, u, a=alpha, b=beta, c=gamma, d=delta):
            return [a * u[0] - b * u[0] * u[1], -c * u[1] + d * u[0] * u[1]]

        sol = solve_ivp(rhs, (0.0, 20.0), u0, method="RK45", t_eval=t_eval, rtol=1e-7, atol=1e-20)
        solutions.append(sol.y.T if sol.success else np.full((len(t_eval), 2), np.nan))
    u = torch.from_numpy(np.stack(solutions))
    log_mean = u.clamp(1e-10, 1e4).log().transpose(1, 2).reshape(-1, 20)
    noise = torch.randn(log_mean.shape, generator=generator, dtype=torch.float64)
    return torch.exp(log_mean + lotka_volterra.noise_scale * noise), u


def sir_loop(theta: torch.Tensor, generator: torch.Generator | None = None):
    """SIR one simulation at a time with ``scipy.integrate.solve_ivp``.

    Returns ``(x, infected)``: data (N, 10) as :func:`sbi_course.simulators.sir.simulate` and
    the noise-free infected fraction on the observed days (N, 10).
    """
    t_eval = sir.observation_times.numpy()
    n = sir.population
    fractions = []
    for beta, gamma in theta.double().tolist():

        def rhs(t, y, b=beta, g=gamma):
            infections, recoveries = b * y[0] * y[1] / n, g * y[1]
            return [-infections, infections - recoveries, recoveries]

        sol = solve_ivp(
            rhs,
            (0.0, 160.0),
            sir.initial_state,
            method="RK45",
            t_eval=t_eval,
            rtol=1e-7,
            atol=1e-12,
        )
        fractions.append(sol.y[1] / n if sol.success else np.full(len(t_eval), np.nan))
    infected = torch.from_numpy(np.stack(fractions)).clamp(0.0, 1.0)
    trials = torch.full_like(infected, float(sir.num_tested))
    return torch.binomial(trials, infected.nan_to_num(0.0), generator=generator), infected


def _row(
    simulator: str, implementation: str, count: int, batch: int, timer: Timer, check: str = ""
) -> dict:
    return {
        "simulator": simulator,
        "implementation": implementation,
        "batch_size": batch,
        "num_simulations": count,
        "cpu_s": round(timer.cpu, 4),
        "wall_s": round(timer.wall, 4),
        "simulations_per_cpu_s": round(count / max(timer.cpu, 1e-9), 2),
        "speedup_vs_loop": "",
        "check": check,
    }


def _relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    ok = torch.isfinite(a) & torch.isfinite(b)
    scale = a.abs().clamp_min(1e-6)
    return float(((a - b).abs() / scale)[ok].max())


def measure_throughput(scale: float = 1.0, seed: int = 0, log=print) -> list[dict]:
    """Time every batched simulator and the three loop baselines.

    Args:
        scale: multiply every batch and loop size by this (e.g. 0.01 for a smoke test); a
            fast simulator's call is repeated until it has used ``MIN_CPU_SECONDS``.
        seed: seed of the parameter draws and the noise.
        log: where progress lines go.

    Returns:
        One dict per measurement (see :func:`_row` for the keys), the loop rows after the
        batched row of the same simulator.
    """
    rows = []
    for name in tasks.names():
        task = tasks.get(name)
        g = torch.Generator().manual_seed(seed)
        count = max(2, int(BATCH_SIZES[name] * scale))
        theta = task.prior.sample((count,), generator=g)
        task.simulate(theta[:2], generator=g)  # warm-up (imports, first-call overheads)
        # Fast simulators finish in milliseconds: repeat the call until the time is measurable.
        calls = 0
        with Timer() as timer:
            start = time.process_time()
            while calls == 0 or time.process_time() - start < MIN_CPU_SECONDS * min(scale, 1):
                task.simulate(theta, generator=g)
                calls += 1
        rows.append(_row(name, "batched (torch)", count * calls, count, timer))
        log(f"throughput {name}: {rows[-1]['simulations_per_cpu_s']:.0f} simulations / CPU s")

        if name not in LOOP_SIZES:
            continue
        loop_count = max(2, int(LOOP_SIZES[name] * scale))
        theta = theta[:loop_count].double()
        if name == "hodgkin_huxley":
            from benchmarks.hodgkin_huxley_speed import loop_traces

            steps = round(hodgkin_huxley.DURATION / hodgkin_huxley.DT)
            noise = torch.randn(loop_count, steps, generator=g, dtype=torch.float64)
            with Timer() as timer:
                looped = loop_traces(theta, noise)
            batched = hodgkin_huxley.voltage_traces(theta, noise=noise)
            diff = float((looped - batched).abs().max())
            check = f"max voltage difference {diff:.1e} mV"
            label = "loop (numpy, one neuron and time step at a time)"
        else:
            loop = lotka_volterra_loop if name == "lotka_volterra" else sir_loop
            with Timer() as timer:
                _, looped = loop(theta, generator=g)
            if name == "lotka_volterra":
                batched = lotka_volterra.solve(theta)[:, ::21]  # (N, 10, 2) at the observed times
            else:
                batched = sir.solve(theta)[:, ::17, 1] / sir.population
            difference = _relative_difference(batched, looped)
            check = f"max relative difference of the ODE solutions {difference:.1e}"
            label = "loop (scipy solve_ivp RK45, one simulation at a time)"
        rows.append(_row(name, label, loop_count, 1, timer, check))
        speedup = rows[-2]["simulations_per_cpu_s"] / max(rows[-1]["simulations_per_cpu_s"], 1e-9)
        rows[-2]["speedup_vs_loop"] = round(speedup, 1)
        log(f"throughput {name} loop: {rows[-1]['simulations_per_cpu_s']:.1f} simulations / CPU s")
    return rows
