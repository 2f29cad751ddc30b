"""Synthetic students: submissions of known quality, built from an assignment's notebooks.

Each answer of a synthetic student is right (the solution's code), blank (as released) or broken
by one of :data:`FAILURE_MODES`; test cells may be edited or deleted. A student deserves exactly
the points of its right answers, which is what the autograder must give.
"""

from __future__ import annotations

import ast
import copy
import textwrap
from dataclasses import dataclass, field

from tools.grading.notebooks import SOLUTION_MARKERS, _meta, _strip_markers, answer_groups

__all__ = ["FAILURE_MODES", "SyntheticStudent", "synthetic_students"]

BREAKS = {
    "endless": "while True:  # an endless loop\n    pass",
    "raise": 'raise ValueError("a bug in the student\'s code")',
    "exit": 'import sys; sys.exit("the student\'s code gave up")',
}
FAILURE_MODES = ("endless", "raise", "syntax", "exit")


def _cell(nb, grade_id: str):
    for cell in nb["cells"]:
        if _meta(cell).get("grade_id") == grade_id:
            return cell
    raise KeyError(f"no cell with grade id {grade_id!r}")


def _answer_source(source_nb, grade_id: str) -> str:
    return _strip_markers(_cell(source_nb, grade_id)["source"], SOLUTION_MARKERS)


def _broken(code: str, mode: str) -> str:
    """The solution ``code`` with a failure: a syntax error, or ``BREAKS[mode]`` run first
    thing in every top-level function (or at the top of the cell when it defines none)."""
    if mode == "syntax":
        return "for step in range(3)  # a missing colon\n    pass\n" + code
    statement = BREAKS[mode]
    lines = code.split("\n")
    functions = [n for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]
    if not functions:
        return statement + "\n" + code
    for function in sorted(functions, key=lambda f: f.lineno, reverse=True):
        body = function.body
        has_docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
        first = body[1] if has_docstring and len(body) > 1 else body[0]
        indent = " " * first.col_offset
        lines.insert(first.lineno - 1, textwrap.indent(statement, indent))
    return "\n".join(lines)


@dataclass
class SyntheticStudent:
    """A made-up submission: notebook name -> notebook, and the autograded score it deserves."""

    name: str
    description: str
    notebooks: dict
    expected: float
    broken: dict[str, str] = field(default_factory=dict)  # answer group -> failure mode


def synthetic_students(
    sources: dict, releases: dict, *, modes: tuple[str, ...] = FAILURE_MODES
) -> list[SyntheticStudent]:
    """Submissions of different quality for one assignment, with their exact expected scores.

    Answers are either right (the solution's code), blank (as released) or broken by one of
    ``modes`` (see :data:`FAILURE_MODES`); a student deserves the points of the right answers.

    Args:
        sources: notebook name -> source notebook (``solutions/``).
        releases: notebook name -> released notebook (``exercises/``).
        modes: failure modes to spread over the students.

    Returns:
        ``all_correct``; ``blank``; ``one_right`` (first answer only); ``faulty_1`` (all
        answers but the last broken, one mode each); ``tampered`` (second answer right with its
        test cells deleted, the other answers blank or broken by the modes left over, their
        tests replaced by ``pass`` (first answer) or wrapped to always succeed); and
        ``faulty_2``, ... for modes still left over.
    """
    groups = [g for name, nb in sources.items() for g in answer_groups(nb, name)]
    if len(groups) < 2:
        raise ValueError("synthetic students need at least two autograded answers")
    names = [g.name for g in groups]

    def build(name, answers, edit=None, note=""):
        """``answers``: group name -> None (right) or a failure mode; others stay blank."""
        notebooks = copy.deepcopy(releases)
        for group in groups:
            if group.name in answers:
                for gid in group.answer_ids:
                    code = _answer_source(sources[group.notebook], gid)
                    mode = answers[group.name]
                    cell = _cell(notebooks[group.notebook], gid)
                    cell["source"] = code if mode is None else _broken(code, mode)
        if edit:
            edit(notebooks)
        right = [g for g in names if g in answers and answers[g] is None]
        broken = {g: m for g, m in answers.items() if m is not None}
        parts = [f"right: {', '.join(right) or 'none'}"]
        parts += [f"{mode}: {g}" for g, mode in broken.items()]
        expected = sum(g.points for g in groups if g.name in right)
        description = "; ".join(parts + ([note] if note else []))
        return SyntheticStudent(name, description, notebooks, expected, broken)

    def tamper(notebooks):
        nb = notebooks[groups[1].notebook]
        nb["cells"] = [c for c in nb["cells"] if _meta(c).get("grade_id") not in groups[1].test_ids]
        for k, group in enumerate(g for i, g in enumerate(groups) if i != 1):
            for gid in group.test_ids:
                cell = _cell(notebooks[group.notebook], gid)
                if k == 0:  # replaced by `pass`, metadata edited too
                    cell["source"] = "pass"
                    _meta(cell).update(points=99, locked=False)
                else:  # edited to always succeed
                    body = textwrap.indent(cell["source"] or "pass", "    ")
                    cell["source"] = f"try:\n{body}\nexcept BaseException:\n    pass"

    # every faulty student keeps its last answer right: grading must go on after a failure
    faulty = dict(zip(names[:-1], modes, strict=False)) | {names[-1]: None}
    left = list(modes[len(names) - 1 :])
    others = [g for i, g in enumerate(names) if i != 1]
    tampered = {names[1]: None} | {g: left.pop(0) for g in others[: len(left)]}
    students = [
        build("all_correct", dict.fromkeys(names)),
        build("blank", {}),
        build("one_right", {names[0]: None}),
        build("faulty_1", faulty),
        build("tampered", tampered, tamper, f"tests of {names[1]} deleted, others edited"),
    ]
    while left:
        chunk, left = left[: len(names) - 1], left[len(names) - 1 :]
        answers = dict(zip(names[:-1], chunk, strict=False)) | {names[-1]: None}
        students.append(build(f"faulty_{len(students) - 3}", answers))
    return students
