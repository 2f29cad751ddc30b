"""Command line: ``python -m tools.grading generate|check|demo|autograde [ASSIGNMENT ...]``."""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import tools.grading as grading
from tools.grading.autograde import grade_synthetic
from tools.grading.course import (
    _source_notebooks,
    assignments,
    find_course_root,
    generate,
    stale_exercises,
)
from tools.grading.notebooks import check_source, manual_cells

__all__ = ["main"]


def _demo(root: Path, names: list[str], timeout: int) -> int:
    failures = 0
    for name in names:
        with tempfile.TemporaryDirectory(prefix="sbi-course-grading-") as tmp:
            run, students, result = grade_synthetic(root, name, tmp, cell_timeout=timeout)
            auto = sum(g.points for g in run.groups())
            manual = sum(sum(manual_cells(nb).values()) for nb in run.sources.values())
            print(
                f"\n{name}: {auto:g} autograded + {manual:g} manually graded points; "
                f"{len(students)} students autograded in {run.seconds:.0f} s "
                f"({run.cpu_seconds:.0f} s CPU, cell timeout {timeout} s)"
            )
            if not result.get("success"):
                print(result.get("log", ""), result.get("error", ""))
            print(f"  {'student':<12} {'expected':>8} {'graded':>8}  description")
            for student in students:
                got = run.autograded_score(student.name)
                ok = math.isclose(got, student.expected)
                failures += not ok
                flag = "" if ok else "   <-- MISMATCH"
                print(
                    f"  {student.name:<12} {student.expected:>8g} {got:>8g}  "
                    f"{student.description}{flag}"
                )
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.grading", description=grading.__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=["generate", "check", "demo", "autograde"])
    parser.add_argument("assignments", nargs="*", help="assignment names (default: all)")
    parser.add_argument("--root", default=None, help="course root (default: found from here)")
    parser.add_argument("--timeout", type=int, default=10, help="demo: seconds per student cell")
    parser.add_argument("--workers", type=int, default=1, help="autograde: worker processes")
    parser.add_argument("--force", action="store_true", help="autograde: regrade everyone")
    parser.add_argument("--student", action="append", help="autograde: only this student")
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="autograde without bubblewrap (student code runs with your rights: unsafe)",
    )
    args = parser.parse_args(argv)
    root = find_course_root(args.root)
    names = args.assignments or assignments(root)
    if args.command == "generate":
        generate(root, names)
        print(f"released {', '.join(names)} to {root / 'exercises'}")
        return 0
    if args.command == "check":
        problems = [
            f"{nb.relative_to(root)}: {p}"
            for name in names
            for nb in _source_notebooks(root, name)
            for p in check_source(nb)
        ]
        stale = stale_exercises(root, names)
        problems += [f"exercises/{n} is out of date: run `make exercises`" for n in stale]
        print("\n".join(problems) or f"{', '.join(names)}: ok")
        return 1 if problems else 0
    if args.command == "autograde":
        return _autograde(root, names, args)
    return _demo(root, names, args.timeout)


def _autograde(root: Path, names: list[str], args) -> int:
    from tools.grading.parallel import autograde

    failures = 0
    for name in names:
        results = autograde(
            root,
            name,
            workers=args.workers,
            force=args.force,
            students=args.student,
            sandbox="none" if args.no_sandbox else None,
        )
        counts = {}
        for result in results.values():
            counts[result.status] = counts.get(result.status, 0) + 1
        print(f"{name}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
        for student, result in results.items():
            if result.status == "error":
                failures += 1
                print(f"  ERROR {student}: {result.error.splitlines()[-1] if result.error else ''}")
            for note in result.notes:
                print(f"  NOTE {student}: {note}")
            for item in result.tampering:
                print(f"  TAMPERING {student} (before {item['cell']}): {'; '.join(item['found'])}")
    return 1 if failures else 0
