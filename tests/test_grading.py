"""The nbgrader homework, graded the way an instructor grades it.

For every assignment in ``solutions/``: the source notebooks follow the course's rules, the
committed ``exercises/`` are what ``nbgrader generate_assignment`` makes of them, and synthetic
students of known quality get exactly the points they deserve when nbgrader autogrades them.

All synthetic students of an assignment are autograded in one ``nbgrader autograde`` call in
a temporary course (the session fixture ``graded``); the individual tests read the gradebook
and the autograded notebooks. The cell timeout there is short (``SBI_COURSE_GRADING_TIMEOUT``,
default 8 s; the instructor's read-only set-up cells get longer), so that the endless-loop
student costs seconds, not minutes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sbi_course.grading import assert_own_implementation
from tools.grading import (
    GradingRun,
    assignments,
    check_source,
    manual_cells,
    stale_exercises,
    synthetic_students,
)

# nbgrader's own gradebook code and the test cells it restores trigger these; nothing to fix here
pytestmark = [
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
]

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = assignments(ROOT)
TIMEOUT = int(os.environ.get("SBI_COURSE_GRADING_TIMEOUT", "8"))
SOURCE_NOTEBOOKS = sorted((ROOT / "solutions").glob("*/*.ipynb"))


# --------------------------------------------------------------------------------------------
# Fast checks: structure and drift
# --------------------------------------------------------------------------------------------


def test_there_are_assignments():
    assert ASSIGNMENTS, "no assignment folders with notebooks in solutions/"


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.stem)
def test_source_notebook_follows_the_rules(path):
    assert check_source(path) == []


def test_exercises_are_what_nbgrader_generates():
    stale = stale_exercises(ROOT)
    assert stale == [], f"exercises/ out of date for {stale}: run `make exercises` and commit"


def test_own_implementation_check_catches_the_reference():
    import sbi_course.abc
    from sbi_course.abc import rejection_abc as reference

    def own(x):
        return x + 1

    def through_alias(*args):
        return reference(*args)

    def through_package(*args):
        return sbi_course.abc.smc_abc(*args)

    def helper(*args):
        return through_alias(*args)

    def local_import(*args):
        import sbi_course.abc.smc as smc

        return smc.smc_abc(*args)

    def name_from_strings(*args):
        import importlib

        return importlib.import_module("sbi_" + "course.abc").rejection_abc(*args)

    def through_dunder_import(*args):
        return __import__("sbi_course" + ".abc", fromlist=["x"]).rejection_abc(*args)

    def through_default(*args, _ref=reference):
        return _ref(*args)

    class Wrapper:
        def __call__(self, *args):
            return reference(*args)

    wrapped = Wrapper()

    def through_instance(*args):
        return wrapped(*args)

    assert_own_implementation(own, "sbi_course.abc")
    cheats = (through_alias, through_package, helper, local_import, name_from_strings)
    cheats += (through_dunder_import, through_default, through_instance)
    for cheat in cheats:
        with pytest.raises(AssertionError, match="write the algorithm yourself"):
            assert_own_implementation(cheat, "sbi_course.abc", "sbi")
    for not_a_function in (Wrapper(), print, len):
        with pytest.raises(AssertionError, match="expected a function"):
            assert_own_implementation(not_a_function, "sbi_course.abc")


# --------------------------------------------------------------------------------------------
# Round trips through nbgrader (slow: every synthetic student's notebook is executed)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session", params=ASSIGNMENTS)
def graded(request, tmp_path_factory):
    """A temporary course with every synthetic student of one assignment autograded once."""
    assignment = request.param
    start = time.perf_counter()
    run = GradingRun(
        ROOT, assignment, tmp_path_factory.mktemp(assignment), cell_timeout=TIMEOUT, workers=2
    )
    students = {s.name: s for s in synthetic_students(run.sources, run.releases)}
    for student in students.values():
        run.submit(student)
    result = run.autograde()
    print(
        f"\n{assignment}: {len(students)} students autograded in {run.seconds:.1f} s, "
        f"{run.cpu_seconds:.1f} s CPU ({time.perf_counter() - start:.1f} s with the set-up)"
    )
    return run, students, result


def _test_scores(run, student, groups):
    scores = run.scores(student)
    return {g.name: [scores[t] for t in g.test_ids] for g in groups}


def _max_points(run, group):
    return [float(c.metadata.nbgrader["points"]) for c in _source_cells(run, group.test_ids)]


def _source_cells(run, grade_ids):
    cells = [c for nb in run.sources.values() for c in nb.cells]
    return [
        c
        for gid in grade_ids
        for c in cells
        if c.metadata.get("nbgrader", {}).get("grade_id") == gid
    ]


@pytest.mark.slow
def test_autograde_finishes_for_every_student(graded):
    run, students, result = graded
    assert result["success"], result.get("log", "") + result.get("error", "")
    for name in students:
        for notebook in run.sources:
            assert run.autograded_notebook(name, notebook).cells


@pytest.mark.slow
def test_every_student_gets_exactly_the_points_deserved(graded):
    run, students, _ = graded
    got = {name: run.autograded_score(name) for name in students}
    want = {name: s.expected for name, s in students.items()}
    assert got == pytest.approx(want)


@pytest.mark.slow
def test_solutions_score_all_autograded_points(graded):
    run, students, _ = graded
    groups = run.groups()
    scores = _test_scores(run, "all_correct", groups)
    assert scores == {g.name: _max_points(run, g) for g in groups}
    assert students["all_correct"].expected == sum(g.points for g in groups) >= 1


@pytest.mark.slow
def test_blank_student_version_scores_zero(graded):
    run, _, _ = graded
    scores = run.scores("blank")
    assert all(score == 0 for score in scores.values()), scores
    # written answers left blank are zero too, and need no manual grading
    manual = {gid for nb in run.sources.values() for gid in manual_cells(nb)}
    assert manual and manual <= set(scores)


@pytest.mark.slow
def test_one_right_answer_scores_exactly_its_points(graded):
    run, _, _ = graded
    first, *rest = run.groups()
    scores = _test_scores(run, "one_right", run.groups())
    assert scores[first.name] == _max_points(run, first)
    assert all(s == 0 for g in rest for s in scores[g.name])


@pytest.mark.slow
def test_tampered_test_cells_are_restored_and_score_nothing(graded):
    run, students, _ = graded
    groups = run.groups()
    deleted, others = groups[1], [g for i, g in enumerate(groups) if i != 1]
    scores = _test_scores(run, "tampered", groups)
    assert all(s == 0 for g in others for s in scores[g.name])
    for notebook in run.sources:
        graded_cells = {
            c.metadata.nbgrader["grade_id"]: c
            for c in run.autograded_notebook("tampered", notebook).cells
            if "nbgrader" in c.metadata
        }
        for source in _source_cells(run, [t for g in others for t in g.test_ids]):
            cell = graded_cells[source.metadata.nbgrader["grade_id"]]
            assert cell.source == source.source  # hidden tests included
            assert cell.metadata.nbgrader["points"] == source.metadata.nbgrader["points"]
    assert students["tampered"].expected == deleted.points


@pytest.mark.slow
def test_deleted_test_cells_are_restored_and_graded(graded):
    run, _, _ = graded
    deleted = run.groups()[1]
    scores = _test_scores(run, "tampered", [deleted])
    assert scores[deleted.name] == _max_points(run, deleted)
    restored = run.autograded_notebook("tampered", deleted.notebook).cells
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in restored]
    assert all(t in ids for t in deleted.test_ids)
    # put back right after the answer they test, in their original order
    start = ids.index(deleted.answer_ids[-1])
    assert ids[start + 1 : start + 1 + len(deleted.test_ids)] == deleted.test_ids


def _broken(students):
    return [(name, g, mode) for name, s in students.items() for g, mode in s.broken.items()]


@pytest.mark.slow
def test_every_failure_mode_is_exercised(graded):
    _, students, _ = graded
    assert {mode for _, _, mode in _broken(students)} == {"endless", "raise", "syntax", "exit"}


@pytest.mark.slow
def test_broken_answers_score_zero_for_that_part_only(graded):
    run, students, _ = graded
    groups = {g.name: g for g in run.groups()}
    for name, group, mode in _broken(students):
        scores = _test_scores(run, name, [groups[group]])[group]
        assert all(s == 0 for s in scores), (name, group, mode, scores)
    # the right answers of the same students still earn their points (the sum is exact)
    for name in {name for name, _, _ in _broken(students)}:
        assert students[name].expected > 0
        assert run.autograded_score(name) == pytest.approx(students[name].expected)


@pytest.mark.slow
def test_endless_loop_is_stopped_by_the_cell_timeout(graded):
    run, students, _ = graded
    groups = {g.name: g for g in run.groups()}
    ((name, group),) = [(n, g) for n, g, mode in _broken(students) if mode == "endless"]
    notebook = run.autograded_notebook(name, groups[group].notebook)
    errors = {
        c.metadata.nbgrader["grade_id"]: [o.ename for o in c.outputs if o.output_type == "error"]
        for c in notebook.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
    }
    for test_id in groups[group].test_ids:
        assert "CellTimeoutError" in errors[test_id], errors[test_id]
    # cells after the loop ran: the last answer is right and scored
    last = run.groups()[-1]
    assert _test_scores(run, name, [last])[last.name] == _max_points(run, last)


@pytest.mark.slow
def test_grading_and_feedback_never_modify_submissions(graded):
    run, students, _ = graded
    before = {name: _hashes(run.submission_folder(name)) for name in students}
    assert run.submissions_unchanged
    pages = run.feedback("all_correct")
    assert [p.stem for p in pages] == sorted(run.sources)
    html = pages[0].read_text()
    total = sum(g.points for g in run.groups())
    assert "Test cell" in html or "test cell" in html.lower()
    assert f"{total:g}" in html
    assert {name: _hashes(run.submission_folder(name)) for name in students} == before


def _hashes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))}


@pytest.mark.slow
def test_validator_passes_solutions_and_fails_student_versions(graded):
    from nbgrader.validator import Validator

    run, _, _ = graded
    validator = Validator(config=run.config)
    for notebook in run.sources:
        source = run.course / "solutions" / run.assignment / f"{notebook}.ipynb"
        release = run.release / f"{notebook}.ipynb"
        assert validator.validate(str(source)) == {}, f"{notebook}: the solution fails validation"
        failed = validator.validate(str(release)).get("failed", [])
        assert failed, f"{notebook}: the blank student version passes validation"
