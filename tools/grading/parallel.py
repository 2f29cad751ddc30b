"""Autograde a class: every submission executed in a sandbox by k workers, one gradebook writer.

``python -m tools.grading autograde ASSIGNMENT --workers k`` does, for each student in
``submitted/`` (those not graded since their last submission, or all with ``--force``):

1. :func:`~tools.grading.submissions.normalise` copies the submission to a scratch folder with
   honest mistakes repaired (renamed file, encoding, broken metadata), noting each repair.
2. A worker (:func:`execute_submission`, run by joblib, so a Dask cluster can run it too) grades
   it with nbgrader in a private scratch course holding a snapshot of the gradebook, with
   :class:`~tools.grading.execute.SandboxedExecute` as the execution step. It returns the
   executed notebooks and reports; it never touches the course folder.
3. The grading process alone, after that kernel is gone, runs nbgrader's ``autograde`` in the
   course with :class:`~tools.grading.execute.ReplayExecute` in place of execution: nbgrader
   restores the tests, takes the recorded outputs, saves scores in ``gradebook.db`` and writes
   ``autograded/``, so formgrader, feedback and export work as after ``nbgrader autograde``. A
   locked database is retried, not fatal; tampered test cells are flagged for manual grading.

The scores are those of a serial run: each submission is graded alone, in the same way, whatever
the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools.grading.course import _api, _nbgrader_environment, load_config

__all__ = ["StudentResult", "autograde", "execute_submission"]

MARKER = ".sbi-grading.json"


@dataclass
class StudentResult:
    """What happened to one student's submission."""

    student: str
    status: str  # "graded", "skipped" (already graded) or "error"
    notes: list[str] = field(default_factory=list)
    tampering: list[dict] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


def _folder_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _notebook_names(root: Path, assignment: str) -> list[str]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return sorted(nb.name for nb in gb.find_assignment(assignment).notebooks)


def _snapshot(database: Path, target: Path) -> None:
    """Copy an SQLite database consistently (the backup API), waiting out short locks."""
    source = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=60)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()


def execute_submission(job: dict) -> dict:
    """Worker: execute one normalised submission in a scratch course; return the records.

    Args:
        job: ``config`` (the course's ``nbgrader_config.py`` text), ``gradebook`` (a snapshot
            path), ``submitted`` (the normalised ``submitted`` folder), ``student``,
            ``assignment``, ``overrides`` (config ``Class__trait`` pairs), ``sandbox``.

    Returns:
        ``student``, ``records`` (file name -> text of executed notebooks and reports),
        ``log`` and ``success``.
    """
    from tools.grading.execute import SandboxedExecute

    with tempfile.TemporaryDirectory(prefix="sbi-grading-worker-") as tmp:
        course = Path(tmp)
        (course / "nbgrader_config.py").write_text(job["config"], encoding="utf-8")
        shutil.copy(job["gradebook"], course / "gradebook.db")
        records = course / "records"
        overrides = dict(job.get("overrides", {}))
        overrides |= {
            "CourseDirectory__submitted_directory": job["submitted"],
            "Autograde__autograde_preprocessors": [SandboxedExecute],
            "SandboxedExecute__record_folder": str(records),
            "SandboxedExecute__sandbox": job["sandbox"],
        }
        config = load_config(course, **overrides)
        with _nbgrader_environment():
            result = _api(config).autograde(job["assignment"], job["student"], force=True)
        files = {p.name: p.read_text("utf-8") for p in sorted(records.glob("*"))}
    return {
        "student": job["student"],
        "records": files,
        "success": bool(result.get("success")) and bool(files),
        "log": (result.get("log") or "") + (result.get("error") or ""),
    }


def _record(
    root: Path,
    assignment: str,
    outcome: dict,
    notes: list[str],
    overrides: dict,
    submitted: Path,
    run: Path,
) -> StudentResult:
    """Grading process: write one student's recorded execution into the real course."""
    from tools.grading.execute import ReplayExecute

    student = outcome["student"]
    result = StudentResult(student, "graded", notes=list(notes))
    records = run / "records" / student
    records.mkdir(parents=True, exist_ok=True)
    for name, text in outcome["records"].items():
        (records / name).write_text(text, encoding="utf-8")
    for report in records.glob("*.json"):
        data = json.loads(report.read_text("utf-8"))
        data["notes"] = notes
        result.tampering += data.get("tampering", [])
        report.write_text(json.dumps(data), encoding="utf-8")
    if not outcome["success"]:
        result.notes.append("the worker could not execute the submission: see the log")
    config = load_config(
        root,
        **overrides,
        CourseDirectory__submitted_directory=str(submitted),
        Autograde__autograde_preprocessors=_replay_preprocessors(ReplayExecute),
        ReplayExecute__record_folder=str(records),
    )
    for attempt in range(8):
        with _nbgrader_environment():
            saved = _api(config).autograde(assignment, student, force=True)
        log = (saved.get("log") or "") + (saved.get("error") or "")
        if saved.get("success"):
            break
        if "locked" not in log or attempt == 7:
            result.status, result.error = "error", _last_lines(outcome["log"] + log)
            return result
        time.sleep(0.5 * 2**attempt)  # database is locked: another program holds it
    if result.tampering:
        _flag(root, assignment, student, result.tampering)
    return result


def _replay_preprocessors(replay) -> list:
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    return [
        replay,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]


def _flag(root: Path, assignment: str, student: str, tampering: list[dict]) -> None:
    """Mark the test cells not run because of tampering as needing manual grading."""
    from nbgrader.api import Gradebook

    first = {item["cell"] for item in tampering}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        submission = gb.find_submission(assignment, student)
        for nb in submission.notebooks:
            flag = False
            for grade in sorted(nb.grades, key=lambda g: g.cell.id):
                flag = flag or grade.name in first or None in first
                if flag and grade.auto_score is not None:
                    grade.needs_manual_grade = True
        gb.db.commit()


def _last_lines(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def autograde(
    root: str | Path,
    assignment: str,
    *,
    workers: int = 1,
    force: bool = False,
    students: list[str] | None = None,
    sandbox: str | None = None,
    overrides: dict | None = None,
    progress: bool = True,
    backend: str | None = None,
) -> dict[str, StudentResult]:
    """Autograde the submissions of ``assignment`` in ``root/submitted`` (see the module).

    Args:
        root: the course folder.
        assignment: the assignment name (released, so that the gradebook knows it).
        workers: number of worker processes (joblib ``n_jobs``).
        force: regrade students already graded since their last submission.
        students: only these student ids (default: every folder in ``submitted/``).
        sandbox: ``"bwrap"`` or ``"none"``; default: ``"bwrap"`` where it works (else a warning).
        overrides: nbgrader config ``Class__trait`` pairs, e.g. ``Execute__timeout=10``.
        progress: show a progress bar.
        backend: a joblib backend name (default ``loky``; ``"dask"`` with a Dask client).

    Returns:
        Student id -> :class:`StudentResult`.
    """
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from tools.grading.sandbox import sandbox_support

    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"autograde: workers must be a positive integer, got {workers!r}")
    root = Path(root).resolve()
    overrides = dict(overrides or {})
    if sandbox is None:
        problem = sandbox_support()
        sandbox = "bwrap" if problem is None else "none"
        if problem:
            print(f"WARNING: no sandbox ({problem}); grading runs student code unsandboxed.")
    names = _notebook_names(root, assignment)
    submitted_root = root / "submitted"
    everyone = sorted(p.parent.name for p in submitted_root.glob(f"*/{assignment}") if p.is_dir())
    chosen = [s for s in everyone if students is None or s in students]
    results: dict[str, StudentResult] = {}
    todo = []
    for student in chosen:
        marker = root / "autograded" / student / assignment / MARKER
        digest = _folder_hash(submitted_root / student / assignment)
        if not force and marker.is_file() and json.loads(marker.read_text())["hash"] == digest:
            results[student] = StudentResult(student, "skipped")
        else:
            todo.append((student, digest))
    with tempfile.TemporaryDirectory(prefix="sbi-grading-run-") as tmp:
        run = Path(tmp)
        _snapshot(root / "gradebook.db", run / "gradebook.db")
        normalised = run / "submitted"
        notes = {}
        release = root / load_config(root).CourseDirectory.get("release_directory", "release")
        blanks = {n: release / assignment / f"{n}.ipynb" for n in names}
        for student, _ in todo:
            folder = normalised / student / assignment
            notes[student] = normalise_submission(
                submitted_root / student / assignment, folder, names, blanks
            )
        config_text = (root / "nbgrader_config.py").read_text("utf-8")
        jobs = [
            {
                "config": config_text,
                "gradebook": str(run / "gradebook.db"),
                "submitted": str(normalised),
                "student": student,
                "assignment": assignment,
                "overrides": overrides,
                "sandbox": sandbox,
            }
            for student, _ in todo
        ]
        digests = dict(todo)
        parallel = Parallel(n_jobs=workers, return_as="generator_unordered", backend=backend)
        outcomes = parallel(delayed(execute_submission)(job) for job in jobs)
        bar = tqdm(total=len(jobs), desc=f"autograde {assignment}", disable=not progress)
        for outcome in outcomes:
            start = time.perf_counter()
            student = outcome["student"]
            result = _record(root, assignment, outcome, notes[student], overrides, normalised, run)
            result.seconds = time.perf_counter() - start
            results[student] = result
            if result.status == "graded":
                marker = root / "autograded" / student / assignment / MARKER
                marker.write_text(json.dumps({"hash": digests[student], "notes": result.notes}))
            bar.update(1)
        bar.close()
    return {s: results[s] for s in chosen}


def normalise_submission(
    source: Path, target: Path, names: list[str], blanks: dict[str, Path]
) -> list[str]:
    from tools.grading.submissions import normalise

    return normalise(source, target, names, blanks)
