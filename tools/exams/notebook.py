"""Exam notebooks: the nbgrader source of each graded exam and the self-checking mini-test.

A graded exam (``exams/source/<exam>/<exam>.ipynb``) has, after an introduction,

* a cell where the student types ``STUDENT_ID`` (an ordinary cell, not graded);
* a locked set-up cell with the code that turns the id into the variant's numbers
  (:class:`~tools.exams.items.Draw` and each item's ``params``) and shows each question;
* per item: a locked heading, a locked cell that shows the question with the student's numbers,
  and then either an answer cell (``answer_<k> = None``) with a locked test cell, or a Markdown
  answer cell graded by hand.

A test cell checks the answer's *format* in the open (what Validate runs) and its *value* in a
hidden test that nbgrader strips from the release: the hidden test holds the item's ``solve``
function (or which choice is right) and recomputes the variant of the id being graded. At
autograding time that id is nbgrader's student id, the name of the folder
``autograded/<student>/<exam>/`` the kernel starts in (or ``SBI_COURSE_STUDENT_ID`` if set),
not what the student typed: a student who copies a neighbour's notebook is graded on their own
variant. The release therefore holds the questions' numbers but no answer, no hash of one and
no right choice: the choices are stored in alphabetical order and shown in a per-variant order.

The mini-test is a plain notebook (no nbgrader, no id, one fixed variant) whose check cells say
at once whether an answer is right. They compare a salted SHA-256 of the answer (a letter, or a
number rounded to the item's tolerance) with a stored one; with the notebook in hand a
determined student could try every letter, so the mini-test is a self-check, never an exam.
"""

from __future__ import annotations

import hashlib
import math

import nbformat

from tools.exams.bank import Exam
from tools.exams.items import Draw, Item, fill, function_source, render_question

__all__ = ["MINITEST_VARIANT", "exam_notebook", "minitest_notebook", "numeric_step"]

MINITEST_VARIANT = "minitest"
_SALT = "sbi-course-minitest"

_ID_CELL = """\
# Type your student id between the quotes, then run all cells (Run > Run All Cells).
STUDENT_ID = \"\""""

_GRADED_ID = '''\
def _exam_graded_id():
    """The id whose variant is graded: nbgrader's student id when autograding."""
    import os
    from pathlib import Path

    if os.environ.get("SBI_COURSE_STUDENT_ID"):
        return os.environ["SBI_COURSE_STUDENT_ID"]
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        # nbgrader runs the notebook in autograded/<student id>/<exam>/
        return Path(get_ipython().starting_dir).parent.name  # noqa: F821
    return STUDENT_ID'''

_VARIANT = '''\
def _exam_variant(item, student_id):
    """The numbers of one item's variant for one student id."""
    d = Draw(f"{EXAM}:{item}:{student_id}")
    p = dict(_PARAMS[item](d))
    if item in _CHOICES:
        p["order"] = d.permutation(len(_CHOICES[item]))
    return p


def _show(item):
    """Show an item's question with the numbers of the student's variant."""
    from IPython.display import Markdown, display

    if not str(STUDENT_ID).strip():
        print("Type your student id in STUDENT_ID at the top, then run all cells again.")
    p = _exam_variant(item, STUDENT_ID)
    display(Markdown(render_question(_QUESTIONS[item], _CHOICES.get(item, []), p)))'''


def _lock(cell, grade_id: str, **flags):
    meta = {"grade": False, "solution": False, "locked": True, "grade_id": grade_id}
    meta.update(flags)
    meta["schema_version"] = 3
    cell.metadata["nbgrader"] = meta
    return cell


def _setup_source(exam: Exam, variant_code: str, extra: str = "") -> str:
    params = {}
    for it in exam.items:
        params.setdefault(it.params.__name__, function_source(it.params))
    lines = [
        "# Read-only: shows each question with the numbers of your variant. Run it, do not edit.",
        "import hashlib",
        "import math",
        "",
        f"EXAM = {exam.name!r}",
        "",
        function_source(Draw),
        "",
        function_source(fill),
        "",
        function_source(render_question),
        "",
        *[src + "\n" for src in params.values()],
        "_PARAMS = {",
        *[f"    {it.id!r}: {it.params.__name__}," for it in exam.items],
        "}",
        "_QUESTIONS = {",
        *[f"    {it.id!r}: {it.question!r}," for it in exam.items],
        "}",
        "_CHOICES = {",
        *[f"    {it.id!r}: {it.shown_choices!r}," for it in exam.items if it.kind == "mc"],
        "}",
        "",
        variant_code,
    ]
    if extra:
        lines += ["", extra]
    return "\n".join(lines).replace("\n\n\n\n", "\n\n\n") + "\n"


def _intro(exam: Exam) -> str:
    rows = "\n".join(
        f"| {k} | {it.topic} | {dict(mc='multiple choice', num='number', text='written')[it.kind]}"
        f" | {it.points} |"
        for k, it in enumerate(exam.items, start=1)
    )
    return (
        f"# {exam.title}\n\n"
        f"{exam.minutes} minutes, {exam.points} points. Type your student id in the first code "
        "cell and run all cells: each question then shows *your* numbers, which differ from your "
        "neighbours'. Answer multiple-choice questions with one capital letter in quotes "
        '(`answer_1 = "B"`), numeric ones with a number (`answer_2 = 0.123`; a formula such as '
        "`answer_2 = 3 / 7` is fine too), and written ones in the Markdown cell below the "
        "question (LaTeX maths with `$...$` works). Pen, paper and a calculator are allowed, "
        "nothing else. **Validate** checks only the format of your answers, not whether they "
        "are right.\n\n"
        "| question | topic | kind | points |\n|---|---|---|---|\n" + rows
    )


def _hidden_variant(exam: Exam, it: Item) -> str:
    """Hidden-test code that recomputes the graded variant from scratch.

    It redefines what it needs (``Draw``, the item's ``params``, the graded id) instead of
    calling the set-up cell's functions, which a student's answer cell could have replaced.
    """
    lines = [
        "# recomputed here, not taken from names an answer cell could redefine",
        "import hashlib",
        "import math",
        "",
        function_source(Draw),
        "",
        function_source(it.params),
        "",
        _GRADED_ID,
        "",
        f'_d = Draw(f"{exam.name}:{it.id}:{{_exam_graded_id()}}")',
        f"_p = dict({it.params.__name__}(_d))",
    ]
    if it.kind == "mc":
        lines.append(f'_p["order"] = _d.permutation({len(it.choices)})')
    return "\n".join(lines)


def _test_source(exam: Exam, it: Item, k: int) -> str:
    name = f"answer_{k}"
    if it.kind == "mc":
        letters = '", "'.join("ABCDEFGH"[: len(it.choices)])
        visible = (
            f'assert {name} in ("{letters}"), '
            f'"{name} must be one capital letter in quotes, e.g. \\"B\\""'
        )
        check = f'assert {name} == "ABCDEFGH"[_p["order"].index({it.right_choice})]'
    else:
        visible = (
            "import numbers\n\n"
            f"assert isinstance({name}, numbers.Real) and not isinstance({name}, bool), "
            f'"{name} must be a number, e.g. 0.123"\n'
            f'assert math.isfinite({name}), "{name} must be a finite number"'
        )
        check = (
            f"\n\n{function_source(it.solve)}\n\n\n"
            f"_right = {it.solve.__name__}(_p)\n"
            f"assert abs({name} - _right) <= {it.tol!r} + {it.rtol!r} * abs(_right)"
        )
    hidden = f"{_hidden_variant(exam, it)}\n{check}"
    return f"{visible}\n### BEGIN HIDDEN TESTS\n{hidden}\n### END HIDDEN TESTS"


def _solution_source(it: Item, k: int) -> str:
    name = f"answer_{k}"
    hint = "one capital letter in quotes" if it.kind == "mc" else "a number"
    if it.kind == "mc":
        body = (
            f"_order = _exam_variant({it.id!r}, _exam_graded_id())['order']\n"
            f'{name} = "ABCDEFGH"[_order.index({it.right_choice})]'
        )
    else:
        body = (
            f"{function_source(it.solve)}\n\n\n"
            f"{name} = {it.solve.__name__}(_exam_variant({it.id!r}, _exam_graded_id()))"
        )
    return f"{name} = None  # your answer: {hint}\n### BEGIN SOLUTION\n{body}\n### END SOLUTION"


def exam_notebook(exam: Exam) -> nbformat.NotebookNode:
    """The nbgrader source notebook of a graded ``exam`` (answers and hidden tests included)."""
    if not exam.graded:
        raise ValueError(f"exam_notebook: {exam.name} is not graded; use minitest_notebook")
    v4 = nbformat.v4
    cells = [
        _lock(v4.new_markdown_cell(_intro(exam)), "intro"),
        v4.new_code_cell(_ID_CELL),
        _lock(v4.new_code_cell(_setup_source(exam, _VARIANT, _GRADED_ID)), "setup"),
    ]
    for k, it in enumerate(exam.items, start=1):
        heading = f"## Question {k} ({it.points} point{'s' if it.points > 1 else ''}): {it.topic}"
        cells.append(_lock(v4.new_markdown_cell(heading), f"q{k}_heading"))
        cells.append(_lock(v4.new_code_cell(f"_show({it.id!r})"), f"q{k}_question"))
        if it.kind == "text":
            answer = (
                f"**Model answer.** {it.model_answer}\n\n**Rubric ({it.points} points).** "
                f"{it.rubric}"
            )
            cells.append(
                _lock(
                    v4.new_markdown_cell(answer),
                    f"q{k}_answer",
                    grade=True,
                    solution=True,
                    locked=False,
                    points=it.points,
                )
            )
            continue
        cells.append(
            _lock(
                v4.new_code_cell(_solution_source(it, k)),
                f"q{k}_answer",
                solution=True,
                locked=False,
            )
        )
        cells.append(
            _lock(
                v4.new_code_cell(_test_source(exam, it, k)),
                f"q{k}_test",
                grade=True,
                points=it.points,
            )
        )
    cells.append(
        _lock(
            v4.new_markdown_cell(
                "End of the exam. Save the notebook (Ctrl+S) and submit it before the time is up."
            ),
            "end",
        )
    )
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def _notebook(cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def numeric_step(it: Item) -> tuple[str, float]:
    """The grid a mini-test rounds a numeric answer to, which says nothing about the answer.

    ``("abs", tol)``: the answer rounded to multiples of the absolute tolerance; ``("log", rtol)``
    for items with a relative tolerance: the log of the answer rounded to multiples of ``rtol``.
    """
    return ("log", it.rtol) if it.rtol else ("abs", it.tol)


def _token(it: Item, value: float) -> str:
    kind, step = numeric_step(it)
    if kind == "log":
        value = math.log(abs(value))
    return str(round(value / step))


def _digest(item_id: str, token: str) -> str:
    return hashlib.sha256(f"{_SALT}:{item_id}:{token}".encode()).hexdigest()[:16]


_CHECK = '''\
def _check(item, answer):
    """Say at once whether an answer is right (compares salted hashes, stores no answer)."""

    def digest(token):
        return hashlib.sha256(f"{_SALT}:{item}:{token}".encode()).hexdigest()[:16]

    if answer is None:
        print("No answer yet: replace None and run this cell again.")
        return
    if item in _CHOICES:
        right = digest(str(answer).strip().upper()) == _KEY[item]
    else:
        kind, step = _STEP[item]
        value = float(answer)
        if kind == "log":
            value = math.log(abs(value)) if value else -1e9
        k = round(value / step)
        right = any(digest(str(k + j)) == _KEY[item] for j in (-1, 0, 1))
    print("Right!" if right else "Not right. Try again, or note it and move on.")'''


def minitest_notebook(exam: Exam) -> nbformat.NotebookNode:
    """The self-checking mini-test: one fixed variant, immediate feedback, no id, no grading."""
    v4 = nbformat.v4
    keys, steps = {}, {}
    for it in exam.items:
        if it.kind == "text":
            raise ValueError(f"minitest_notebook: {it.id} is a written item and cannot self-check")
        answer = it.answer(exam.name, MINITEST_VARIANT)
        if it.kind == "mc":
            keys[it.id] = _digest(it.id, answer)
        else:
            steps[it.id] = numeric_step(it)
            keys[it.id] = _digest(it.id, _token(it, answer))
    extra = "\n".join(
        [
            f"_SALT = {_SALT!r}",
            f"_KEY = {keys!r}",
            f"_STEP = {steps!r}",
            "",
            _CHECK,
        ]
    )
    setup = _setup_source(exam, _VARIANT, extra)
    intro = (
        f"# {exam.title}\n\n"
        f"{exam.minutes} minutes, anonymous: nobody sees your answers. It shows you and your "
        "teachers where the class starts. Run the next cell, then answer each question in its "
        "cell and run the check below it: it says at once whether your answer is right. "
        'Multiple choice: one capital letter in quotes (`answer_1 = "B"`); numbers: a number '
        "(`answer_2 = 0.123`). Pen, paper and a calculator are allowed."
    )
    cells = [
        v4.new_markdown_cell(intro),
        v4.new_code_cell(f"STUDENT_ID = {MINITEST_VARIANT!r}  # the same numbers for everyone"),
        v4.new_code_cell(setup),
    ]
    for k, it in enumerate(exam.items, start=1):
        cells.append(v4.new_markdown_cell(f"## Question {k}: {it.topic}"))
        cells.append(v4.new_code_cell(f"_show({it.id!r})"))
        hint = "one capital letter in quotes" if it.kind == "mc" else "a number"
        cells.append(v4.new_code_cell(f"answer_{k} = None  # your answer: {hint}"))
        cells.append(v4.new_code_cell(f"_check({it.id!r}, answer_{k})"))
    nb = v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


_ = math
