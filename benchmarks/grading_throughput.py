"""Grading throughput: synthetic submissions of one assignment autograded with k workers.

    python -m benchmarks.grading_throughput --assignment 02_abc --count 300 --workers 1 2

builds a throw-away course (``tools.grading.GradingRun``), submits ``count`` students (a
rotation of the synthetic students: right, blank, one answer right, broken answers with endless
loops and exceptions, tampered tests), autogrades them with :func:`tools.grading.parallel.autograde`
at each k, and prints submissions per minute and the overhead of the sandbox (the same students
graded with ``sandbox="none"`` at k = 1, when ``--overhead``). Writes a JSON results file. The
target of issue #13 is 300 submissions of any assignment in under 30 minutes on 2 cores; the
extrapolation to n cores assumes the per-submission time stays as at k = 2 (kernels are
independent; the parent's gradebook writes are serial and cost ``parent`` seconds each).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tools.grading import GradingRun, synthetic_students

ROOT = Path(__file__).resolve().parents[1]


def _grade(assignment: str, count: int, workers: int, sandbox: str, timeout: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="sbi-grading-bench-") as tmp:
        run = GradingRun(ROOT, assignment, tmp, cell_timeout=timeout, workers=workers)
        pool = synthetic_students(run.sources, run.releases)
        expected = {}
        for i in range(count):
            student = pool[i % len(pool)]
            student.name = f"s{i:04d}"
            run.submit(student)
            expected[student.name] = student.expected
        start = time.perf_counter()
        result = run.autograde(workers=workers, sandbox=sandbox)
        seconds = time.perf_counter() - start
        wrong = [s for s, e in expected.items() if abs(run.autograded_score(s) - e) > 1e-9]
        parent = sum(r.seconds for r in run.results.values())
    return {
        "assignment": assignment,
        "count": count,
        "workers": workers,
        "sandbox": sandbox,
        "seconds": seconds,
        "per_minute": 60 * count / seconds,
        "parent_seconds_per_submission": parent / count,
        "wrong_scores": len(wrong),
        "success": result["success"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="02_abc")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--timeout", type=int, default=10, help="seconds per student cell")
    parser.add_argument("--overhead", action="store_true", help="also k = 1 without sandbox")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "grading.json"))
    args = parser.parse_args(argv)
    rows = [_grade(args.assignment, args.count, k, "bwrap", args.timeout) for k in args.workers]
    if args.overhead:
        rows.append(_grade(args.assignment, args.count, 1, "none", args.timeout))
    print(f"{'k':>3} {'sandbox':>8} {'n':>5} {'seconds':>8} {'per min':>8} {'parent s':>9} wrong")
    for r in rows:
        print(
            f"{r['workers']:>3} {r['sandbox']:>8} {r['count']:>5} {r['seconds']:>8.0f} "
            f"{r['per_minute']:>8.1f} {r['parent_seconds_per_submission']:>9.2f} "
            f"{r['wrong_scores']}"
        )
    best = max(rows, key=lambda r: r["per_minute"] if r["sandbox"] == "bwrap" else 0)
    print(f"300 submissions at k = {best['workers']}: {300 / best['per_minute']:.0f} min")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(rows, indent=1))
    return 0 if all(r["success"] and not r["wrong_scores"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
