"""Instructor tooling for the course's nbgrader homework.

The homework lives in ``solutions/<assignment>/`` as nbgrader *source* notebooks: answers between
``### BEGIN SOLUTION`` and ``### END SOLUTION``, visible tests, and hidden tests between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``. ``exercises/`` is what
``nbgrader generate_assignment`` makes of them, committed for students. Run from the course root::

    python -m tools.grading generate [ASSIGNMENT ...]  # check, then solutions/ -> exercises/
    python -m tools.grading check [ASSIGNMENT ...]     # exit 1 on a broken or stale assignment
    python -m tools.grading demo [ASSIGNMENT ...]      # autograde synthetic students

``generate`` also records the assignment in ``gradebook.db``, which ``nbgrader autograde`` needs.
``demo`` builds a throw-away course, submits synthetic students of different quality (all correct,
blank, one answer right, tampered tests, endless loops, exceptions, syntax errors, ``sys.exit``),
autogrades all of them in one nbgrader call and prints the grades next to the expected ones.

The conventions an assignment must follow (checked by :func:`check_source`) are in
``docs/INSTRUCTORS.md``. In short: each autograded answer is one or more solution cells followed
by the locked test cells that test it and nothing else; the points table in the introduction
agrees with the cell metadata.

Test cells call :func:`sbi_course.grading.assert_own_implementation` (the one student-facing
check, kept in the library because the notebooks import it) to stop an answer that merely calls
the course package's reference implementation. Importing this package is cheap: nbgrader is only
imported by the functions that need it.

Modules: :mod:`~tools.grading.notebooks` (answer groups and the rules for a source
notebook), :mod:`~tools.grading.course` (configuration, release, staleness),
:mod:`~tools.grading.synthetic` (synthetic students), :mod:`~tools.grading.autograde`
(a throw-away course that grades them), :mod:`~sbi_course.grading` and
:mod:`~tools.grading.cli`.
"""

from tools.grading.autograde import CellTimeouts, GradingRun, grade_synthetic
from tools.grading.course import (
    assignments,
    find_course_root,
    generate,
    load_config,
    normalised,
    stale_exercises,
)
from tools.grading.notebooks import AnswerGroup, answer_groups, check_source, manual_cells
from tools.grading.synthetic import FAILURE_MODES, SyntheticStudent, synthetic_students

__all__ = [
    "FAILURE_MODES",
    "AnswerGroup",
    "CellTimeouts",
    "GradingRun",
    "SyntheticStudent",
    "answer_groups",
    "assignments",
    "check_source",
    "find_course_root",
    "generate",
    "grade_synthetic",
    "load_config",
    "manual_cells",
    "normalised",
    "stale_exercises",
    "synthetic_students",
]
