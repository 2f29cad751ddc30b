"""Exam items: a question with per-student numbers, and the rule that computes its answer.

A student's *variant* of an item follows from a string key ``"<exam>:<item>:<student id>"``: the
item's ``params`` function draws its numbers from :class:`Draw`, a stream of uniform numbers
made by SHA-256 of the key and a counter. SHA-256 is the same on every machine and Python
version, so the numbers a student sees in JupyterLab, the numbers on a printed sheet and the
numbers the autograder checks are the same; and a neighbour's numbers differ.

Each item is a few plain functions that the notebook builder copies into the exam notebook by
their source (:func:`inspect.getsource`): ``params(d)`` goes into the released set-up cell (it
only draws the numbers that the question shows), ``solve(p)`` only into the hidden test and the
solution, which nbgrader strips from the release. ``solve`` may use ``math`` and nothing else, so
that a hidden test needs nothing but the standard library at grading time.

Kinds:
    ``mc``: multiple choice; ``choices[0]`` is the right one in the bank, the letters are shuffled
        per variant; the answer is a letter ``"A"``...
    ``num``: a number, right within ``tol`` (absolute) of ``solve(p)``.
    ``text``: a short derivation or explanation graded by hand, with a model answer and rubric.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "KINDS",
    "LETTERS",
    "POINTS",
    "Draw",
    "Item",
    "fill",
    "function_source",
    "render_question",
]

KINDS = ("mc", "num", "text")
POINTS = {"mc": 1, "num": 2, "text": 3}


class Draw:
    """Uniform numbers from SHA-256 of ``key`` and a counter: the same on every machine.

    Args:
        key: the variant's key, ``"<exam>:<item>:<student id>"``.
    """

    def __init__(self, key: str):
        self.key = key
        self.count = 0

    def uniform(self) -> float:
        """The next number in [0, 1)."""
        digest = hashlib.sha256(f"{self.key}:{self.count}".encode()).hexdigest()
        self.count += 1
        return int(digest[:13], 16) / 16**13

    def integer(self, low: int, high: int) -> int:
        """An integer in ``low..high``, both included."""
        return low + int(self.uniform() * (high - low + 1))

    def choice(self, options):
        """One element of the sequence ``options``."""
        return options[int(self.uniform() * len(options))]

    def permutation(self, n: int) -> list[int]:
        """A random order of ``0..n-1`` (Fisher-Yates)."""
        order = list(range(n))
        for i in range(n - 1, 0, -1):
            j = int(self.uniform() * (i + 1))
            order[i], order[j] = order[j], order[i]
        return order


def _no_params(d: Draw) -> dict:
    return {}


@dataclass(frozen=True)
class Item:
    """One exam question.

    Attributes:
        id: unique name, ``w<week>_<topic>``.
        week: 1, 2 or 3.
        topic: the lecture it examines.
        kind: ``"mc"``, ``"num"`` or ``"text"``.
        question: Markdown with LaTeX (``$...$``), ``<<name>>`` placeholders filled from
            ``params``.
        params: ``d -> dict`` of the variant's numbers (:class:`Draw` ``d``).
        solve: ``p -> float`` for ``num`` items (the right answer).
        tol: absolute tolerance of a ``num`` answer.
        rtol: relative tolerance: an answer ``a`` is right when
            ``abs(a - solve(p)) <= tol + rtol * abs(solve(p))``.
        choices: ``mc`` options with ``<<name>>`` placeholders, the right one first.
        model_answer: for ``text`` items, what a full-marks answer says.
        rubric: for ``text`` items, how the points are given.
    """

    id: str
    week: int
    topic: str
    kind: str
    question: str
    params: Callable[[Draw], dict] = _no_params
    solve: Callable[[dict], float] | None = None
    tol: float = 0.0
    rtol: float = 0.0
    choices: tuple[str, ...] = ()
    model_answer: str = ""
    rubric: str = ""
    points: int = field(default=0)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Item {self.id}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "num" and (self.solve is None or self.tol + self.rtol <= 0):
            raise ValueError(f"Item {self.id}: a num item needs solve and a positive tol or rtol")
        if self.kind == "mc" and len(self.choices) < 3:
            raise ValueError(f"Item {self.id}: a mc item needs at least 3 choices")
        if self.kind == "text" and not (self.model_answer and self.rubric):
            raise ValueError(f"Item {self.id}: a text item needs a model answer and a rubric")
        if not self.points:
            object.__setattr__(self, "points", POINTS[self.kind])

    @property
    def shown_choices(self) -> list[str]:
        """The ``mc`` choices sorted alphabetically: the order the released notebook stores.

        The bank lists the right choice first; a released notebook must not, so it stores them
        sorted and only the hidden test knows which one is right (:attr:`right_choice`).
        """
        return sorted(self.choices)

    @property
    def right_choice(self) -> int:
        """Index of the right choice in :attr:`shown_choices`."""
        return self.shown_choices.index(self.choices[0])

    def variant(self, exam: str, student_id: str) -> dict:
        """The numbers of ``student_id``'s variant of this item in ``exam``.

        For ``mc`` items, ``p["order"]`` is the shuffled order of the choices: the letter ``A``
        shows ``shown_choices[order[0]]``.
        """
        d = Draw(f"{exam}:{self.id}:{student_id}")
        p = dict(self.params(d))
        if self.kind == "mc":
            p["order"] = d.permutation(len(self.choices))
        return p

    def answer(self, exam: str, student_id: str):
        """The right answer of ``student_id``'s variant: a letter, a float, or the model answer."""
        p = self.variant(exam, student_id)
        if self.kind == "mc":
            return LETTERS[p["order"].index(self.right_choice)]
        if self.kind == "num":
            return float(self.solve(p))
        return self.model_answer

    def is_right(self, value, exam: str, student_id: str) -> bool:
        """Whether ``value`` earns the points of ``student_id``'s variant (``mc`` and ``num``)."""
        right = self.answer(exam, student_id)
        if self.kind == "mc":
            return value == right
        if self.kind == "num":
            return value is not None and abs(value - right) <= self.tol + self.rtol * abs(right)
        raise ValueError(f"Item.is_right: {self.id} is graded by hand")

    def text(self, p: dict) -> str:
        """The question (Markdown) of the variant ``p``, choices included."""
        return render_question(self.question, self.shown_choices, p)


LETTERS = "ABCDEFGH"


def render_question(question: str, choices: list[str], p: dict) -> str:
    """Markdown of a question with its numbers filled in and its choices in the variant's order."""
    text = fill(question, p) + ("\n" if p.get("order") else "")
    for letter, k in zip("ABCDEFGH", p.get("order", []), strict=False):
        text += f"\n- **{letter}.** " + fill(choices[k], p)
    return text


def fill(template: str, p: dict) -> str:
    """Replace each ``<<name>>`` of ``template`` by ``p[name]`` (floats as written, ``g``)."""
    out = template
    for name, value in p.items():
        text = f"{value:g}" if isinstance(value, float) else str(value)
        out = out.replace(f"<<{name}>>", text)
    if "<<" in out:
        start = out.index("<<")
        raise KeyError(f"fill: no value for {out[start : out.index('>>', start) + 2]}")
    return out


def function_source(function: Callable) -> str:
    """The source of a module-level function, dedented, to paste into a notebook cell."""
    return textwrap.dedent(inspect.getsource(function)).strip()


# ``math`` is what ``solve`` functions may use; keep the import visible for them.
_ = math
