"""Simulations per second: a loop, one batched call, and :func:`sbi_course.simulate.simulate`.

For each task (default: Hodgkin-Huxley and SIR) it times

* **loop**: one simulation per call, ``task.simulate(theta[i:i+1])``, on a few parameters
  (``--loop-simulations``), the way a simulator written for one parameter vector runs;
* **batched**: one call on all N parameters, ``task.simulate(theta)``;
* **parallel, k workers**: ``simulate(task, theta, workers=k, chunk_size=...)`` on joblib's
  loky processes, for each k in ``--workers``. The workers are started by a small warm-up
  call first (joblib keeps its pool between calls, as in a notebook session).

and reports simulations per second (wall clock), the speed-up over one worker, the parallel
efficiency (speed-up / workers; the target is >= 0.8 at 2 workers for Hodgkin-Huxley at
10^4 simulations), and whether ``x`` is bit-identical to the one-worker result (it must be).
Everything runs with one torch thread per process. The load average before and after each
row is in the table: on a machine that other jobs keep busy, efficiency says little (two
workers compete with those jobs for the same cores), so rerun it on an idle machine::

    make bench-scale                                   # Hodgkin-Huxley and SIR, 10^4
    python benchmarks/scaling.py --tasks sir --num-simulations 2000 --workers 1 2 4

It prints a Markdown table and writes it to ``benchmarks/results/scaling.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # allow `python benchmarks/scaling.py` without installing
    sys.path.insert(0, str(REPO))

from sbi_course import available_cpus, tasks  # noqa: E402
from sbi_course.priors import sample_prior  # noqa: E402
from sbi_course.simulate import DEFAULT_CHUNK_SIZE, simulate  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "scaling.md"


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def measure(
    name: str, num: int, loop_num: int, workers: list[int], chunk_size: int, seed: int
) -> list[dict]:
    """The rows of the table for one task."""
    task = tasks.get(name)
    theta = sample_prior(task.prior, num, generator=torch.Generator().manual_seed(seed))
    rows = []

    def row(method: str, count: int, seconds: float, load_before: str, **extra) -> dict:
        entry = dict(
            task=name,
            method=method,
            simulations=count,
            seconds=seconds,
            rate=count / seconds,
            load=f"{load_before} / {_load()}",
            **extra,
        )
        rows.append(entry)
        print(
            f"{name:15s} {method:22s} {count:6d} sims {seconds:8.2f} s "
            f"{entry['rate']:9.1f} sims/s  load {entry['load']}",
            flush=True,
        )
        return entry

    g = torch.Generator().manual_seed(seed)
    load = _load()
    seconds, _ = _timed(
        lambda: [task.simulate(theta[i : i + 1], generator=g) for i in range(loop_num)]
    )
    row("loop (1 per call)", loop_num, seconds, load)
    load = _load()
    seconds, _ = _timed(lambda: task.simulate(theta, generator=g))
    row("batched (1 call)", num, seconds, load)

    reference = None
    one = None
    for k in workers:
        # start the pool (and import torch in it) before timing
        simulate(
            task, theta[: min(num, 2 * k)], generator=g, workers=k, chunk_size=1, progress=False
        )
        load = _load()
        seconds, out = _timed(
            lambda k=k: simulate(
                task,
                theta,
                generator=torch.Generator().manual_seed(seed),
                workers=k,
                chunk_size=chunk_size,
                progress=False,
            )
        )
        if reference is None:
            reference = out.x
        same = torch.equal(out.x.nan_to_num(-1e300), reference.nan_to_num(-1e300))
        entry = row(f"simulate, {k} worker{'s' if k > 1 else ''}", num, seconds, load, same=same)
        if k == 1:
            one = entry
        if one is not None:
            entry["speedup"] = entry["rate"] / one["rate"]
            entry["efficiency"] = entry["speedup"] / k
    return rows


def table(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Parallel simulation: simulations per second",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores "
        f"({available_cpus()} available to this process), torch {torch.__version__}, one torch "
        f"thread per process, chunks of {args.chunk_size}, joblib's loky processes. Wall-clock "
        f"times; `load` is the 1-minute load average before / after the row (on an idle "
        f"machine it stays below the number of workers). Command: "
        f"`python benchmarks/scaling.py {' '.join(sys.argv[1:])}`.",
        "",
        "| task | method | simulations | seconds | simulations / s | speed-up | efficiency "
        "| same x as 1 worker | load |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        speedup = f"{r['speedup']:.2f}x" if "speedup" in r else ""
        efficiency = f"{r['efficiency']:.2f}" if "efficiency" in r else ""
        same = {True: "yes", False: "**no**"}.get(r.get("same"), "")
        lines.append(
            f"| {r['task']} | {r['method']} | {r['simulations']} | {r['seconds']:.2f} | "
            f"{r['rate']:.1f} | {speedup} | {efficiency} | {same} | {r['load']} |"
        )
    busiest = max(float(r["load"].split(" / ")[0]) for r in rows)
    if busiest > (os.cpu_count() or 1):
        lines += [
            "",
            f"**The machine was busy** (load average up to {busiest:.1f} on {os.cpu_count()} "
            f"cores): the workers competed with other jobs, so these speed-ups and efficiencies "
            f"measure that contention, not `simulate`. Rerun on an idle machine "
            f"(`make bench-scale`) for the efficiency target.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["hodgkin_huxley", "sir"])
    parser.add_argument("--num-simulations", type=int, default=10_000)
    parser.add_argument("--loop-simulations", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name in args.tasks:
        rows += measure(
            name,
            args.num_simulations,
            args.loop_simulations,
            args.workers,
            args.chunk_size,
            args.seed,
        )
    text = table(rows, args)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
