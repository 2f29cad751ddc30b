"""Wall-clock time of each lecture notebook, idle and next to a busy process.

The course's target (issue #15): every lecture runs top to bottom in at most 60 s on two idle
cores, and in at most 120 s while another process keeps one core busy (a shared JupyterHub,
a laptop compiling something). Each notebook is executed with ``nbclient`` in a fresh kernel,
with one torch thread (the lectures set it themselves) and the Agg backend. The "busy" run
starts a separate Python process that spins on one core for as long as the notebook runs.

Run from the repository root::

    python benchmarks/lecture_times.py [--only 05 real_data] [--no-busy]

It prints a table and writes it to ``benchmarks/results/lecture_times.md``, with the machine's
load average at the start, since on a shared machine the numbers say as much about the
neighbours as about the notebooks.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
LECTURES = ROOT / "lectures"
RESULTS = Path(__file__).parent / "results" / "lecture_times.md"
IDLE_TARGET_S, BUSY_TARGET_S = 60.0, 120.0

_SPIN = "import time\nend = time.time() + 3600\nwhile time.time() < end:\n    pass\n"


def run_notebook(path: Path, timeout_s: float = 900.0) -> float:
    """Execute ``path`` top to bottom in a fresh kernel; return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=int(timeout_s), kernel_name="python3")
    start = time.perf_counter()
    client.execute(cwd=str(ROOT))
    return time.perf_counter() - start


def time_with_busy_core(path: Path) -> float:
    """Seconds for ``path`` while another process spins on one core."""
    spinner = subprocess.Popen([sys.executable, "-c", _SPIN])
    try:
        return run_notebook(path)
    finally:
        spinner.kill()
        spinner.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="substrings of notebook names")
    parser.add_argument("--no-busy", action="store_true", help="skip the busy-core runs")
    args = parser.parse_args(argv)

    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    notebooks = sorted(LECTURES.glob("*.ipynb"))
    if args.only:
        notebooks = [p for p in notebooks if any(s in p.name for s in args.only)]
    load = os.getloadavg()
    rows = []
    for path in notebooks:
        idle = run_notebook(path)
        busy = None if args.no_busy else time_with_busy_core(path)
        rows.append((path.name, idle, busy))
        busy_text = "-" if busy is None else f"{busy:.1f}"
        print(f"{path.name:36s} idle {idle:7.1f} s   busy core {busy_text:>7s} s", flush=True)

    lines = [
        "# Lecture run times",
        "",
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        f"load average at the start: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} "
        "(a shared machine inflates every number below).",
        f"Targets: at most {IDLE_TARGET_S:.0f} s on two idle cores, at most "
        f"{BUSY_TARGET_S:.0f} s next to one busy process.",
        "",
        "| notebook | time (s) | next to a busy core (s) | within targets |",
        "| --- | ---: | ---: | --- |",
    ]
    for name, idle, busy in rows:
        ok = idle <= IDLE_TARGET_S and (busy is None or busy <= BUSY_TARGET_S)
        busy_text = "-" if busy is None else f"{busy:.1f}"
        lines.append(f"| {name} | {idle:.1f} | {busy_text} | {'yes' if ok else 'no'} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
