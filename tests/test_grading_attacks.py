"""Grading under attack: hostile and careless synthetic students in the round trip (issue #13).

For every assignment, attackers that need the assignment's own notebooks (running the
instructor's solutions found on disk, an input transformer that swallows failing tests) are
graded, then a correct "canary" student in a later run. On one assignment (``GENERIC_HOME``) the
attacks that work the same everywhere and the honest-but-careless students are added. Each
attacker must score 0, the canary full marks, the honest students what their answers earn, and
the course folder must be byte-identical afterwards except for the gradebook and the
autograded/feedback outputs. Without a sandbox (no bubblewrap) these tests are skipped: the
fallback is documented as unsafe.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tools.grading import GradingRun, assignments, synthetic_students
from tools.grading.attacks import (
    GENERIC_ATTACKS,
    PROCESS_TOKEN,
    SPECIFIC_ATTACKS,
    attackers,
    honest_students,
)
from tools.grading.sandbox import sandbox_support

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),
    pytest.mark.filterwarnings("ignore::nbformat.warnings.MissingIDFieldWarning"),
    pytest.mark.skipif(sandbox_support() is not None, reason=f"no sandbox: {sandbox_support()}"),
]

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = assignments(ROOT)
GENERIC_HOME = "02_abc" if "02_abc" in ASSIGNMENTS else ASSIGNMENTS[0]
TIMEOUT = int(os.environ.get("SBI_COURSE_GRADING_TIMEOUT", "8"))
TAMPERING = ["input_transformer", "ast_strip_asserts", "custom_exception", "pre_run_hook"]
TAMPERING += ["patched_testing", "rebind_own_check"]


def _course_state(course: Path) -> dict[str, str]:
    """Hashes of every file of the course except what grading is meant to write."""
    skip = ("autograded", "feedback", "gradebook.db")
    return {
        str(p.relative_to(course)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(course.rglob("*"))
        if p.is_file() and p.relative_to(course).parts[0] not in skip
    }


@pytest.fixture(scope="session", params=ASSIGNMENTS)
def attacked(request, tmp_path_factory):
    assignment = request.param
    generic = assignment == GENERIC_HOME
    run = GradingRun(
        ROOT,
        assignment,
        tmp_path_factory.mktemp(f"attacked_{assignment}"),
        cell_timeout=TIMEOUT,
        workers=2,
    )
    names = list(SPECIFIC_ATTACKS) + (list(GENERIC_ATTACKS) if generic else [])
    hostile = attackers(run.sources, run.releases, names)
    honest = honest_students(run.sources, run.releases) if generic else []
    for student in hostile:
        run.submit(student)
    for student, files in honest:
        run.submit_files(student.name, files)
    canary = synthetic_students(run.sources, run.releases)[0]
    assert canary.name == "all_correct"
    canary.name = "canary"
    before = _course_state(run.course)
    first = run.autograde(force=False)
    run.submit(canary)
    before |= _course_state(run.course)  # the canary's submission itself
    second = run.autograde(force=False)  # resumes: only the canary is graded now
    after = _course_state(run.course)
    return {
        "run": run,
        "hostile": hostile,
        "honest": [s for s, _ in honest],
        "canary": canary,
        "before": before,
        "after": after,
        "first": first,
        "second": second,
        "results": dict(run.results),
    }


def test_every_attacker_scores_zero(attacked):
    run = attacked["run"]
    got = {s.name: run.autograded_score(s.name) for s in attacked["hostile"]}
    assert got == {s.name: 0.0 for s in attacked["hostile"]}


def test_canary_after_the_attackers_keeps_full_marks(attacked):
    run, canary = attacked["run"], attacked["canary"]
    assert canary.expected > 0
    assert run.autograded_score("canary") == pytest.approx(canary.expected)
    assert attacked["results"]["canary"].status == "graded"


def test_course_folder_is_untouched_apart_from_the_grading_outputs(attacked):
    assert attacked["after"] == attacked["before"]


def test_resumed_run_grades_only_the_new_student(attacked):
    results = attacked["results"]
    earlier = [s.name for s in attacked["hostile"]] + [s.name for s in attacked["honest"]]
    assert {name: results[name].status for name in earlier} == dict.fromkeys(earlier, "skipped")
    assert attacked["first"]["success"] and attacked["second"]["success"]


def test_no_process_of_a_notebook_survives_grading(attacked):
    alive = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if PROCESS_TOKEN.encode() in cmdline.read_bytes():
                alive.append(cmdline.parent.name)
        except OSError:
            continue
    assert alive == []


def _generic(attacked):
    if attacked["run"].assignment != GENERIC_HOME:
        pytest.skip(f"the assignment-independent attacks run on {GENERIC_HOME} only")
    return attacked["run"]


def test_tampering_is_flagged_for_review(attacked):
    from nbgrader.api import Gradebook

    run = _generic(attacked)
    with Gradebook(run.api.coursedir.db_url) as gb:
        for name in TAMPERING:
            result = run.results_of(f"attack_{name}")
            assert result.tampering, name
            submission = gb.find_submission(run.assignment, f"attack_{name}")
            flagged = [
                g.name for nb in submission.notebooks for g in nb.grades if g.needs_manual_grade
            ]
            assert flagged, f"{name}: no test cell flagged for manual grading"
    notebook = next(iter(run.sources))
    top = run.autograded_notebook("attack_input_transformer", notebook).cells[0]
    assert "Tampering found" in top.source


def test_honest_students_get_what_they_earn_with_a_note(attacked):
    run = _generic(attacked)
    for student in attacked["honest"]:
        assert run.autograded_score(student.name) == pytest.approx(student.expected), student.name
        assert not run.results_of(student.name).tampering, student.name
    for name in ("honest_renamed", "honest_capitals", "honest_duplicated", "honest_cp1252"):
        assert run.results_of(name).notes, name
    assert "empty" in " ".join(run.results_of("honest_empty_file").notes)


def test_active_content_never_reaches_the_instructor(attacked):
    run = _generic(attacked)
    notebook = next(iter(run.sources))
    graded = run.autograded_notebook("attack_active_content", notebook)
    kinds = {k for c in graded.cells for o in c.get("outputs", []) for k in o.get("data", {})}
    assert kinds <= {"text/plain", "image/png", "image/jpeg", "image/gif"}, kinds
    pages = run.feedback("attack_active_content")
    # the attack's source shows as (escaped) code; what it displayed is gone
    assert pages and all("<script>fetch" not in p.read_text() for p in pages)
    assert all("<b>hi</b>" not in p.read_text() for p in pages)


def test_serial_and_parallel_runs_give_identical_gradebooks(attacked):
    run = _generic(attacked)
    names = ["attack_write_course", "honest_renamed", "canary"]
    parallel = {name: run.scores(name) for name in names}
    run.autograde(force=True, workers=1, students=names)
    assert {name: run.scores(name) for name in names} == parallel
