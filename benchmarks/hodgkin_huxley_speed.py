"""Speed of the batched Hodgkin-Huxley simulator against a one-neuron-at-a-time loop.

The reference :func:`simulate_loop` integrates the same equations the way the ``sbi``
library's Hodgkin-Huxley tutorial does: numpy, one neuron at a time, a Python loop over the
12,000 time steps with scalar rate functions. :mod:`sbi_course.simulators.hodgkin_huxley`
loops over time too, but each step updates a whole batch of neurons with a few dozen tensor
operations. Both get the same pre-drawn noise, so their traces must agree.

Run from the repository root::

    python benchmarks/hodgkin_huxley_speed.py [--loop-sims 10] [--batch-sizes 100 1000 2000 5000]

It prints a table and writes it to ``benchmarks/results/hodgkin_huxley_speed.md``.
The reference loop lives in :mod:`sbi_course.simulators._hh_reference`, where
``tests/test_hodgkin_huxley.py`` imports it to check the equality on a few neurons.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from sbi_course.simulators import hodgkin_huxley as hh
from sbi_course.simulators._hh_reference import loop_traces, simulate_loop  # noqa: F401

RESULTS = Path(__file__).parent / "results" / "hodgkin_huxley_speed.md"


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
