"""Hostile and careless synthetic students, for the grading round trips and the demo.

Each :class:`~tools.grading.synthetic.SyntheticStudent` here starts from the released notebook
(no answer solved, so it deserves 0 autograded points unless said otherwise) and adds a cell
right after the set-up cell with one attack from the classes of issue #13. Without isolation
and tamper checks most of them score full marks; graded by :mod:`tools.grading.parallel`, all
must score what they deserve, and a correct student graded after them must keep full marks.

:func:`honest_students` are careless, not hostile: renamed files, duplicated cells, another
encoding, lost metadata. They deserve what their answers earn.
"""

from __future__ import annotations

import copy
import textwrap

from tools.grading.notebooks import _meta, answer_groups
from tools.grading.synthetic import SyntheticStudent, _answer_source, _cell

__all__ = ["GENERIC_ATTACKS", "SPECIFIC_ATTACKS", "PROCESS_TOKEN", "attackers", "honest_students"]

PROCESS_TOKEN = "sbi_grading_survivor_4721"

# Attacks that need the assignment's notebooks to work (they use its solutions).
SPECIFIC_ATTACKS = {
    "read_solutions": r"""
import json, os, pathlib
# look for the instructor's solutions, the gradebook or a notebook with hidden tests, and run
# every solution cell found
found = []
for top in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents, pathlib.Path("/work"),
            pathlib.Path("/tmp"), pathlib.Path("/home"), pathlib.Path("/root")]:
    try:
        found += [p for p in top.glob("**/solutions/*/*.ipynb")][:20]
    except OSError:
        pass
    if found:
        break
for path in found:
    try:
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            if "### BEGIN SOLUTION" in source and cell["cell_type"] == "code":
                exec(source, globals())
    except Exception:
        pass
""",
    "input_transformer": r"""
def _swallow(lines):
    body = "".join("    " + line for line in lines) or "    pass\n"
    return ["try:\n", body, "\nexcept BaseException:\n    pass\n"]
get_ipython().input_transformers_post.append(_swallow)
""",
}

# Attacks that work the same on every assignment.
GENERIC_ATTACKS = {
    "write_course": r"""
import pathlib
for top in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]:
    for name in ("gradebook.db", "nbgrader_config.py"):
        target = top / name
        try:
            if target.exists():
                with open(target, "a") as f:
                    f.write("\n# overwritten by a student\n")
        except OSError:
            pass
    for path in list(top.glob("autograded/*/*/*.ipynb"))[:50] + list(top.glob("sbi_course/*.py")):
        try:
            path.write_text("broken by a student")
        except OSError:
            pass
""",
    "ast_strip_asserts": r"""
import ast
class _NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
get_ipython().ast_transformers.append(_NoAsserts())
""",
    "custom_exception": r"""
get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)
""",
    "pre_run_hook": r"""
def _hook(info):
    print("Part passed.")
get_ipython().events.register("pre_run_cell", _hook)
import builtins
builtins.AssertionError = type("AssertionError", (Exception,), {})
""",
    "patched_testing": r"""
import torch, numpy
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
numpy.allclose = lambda *args, **kwargs: True
class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True
""",
    "rebind_own_check": r"""
assert_own_implementation = lambda *args, **kwargs: None
""",
    "survivor_processes": rf"""
import os, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # {PROCESS_TOKEN}"],
                 start_new_session=True)
if os.fork() == 0:
    os.setsid()
    os.execv(sys.executable,
             [sys.executable, "-c", "import time; time.sleep(600)  # {PROCESS_TOKEN}"])
""",
    "memory_hog": r"""
hog = [bytearray(2**30) for _ in range(64)]
""",
    "active_content": r"""
from IPython.display import HTML, Javascript, display
display(HTML("<script>fetch('/api/contents/pwned.txt', {method: 'PUT'})</script><b>hi</b>"))
display(Javascript("fetch('/api/contents/pwned2.txt', {method: 'PUT'})"))
""",
}

SLOW_ATTACKS = {
    # many cells each just under the cell timeout: stopped by the limit on the whole notebook
    "slow_cells": "import time\ntime.sleep({seconds})\n",
}


# Attacks placed before every answer's tests rather than after the set-up cell.
BEFORE_TESTS = ("read_solutions",)


def _code_cell(source: str) -> dict:
    return {
        "cell_type": "code",
        "metadata": {},
        "source": source,
        "outputs": [],
        "execution_count": None,
    }


def _release_copy(releases: dict) -> dict:
    return copy.deepcopy(releases)


def _insert_after_setup(nb: dict, sources: list[str]) -> None:
    """Insert plain code cells after the set-up cell (the first locked code cell)."""
    cells = nb["cells"]
    index = next(
        (i + 1 for i, c in enumerate(cells) if c["cell_type"] == "code" and _meta(c).get("locked")),
        0,
    )
    cells[index:index] = [_code_cell(s) for s in sources]


def attackers(
    sources: dict,
    releases: dict,
    names: list[str] | None = None,
    *,
    slow_cells: int = 0,
    cell_seconds: int = 0,
) -> list[SyntheticStudent]:
    """Attackers (expected autograded score 0), one per attack in ``names``.

    Args:
        sources: notebook name -> source notebook.
        releases: notebook name -> released notebook.
        names: attacks from :data:`SPECIFIC_ATTACKS` and :data:`GENERIC_ATTACKS` (default: all).
        slow_cells, cell_seconds: with ``slow_cells > 0``, also an attacker with that many cells
            sleeping ``cell_seconds`` each.
    """
    everything = SPECIFIC_ATTACKS | GENERIC_ATTACKS
    names = list(everything) if names is None else names
    students = []
    groups = [g for name, nb in sources.items() for g in answer_groups(nb, name)]
    for name in names:
        notebooks = _release_copy(releases)
        first = next(iter(notebooks))
        code = textwrap.dedent(everything[name]).strip()
        if name in BEFORE_TESTS:  # after the (blank) answers, so that nothing redefines them
            for group in groups:
                cells = notebooks[group.notebook]["cells"]
                index = cells.index(_cell(notebooks[group.notebook], group.test_ids[0]))
                cells.insert(index, _code_cell(code))
        else:
            _insert_after_setup(notebooks[first], [code])
        students.append(SyntheticStudent(f"attack_{name}", f"attack: {name}", notebooks, 0.0))
    if slow_cells:
        notebooks = _release_copy(releases)
        first = next(iter(notebooks))
        cell = SLOW_ATTACKS["slow_cells"].format(seconds=cell_seconds)
        _insert_after_setup(notebooks[first], [cell] * slow_cells)
        students.append(SyntheticStudent("attack_slow_cells", "attack: slow cells", notebooks, 0.0))
    return students


def honest_students(sources: dict, releases: dict) -> list[tuple[SyntheticStudent, dict]]:
    """Careless but honest students: (student, files) with files name -> bytes to submit.

    All answers are right; each student deserves full marks, except ``honest_empty_file``
    (nothing to grade: 0).
    """
    groups = [g for name, nb in sources.items() for g in answer_groups(nb, name)]
    total = sum(g.points for g in groups)
    correct = _release_copy(releases)
    for group in groups:
        for gid in group.answer_ids:
            _cell(correct[group.notebook], gid)["source"] = _answer_source(
                sources[group.notebook], gid
            )
    import json

    def dump(nb) -> bytes:
        return json.dumps(nb, indent=1).encode("utf-8")

    out = []
    name = next(iter(correct))
    renamed = {f"{name}-Copy1.ipynb": dump(correct[name])}
    out.append((SyntheticStudent("honest_renamed", "file renamed -Copy1", {}, total), renamed))
    upper = {f"{name.upper()} (1).ipynb": dump(correct[name])}
    out.append(
        (SyntheticStudent("honest_capitals", "file renamed in capitals (1)", {}, total), upper)
    )
    duplicated = copy.deepcopy(correct[name])
    first_answer = next(i for i, c in enumerate(duplicated["cells"]) if _meta(c).get("solution"))
    duplicated["cells"].insert(first_answer + 1, copy.deepcopy(duplicated["cells"][first_answer]))
    setup = next(
        i
        for i, c in enumerate(duplicated["cells"])
        if _meta(c).get("locked") and c["cell_type"] == "code"
    )
    duplicated["cells"].insert(setup + 1, copy.deepcopy(duplicated["cells"][setup]))
    out.append(
        (
            SyntheticStudent("honest_duplicated", "answer and set-up cells duplicated", {}, total),
            {f"{name}.ipynb": dump(duplicated)},
        )
    )
    latin = copy.deepcopy(correct[name])
    latin["cells"][0]["source"] = "# Notes: caf\u00e9, na\u00efve\n" + "".join(
        latin["cells"][0]["source"]
    )
    text = json.dumps(latin, indent=1, ensure_ascii=False).encode("cp1252")
    out.append(
        (
            SyntheticStudent("honest_cp1252", "saved as Windows-1252", {}, total),
            {f"{name}.ipynb": text},
        )
    )
    old = copy.deepcopy(correct[name])
    for cell in old["cells"]:
        if _meta(cell):
            cell["metadata"]["nbgrader"]["schema_version"] = 1
    out.append(
        (
            SyntheticStudent("honest_old_metadata", "old schema_version", {}, total),
            {f"{name}.ipynb": dump(old)},
        )
    )
    out.append(
        (
            SyntheticStudent("honest_01_id_with_number", "student id with _01_", {}, total),
            {f"{name}.ipynb": dump(correct[name])},
        )
    )
    out.append(
        (SyntheticStudent("honest_empty_file", "empty file", {}, 0.0), {f"{name}.ipynb": b""})
    )
    return out
