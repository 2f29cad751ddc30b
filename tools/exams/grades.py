"""The course grade from nbgrader's gradebook: the average of the three exams, homework beside it.

For every student in the gradebook, each graded exam counts as its score in percent of its
points (an exam without a submission counts 0); the course grade is the mean of the three, as
the course defines it (COURSE_DESIGN.md). Every other assignment in the gradebook is homework and
is reported beside it in percent, with its mean, but does not enter the course grade. The
column ``ungraded`` counts exam answers still waiting for manual grading: a course grade with a
non-zero count is provisional.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tools.exams.bank import GRADED_EXAMS

__all__ = ["final_grades", "write_csv"]


def _percent(score: float, max_score: float) -> float:
    return round(100.0 * score / max_score, 2) if max_score else 0.0


def final_grades(db_url: str, course_id: str = "sbi-course") -> list[dict]:
    """One row per student: exam percentages, course grade, homework percentages.

    Args:
        db_url: the gradebook, e.g. ``"sqlite:///gradebook.db"``.
        course_id: the nbgrader course id.

    Returns:
        Rows (dicts) sorted by student id, with the keys ``student_id``, one per exam,
        ``course_grade``, ``ungraded``, one per homework assignment and ``homework_mean``.
    """
    from nbgrader.api import Gradebook, MissingEntry

    exams = [e.name for e in GRADED_EXAMS]
    rows = []
    with Gradebook(db_url, course_id) as gb:
        homework = sorted(a.name for a in gb.assignments if a.name not in exams)
        for student in sorted(gb.students, key=lambda s: s.id):
            row: dict = {"student_id": student.id}
            ungraded = 0
            for name in exams + homework:
                try:
                    sub = gb.find_submission(name, student.id)
                except MissingEntry:
                    row[name] = 0.0
                    continue
                row[name] = _percent(sub.score, sub.max_score)
                if name in exams:
                    ungraded += sum(g.needs_manual_grade for nb in sub.notebooks for g in nb.grades)
            row["course_grade"] = round(sum(row[n] for n in exams) / len(exams), 2)
            row["ungraded"] = ungraded
            row["homework_mean"] = (
                round(sum(row[n] for n in homework) / len(homework), 2) if homework else ""
            )
            rows.append(row)
    return rows


def write_csv(rows: list[dict], out: str | Path) -> Path:
    """Write :func:`final_grades` rows to ``out`` as CSV, course grade after the exams."""
    exams = [e.name for e in GRADED_EXAMS]
    first = ["student_id", *exams, "course_grade", "ungraded"]
    rest = sorted({k for row in rows for k in row} - set(first) - {"homework_mean"})
    fields = first + rest + ["homework_mean"]
    out = Path(out)
    with out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return out
