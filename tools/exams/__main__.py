"""Command line of the exams: ``python -m tools.exams {build,check,pdf,key,final-grade}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.exams.bank import EXAMS, GRADED_EXAMS, items_of_week


def _ids(args) -> list[str]:
    from tools.exams.notebook import MINITEST_VARIANT
    from tools.exams.paper import variant_id

    if args.exam == "minitest":
        return [MINITEST_VARIANT]
    ids = list(args.student or []) + [variant_id(v) for v in args.variant or []]
    if not ids:
        raise SystemExit(f"{args.command}: give --student ID or --variant N (or both)")
    return ids


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.exams", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="write exams/source and exams/exercises from the bank")
    sub.add_parser("check", help="exit 1 when the committed exam notebooks are stale")
    sub.add_parser("bank", help="list the items per week and the exams")
    for name, text in (("pdf", "question sheet and key as PDF"), ("key", "answer key as text")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("exam", choices=sorted(EXAMS))
        cmd.add_argument("--student", action="append", help="a student id (repeatable)")
        cmd.add_argument("--variant", action="append", type=int, help="a variant number")
        if name == "pdf":
            cmd.add_argument(
                "--out", default="build/exam-pdf", help="output folder (build/exam-pdf/)"
            )
    grade = sub.add_parser("final-grade", help="gradebook -> course grade CSV")
    grade.add_argument("out", nargs="?", default="grades.csv")
    grade.add_argument("--db", default="gradebook.db", help="the gradebook (gradebook.db)")
    args = parser.parse_args(argv)
    root = Path.cwd()

    if args.command == "build":
        from tools.exams.course import build, release

        for path in build(root):
            print(f"wrote {path.relative_to(root)}")
        release(root)
        print("released " + ", ".join(e.name for e in GRADED_EXAMS) + " to exams/exercises/")
    elif args.command == "check":
        from tools.exams.course import stale_exams

        stale = stale_exams(root)
        if stale:
            print("stale, run `python -m tools.exams build`: " + ", ".join(stale))
            return 1
        print("exams up to date")
    elif args.command == "bank":
        for week in (1, 2, 3):
            items = items_of_week(week)
            kinds = {k: sum(it.kind == k for it in items) for k in ("mc", "num", "text")}
            print(f"week {week}: {len(items)} items {kinds}")
        for exam in EXAMS.values():
            print(f"{exam.name}: {len(exam.items)} items, {exam.points} points")
    elif args.command == "key":
        exam = EXAMS[args.exam]
        for sid in _ids(args):
            print(f"{exam.name}, student {sid}")
            for k, it in enumerate(exam.items, start=1):
                answer = it.answer(exam.name, sid)
                shown = f"{answer:.6g}" if it.kind == "num" else answer
                print(f"  {k}. [{it.id}] {shown}")
    elif args.command == "pdf":
        from tools.exams.paper import exam_html, render_pdf

        exam = EXAMS[args.exam]
        for sid in _ids(args):
            for key, suffix in ((False, "questions"), (True, "key")):
                out = Path(args.out) / f"{exam.name}_{sid}_{suffix}.pdf"
                render_pdf(exam_html(exam, sid, key=key), out)
                print(f"wrote {out}")
    elif args.command == "final-grade":
        from tools.exams.grades import final_grades, write_csv

        db = Path(args.db).resolve()
        if not db.is_file():
            print(f"final-grade: no gradebook at {db}", file=sys.stderr)
            return 1
        rows = final_grades(f"sqlite:///{db}")
        print(f"wrote {write_csv(rows, args.out)} ({len(rows)} students)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
