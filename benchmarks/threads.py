"""NPE training time next to a competing CPU-bound process, before and after the thread policy.

The situation of issue 18: a 2-core machine shared with other CPU-bound work (a JupyterHub
whose users each get a quota of about one CPU). torch starts as many threads as the machine
has cores; each parallel operation then waits for threads the kernel has descheduled.
:mod:`sbi_course._threads` instead picks the threads from the CPUs the process may use.

Each configuration trains the same NPE (two moons, ``--num-simulations`` pairs, a neural
spline flow, a fixed number of epochs, so that every run does the same work) in a fresh
process while ``--competitors`` busy-loop processes run:

* **before**: torch's default, as many threads as cores (what torch does without the policy);
* **after**: the policy, for a process whose cgroup allows ``--quota`` CPUs. Creating a cgroup
  needs privileges, so the quota is *emulated*: the child replaces
  ``_threads.cgroup_cpu_limit`` by a function returning ``--quota`` and applies the policy,
  exactly the code path a real quota takes. (On a machine with systemd, a real quota:
  ``systemd-run --scope -p CPUQuota=100% python benchmarks/threads.py --configs policy``.)

Usage (from the repository root)::

    python benchmarks/threads.py                       # before and after, 1 competitor
    python benchmarks/threads.py --competitors 0       # the same on an idle machine

It prints a Markdown table and writes it to ``benchmarks/results/threads.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "threads.md"

_CHILD = r"""
import json, os, sys, time
config, quota, num, epochs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
import torch
from sbi_course import _threads, tasks
from sbi_course.inference import NPE
if config == "policy":
    _threads.cgroup_cpu_limit = lambda: quota  # what a cgroup with this quota reports
    _threads.apply_policy()
task = tasks.get("two_moons")
theta, x = task.sample_joint(num, generator=torch.Generator().manual_seed(0))
npe = NPE(task.prior)
wall, cpu = time.perf_counter(), time.process_time()
npe.train(theta, x, generator=torch.Generator().manual_seed(1), max_num_epochs=epochs,
          stop_after_epochs=10**6, show_progress=False)
print(json.dumps(dict(threads=torch.get_num_threads(), wall=time.perf_counter() - wall,
                      cpu=time.process_time() - cpu)))
"""

_BUSY = "while True: pass"

LABELS = {
    "default": "before: torch's default threads",
    "policy": "after: the policy",
}


def run(config: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "SBI_COURSE_NUM_THREADS"):
        env.pop(name, None)  # let torch (before) or the policy (after) decide
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            config,
            str(args.quota),
            str(args.num_simulations),
            str(args.epochs),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the training process failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    said = [line for line in done.stderr.splitlines() if "torch will use" in line]
    result["message"] = said[0] if said else ""
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--competitors", type=int, default=1)
    parser.add_argument("--quota", type=float, default=1.0, help="emulated cgroup quota, CPUs")
    parser.add_argument("--num-simulations", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--configs", nargs="+", default=["default", "policy"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    competitors = [
        subprocess.Popen([sys.executable, "-c", _BUSY], start_new_session=True)
        for _ in range(args.competitors)
    ]
    rows = []
    try:
        time.sleep(1.0 if competitors else 0.0)
        for _ in range(args.repeats):
            for config in args.configs:
                load = os.getloadavg()[0]
                result = run(config, args)
                result.update(config=config, load=f"{load:.1f} / {os.getloadavg()[0]:.1f}")
                rows.append(result)
                print(
                    f"{LABELS[config]:32s} {result['threads']} threads {result['wall']:7.1f} s "
                    f"wall {result['cpu']:7.1f} s CPU  load {result['load']}",
                    flush=True,
                )
    finally:
        for process in competitors:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    lines = [
        "# NPE training next to competing CPU-bound work: torch's threads before and after",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
        f"{args.competitors} competing busy-loop process(es), emulated cgroup quota "
        f"{args.quota:g} CPU for 'after'. NPE (neural spline flow) on two moons, "
        f"{args.num_simulations} simulations, {args.epochs} epochs. `load`: the 1-minute load "
        f"average before / after (other jobs on the machine count too). Command: "
        f"`python benchmarks/threads.py {' '.join(sys.argv[1:])}`.",
        "",
        "| configuration | torch threads | wall s | CPU s | load |",
        "|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {LABELS[r['config']]} | {r['threads']} | {r['wall']:.1f} | {r['cpu']:.1f} | "
            f"{r['load']} |"
        )
    messages = sorted({r["message"] for r in rows if r["message"]})
    if messages:
        lines += ["", "What the policy said: " + "; ".join(f"`{m}`" for m in messages)]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
