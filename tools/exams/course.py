"""Writing the exams to the course folder and running nbgrader on them.

The graded exams are nbgrader assignments kept apart from the homework: their sources live in
``exams/source/<exam>/<exam>.ipynb`` and nbgrader releases them to ``exams/exercises/<exam>/``
(the student versions, committed), so the homework's folders and tests are untouched. Every
nbgrader command on an exam runs with :func:`exam_config`: the course's ``nbgrader_config.py``
with these two folders and an answer stub that leaves ``answer_<k> = None`` in place instead
of nbgrader's ``raise NotImplementedError()``. The mini-test is a plain notebook,
``exams/exercises/minitest/minitest.ipynb``.

nbgrader is used through its public API (:class:`nbgrader.apps.NbGraderAPI`); the course
configuration is read by :func:`tools.grading.load_config` (one import, below, to repoint
when the grading helpers move).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nbformat

from tools.exams.bank import EXAMS, GRADED_EXAMS
from tools.exams.notebook import exam_notebook, minitest_notebook
from tools.grading import load_config

__all__ = [
    "EXAM_RELEASE",
    "EXAM_SOURCE",
    "autograde",
    "build",
    "fill_answers",
    "exam_api",
    "exam_config",
    "release",
    "stale_exams",
]

EXAM_SOURCE = "exams/source"
EXAM_RELEASE = "exams/exercises"
_STUB = "\n"


def exam_config(root: str | Path, **overrides):
    """The course's nbgrader configuration, pointed at the exam folders."""
    config = load_config(root, **overrides)
    config.CourseDirectory.source_directory = EXAM_SOURCE
    config.CourseDirectory.release_directory = EXAM_RELEASE
    config.ClearSolutions.code_stub = {"python": _STUB}
    return config


@contextlib.contextmanager
def nbgrader_path() -> Iterator[None]:
    """nbgrader runs ``alembic`` from PATH: put this Python's bin folder first, then restore."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), old])
    try:
        yield
    finally:
        os.environ["PATH"] = old


def exam_api(root: str | Path, **overrides):
    """An :class:`nbgrader.apps.NbGraderAPI` on the exams of the course at ``root``."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    config = exam_config(root, **overrides)
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def _write(nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def build(root: str | Path) -> list[Path]:
    """Write the exams' nbgrader sources and the mini-test from the bank; returns the paths."""
    root = Path(root)
    written = []
    for exam in GRADED_EXAMS:
        path = root / EXAM_SOURCE / exam.name / f"{exam.name}.ipynb"
        _write(exam_notebook(exam), path)
        written.append(path)
    path = root / EXAM_RELEASE / "minitest" / "minitest.ipynb"
    _write(minitest_notebook(EXAMS["minitest"]), path)
    written.append(path)
    return written


def release(root: str | Path, names: list[str] | None = None) -> None:
    """``nbgrader generate_assignment --force`` for the graded exams: source -> release.

    Also records the exams in ``root/gradebook.db``, which ``nbgrader autograde`` needs.
    """
    names = names or [e.name for e in GRADED_EXAMS]
    with nbgrader_path():
        api = exam_api(root)
        for name in names:
            result = api.generate_assignment(name, force=True)
            if not result.get("success"):
                raise RuntimeError(f"generate_assignment {name} failed:\n{result.get('log', '')}")


def _normalised(path: Path) -> dict:
    nb = nbformat.read(path, as_version=4)
    keep = ("nbgrader", "editable", "deletable")
    return {
        "cells": [
            (c.cell_type, c.source, {k: c.metadata[k] for k in keep if k in c.metadata})
            for c in nb.cells
        ]
    }


def stale_exams(root: str | Path, fresh: str | Path | None = None) -> list[str]:
    """Exam notebooks in ``root`` that differ from a fresh build and release of the bank.

    Args:
        root: the course root with the committed ``exams/``.
        fresh: a course folder where :func:`build` and :func:`release` already ran (as
            :func:`autograde` does); default: build and release in a temporary folder.
    """
    root = Path(root).resolve()
    with tempfile.TemporaryDirectory(prefix="sbi-course-exams-") as tmp:
        if fresh is None:
            fresh = Path(tmp)
            shutil.copy(root / "nbgrader_config.py", fresh / "nbgrader_config.py")
            build(fresh)
            release(fresh)
        fresh = Path(fresh)
        stale = []
        for new in sorted((fresh / "exams").rglob("*.ipynb")):
            committed = root / new.relative_to(fresh)
            if not committed.is_file() or _normalised(committed) != _normalised(new):
                stale.append(str(new.relative_to(fresh)))
        for old in sorted((root / "exams").rglob("*.ipynb")):
            if (
                ".ipynb_checkpoints" not in old.parts
                and not (fresh / old.relative_to(root)).is_file()
            ):
                stale.append(str(old.relative_to(root)))
    return stale


def fill_answers(release_nb, student_id: str, answers: dict[int, object], texts=None):
    """A copy of a released exam notebook as a student would submit it.

    Args:
        release_nb: the released notebook (``nbformat`` node).
        student_id: what the student types into ``STUDENT_ID``.
        answers: question number -> value of ``answer_<k>`` (a letter or a number).
        texts: question number -> Markdown of a written answer.
    """
    import copy

    nb = copy.deepcopy(release_nb)
    texts = texts or {}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if cell.cell_type == "code" and cell.source.lstrip().startswith("# Type your student id"):
            cell.source = f"STUDENT_ID = {student_id!r}"
        if not grade_id.endswith("_answer"):
            continue
        k = int(grade_id[1:].split("_")[0])
        if k in answers:
            cell.source = f"answer_{k} = {answers[k]!r}"
        if k in texts:
            cell.source = texts[k]
    return nb


def autograde(root: str | Path, course: str | Path, submissions: dict, timeout: int = 20) -> dict:
    """Autograde submissions of the exams in a throw-away course; returns the scores.

    Args:
        root: the course root (its ``nbgrader_config.py`` is used).
        course: an empty folder for the throw-away course.
        submissions: ``{student: {exam: notebook}}``.
        timeout: seconds per cell.

    Returns:
        ``{student: {exam: {grade_id: (score, max_score, needs_manual_grade)}}}`` and, under
        the key ``"_gradebook"``, the path of the gradebook.
    """
    from nbgrader.api import Gradebook

    course = Path(course)
    shutil.copy(Path(root) / "nbgrader_config.py", course / "nbgrader_config.py")
    build(course)
    exams = sorted({e for subs in submissions.values() for e in subs})
    release(course, exams)
    for student, subs in submissions.items():
        for exam_name, nb in subs.items():
            _write(nb, course / "submitted" / student / exam_name / f"{exam_name}.ipynb")
    with nbgrader_path():
        api = exam_api(course, Execute__timeout=timeout)
        with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
            for student in submissions:
                gb.update_or_create_student(student)
        for student, subs in submissions.items():
            for exam_name in subs:
                result = api.autograde(exam_name, student, force=True, create=True)
                if not result.get("success"):
                    raise RuntimeError(f"autograde {exam_name} {student}:\n{result.get('log')}")
    scores: dict = {"_gradebook": course / "gradebook.db"}
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        for student, subs in submissions.items():
            for exam_name in subs:
                nb = gb.find_submission_notebook(exam_name, exam_name, student)
                scores.setdefault(student, {})[exam_name] = {
                    g.name: (g.score, g.max_score, g.needs_manual_grade) for g in nb.grades
                }
    return scores
