"""Autograding synthetic students in a throw-away copy of the course.

:class:`GradingRun` copies ``nbgrader_config.py`` and one assignment's source into a temporary
folder, generates the release there, takes submissions, runs ``nbgrader autograde`` once for all
of them and reads the gradebook. The real course folder is never touched.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

from tools.grading.course import (
    _api,
    _check_result,
    _copy_course,
    _nbgrader_environment,
    _source_notebooks,
    load_config,
)
from tools.grading.notebooks import AnswerGroup, _meta, answer_groups
from tools.grading.synthetic import SyntheticStudent, synthetic_students

__all__ = ["CellTimeouts", "GradingRun", "grade_synthetic"]


class CellTimeouts:
    """``Execute.timeout_func``: seconds per cell, ``long`` for the instructor's read-only
    set-up cells (imports), ``short`` for every cell a student's code runs in."""

    def __init__(self, short: int, long: int = 300):
        self.short, self.long = short, long

    def __call__(self, cell) -> int:
        meta = _meta(cell)
        setup = meta.get("locked") and not meta.get("grade") and not meta.get("solution")
        return self.long if setup else self.short


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the kernels), where measurable."""
    try:
        import resource
    except ImportError:  # Windows
        return time.process_time()
    own, kernels = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kernels.ru_utime + kernels.ru_stime


def _tree_hash(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


class GradingRun:
    """A temporary nbgrader course for one assignment, in which synthetic students are graded.

    Args:
        root: the real course (its ``nbgrader_config.py`` and ``solutions/<assignment>``).
        assignment: the assignment name.
        directory: an empty folder for the temporary course.
        cell_timeout: seconds per student cell (``None``: the course's configuration).
    """

    def __init__(
        self,
        root: str | Path,
        assignment: str,
        directory: str | Path,
        cell_timeout=None,
        *,
        workers: int = 1,
        notebook_seconds: int | None = None,
    ):
        self.root, self.assignment = Path(root).resolve(), assignment
        self.workers = workers
        self.course = Path(directory).resolve()
        _copy_course(self.root, self.course, [assignment])
        overrides = {}
        if cell_timeout is not None:
            overrides["Execute__timeout_func"] = CellTimeouts(int(cell_timeout))
        if notebook_seconds is not None:
            overrides["SandboxedExecute__notebook_seconds"] = int(notebook_seconds)
        self.overrides = overrides
        self.config = load_config(self.course, **overrides)
        self.results: dict = {}
        self.history: dict = {}
        with _nbgrader_environment():
            self.api = _api(self.config)
            _check_result(self.api.generate_assignment(assignment, force=True), "generate")
        self.release = self.course / "exercises" / assignment
        names = [p.stem for p in _source_notebooks(self.course, assignment)]
        source = self.course / "solutions" / assignment
        self.sources = {n: self._read(source / f"{n}.ipynb") for n in names}
        self.releases = {n: self._read(self.release / f"{n}.ipynb") for n in names}
        self.seconds: float | None = None
        self.cpu_seconds: float | None = None
        self.submissions_unchanged: bool | None = None

    @staticmethod
    def _read(path: Path):
        import nbformat

        return nbformat.read(path, as_version=4)

    def groups(self) -> list[AnswerGroup]:
        return [g for n, nb in self.sources.items() for g in answer_groups(nb, n)]

    def submission_folder(self, student: str) -> Path:
        return self.course / "submitted" / student / self.assignment

    def submit(self, student: SyntheticStudent) -> None:
        """Write the student's notebooks (and the other released files) to ``submitted/``."""
        import nbformat

        folder = self.submission_folder(student.name)
        shutil.copytree(self.release, folder, dirs_exist_ok=True)
        for name, nb in student.notebooks.items():
            nbformat.write(nbformat.from_dict(nb), folder / f"{name}.ipynb")
        (folder / "timestamp.txt").write_text("2024-01-01 12:00:00 UTC")

    def submit_files(self, student: str, files: dict[str, bytes]) -> None:
        """Submit raw files (e.g. a renamed or re-encoded notebook) as ``student``."""
        folder = self.submission_folder(student)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        (folder / "timestamp.txt").write_text("2024-01-01 12:00:00 UTC")

    def autograde(self, force: bool = True, **kwargs) -> dict:
        """Autograde every submitted student (:func:`tools.grading.parallel.autograde`).

        Returns ``{"success": ..., "log": ...}`` like nbgrader's API; the per-student results
        are in ``self.results``. ``kwargs`` go to :func:`~tools.grading.parallel.autograde`.

        Records the wall time in ``self.seconds``, the CPU time (kernels included) in
        ``self.cpu_seconds``, and whether grading changed ``submitted/`` in
        ``self.submissions_unchanged``.
        """
        before = _tree_hash(self.course / "submitted")
        start, cpu = time.perf_counter(), _cpu_seconds()
        from tools.grading.parallel import autograde

        kwargs.setdefault("workers", self.workers)
        kwargs.setdefault("progress", False)
        self.results = autograde(
            self.course, self.assignment, force=force, overrides=self.overrides, **kwargs
        )
        for name, outcome in self.results.items():
            if outcome.status != "skipped":
                self.history[name] = outcome
        errors = {s: r.error for s, r in self.results.items() if r.status == "error"}
        result = {"success": not errors, "log": "\n".join(f"{s}: {e}" for s, e in errors.items())}
        self.seconds = time.perf_counter() - start
        self.cpu_seconds = _cpu_seconds() - cpu
        self.submissions_unchanged = _tree_hash(self.course / "submitted") == before
        return result

    def results_of(self, student: str):
        """The :class:`~tools.grading.parallel.StudentResult` of the run that graded
        ``student`` last (runs that skipped the student do not count)."""
        return self.history[student]

    def feedback(self, student: str) -> list[Path]:
        """Generate feedback pages for ``student``; returns the HTML files."""
        with _nbgrader_environment():
            _check_result(self.api.generate_feedback(self.assignment, student), "feedback")
        return sorted((self.course / "feedback" / student / self.assignment).glob("*.html"))

    def scores(self, student: str) -> dict[str, float | None]:
        """Grade id -> autograded score of every grade cell of the student's submission."""
        from nbgrader.api import Gradebook

        with Gradebook(self.api.coursedir.db_url) as gb:
            submission = gb.find_submission(self.assignment, student)
            return {g.name: g.auto_score for nb in submission.notebooks for g in nb.grades}

    def autograded_notebook(self, student: str, notebook: str):
        folder = self.course / "autograded" / student / self.assignment
        return self._read(folder / f"{notebook}.ipynb")

    def autograded_score(self, student: str) -> float:
        """Sum of the autograded test cells' scores (written answers excluded)."""
        tests = {gid for g in self.groups() for gid in g.test_ids}
        return sum(s or 0.0 for gid, s in self.scores(student).items() if gid in tests)


def grade_synthetic(
    root: str | Path, assignment: str, directory: str | Path, cell_timeout: int = 10
) -> tuple[GradingRun, list[SyntheticStudent], dict]:
    """Build a temporary course, submit :func:`synthetic_students`, autograde them all once."""
    run = GradingRun(root, assignment, directory, cell_timeout=cell_timeout)
    students = synthetic_students(run.sources, run.releases)
    for student in students:
        run.submit(student)
    result = run.autograde()
    return run, students, result
