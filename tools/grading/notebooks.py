"""The structure of an nbgrader source notebook: answers, their tests, points.

An *answer group* is one or more autograded answer cells (``solution`` code cells) followed by
the test cells (``grade`` code cells) that grade them. :func:`check_source` enforces the course's
rules for a source notebook; ``docs/INSTRUCTORS.md`` lists them.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["AnswerGroup", "answer_groups", "check_source", "manual_cells"]

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_MARKERS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
MIN_POINTS, MIN_ANSWERS = 10, 3


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _is_answer(cell) -> bool:
    meta = _meta(cell)
    return cell["cell_type"] == "code" and meta.get("solution", False) and not meta.get("grade")


def _is_test(cell) -> bool:
    meta = _meta(cell)
    return cell["cell_type"] == "code" and meta.get("grade", False) and not meta.get("solution")


@dataclass
class AnswerGroup:
    """One autograded answer: its solution cells and the test cells that grade it."""

    notebook: str
    answer_ids: list[str] = field(default_factory=list)
    test_ids: list[str] = field(default_factory=list)
    points: float = 0.0

    @property
    def name(self) -> str:
        return self.answer_ids[0]


def answer_groups(nb, notebook: str = "") -> list[AnswerGroup]:
    """Group the autograded cells of a notebook: answer cells, then the test cells after them.

    A test cell belongs to the answer cells above it (up to the previous test cell's group).
    """
    groups: list[AnswerGroup] = []
    for cell in nb["cells"]:
        if _is_answer(cell):
            if not groups or groups[-1].test_ids:
                groups.append(AnswerGroup(notebook))
            groups[-1].answer_ids.append(_meta(cell)["grade_id"])
        elif _is_test(cell):
            if not groups:
                raise ValueError(f"test cell {_meta(cell).get('grade_id')} comes before any answer")
            groups[-1].test_ids.append(_meta(cell)["grade_id"])
            groups[-1].points += float(_meta(cell).get("points", 0))
    return groups


def manual_cells(nb) -> dict[str, float]:
    """Manually graded cells (written answers, tasks): grade id -> points."""
    out = {}
    for cell in nb["cells"]:
        meta = _meta(cell)
        if (meta.get("grade") and meta.get("solution")) or meta.get("task"):
            out[meta["grade_id"]] = float(meta.get("points", 0))
    return out


def _strip_markers(source: str, markers: tuple[str, str]) -> str:
    return "\n".join(line for line in source.split("\n") if not any(m in line for m in markers))


def _points_table(nb) -> tuple[dict[str, float], float | None]:
    """Rows ``| ... | `grade_id` | ... | points |`` and the ``total`` row of the introduction."""
    rows, total = {}, None
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for line in cell["source"].split("\n"):
            columns = [c.strip() for c in line.strip().strip("|").split("|")]
            if not line.lstrip().startswith("|") or len(columns) < 2:
                continue
            try:
                points = float(columns[-1].strip("* "))
            except ValueError:
                continue
            ids = re.findall(r"`([A-Za-z0-9_\-]+)`", line)
            if "total" in line.lower():
                total = points
            elif ids:
                rows[ids[0]] = points
    return rows, total


def check_source(path: str | Path) -> list[str]:
    """Problems with an nbgrader source notebook (an empty list when it follows the rules).

    Checks: schema-3 metadata and unique grade ids; answer cells with solution markers; locked
    test cells with points, no trailing bare expression (nbgrader would read its value as
    partial credit), at least one hidden test per answer; at least 3 autograded answers, one
    manually graded answer and 10 points; a points table that matches the metadata.
    """
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    problems: list[str] = []
    seen: set[str] = set()
    for cell in nb.cells:
        meta = _meta(cell)
        if not meta:
            continue
        gid = meta.get("grade_id", "")
        if meta.get("schema_version") != 3:
            problems.append(f"{gid}: nbgrader metadata must have schema_version 3")
        if gid in seen:
            problems.append(f"{gid}: duplicate grade id")
        seen.add(gid)
        if _is_answer(cell) and not all(m in cell.source for m in SOLUTION_MARKERS):
            problems.append(f"{gid}: answer cell without {' / '.join(SOLUTION_MARKERS)}")
        if _is_test(cell):
            if not meta.get("locked"):
                problems.append(f"{gid}: test cells must be locked (read-only)")
            if not float(meta.get("points", 0)) > 0:
                problems.append(f"{gid}: test cell without points")
            try:
                body = ast.parse(_strip_markers(cell.source, HIDDEN_MARKERS)).body
            except SyntaxError as error:
                problems.append(f"{gid}: syntax error in the test cell: {error}")
                continue
            last = body[-1] if body else None
            if isinstance(last, ast.Expr) and not (
                isinstance(last.value, ast.Call) and getattr(last.value.func, "id", "") == "print"
            ):
                problems.append(f"{gid}: ends with a bare expression (nbgrader: partial credit)")
    try:
        groups = answer_groups(nb, path.stem)
    except ValueError as error:
        return problems + [str(error)]
    manual = manual_cells(nb)
    for group in groups:
        if not group.test_ids:
            problems.append(f"{group.name}: answer without test cells after it")
        tests = [c.source for c in nb.cells if _meta(c).get("grade_id") in group.test_ids]
        if not any(HIDDEN_MARKERS[0] in s and HIDDEN_MARKERS[1] in s for s in tests):
            problems.append(f"{group.name}: no hidden tests ({' / '.join(HIDDEN_MARKERS)})")
    if len(groups) < MIN_ANSWERS:
        problems.append(f"{len(groups)} autograded answers, at least {MIN_ANSWERS} wanted")
    if not manual:
        problems.append("no manually graded answer")
    expected = {g.name: g.points for g in groups} | manual
    total = sum(expected.values())
    if total < MIN_POINTS:
        problems.append(f"{total:g} points in all, at least {MIN_POINTS} wanted")
    rows, table_total = _points_table(nb)
    if rows != expected:
        problems.append(f"points table {rows} does not match the metadata {expected}")
    if table_total != total:
        problems.append(f"points table total {table_total} differs from the metadata's {total:g}")
    return problems
