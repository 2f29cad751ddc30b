"""Paper copies of an exam: a question sheet and an answer key per student id, as PDF.

The page is HTML printed to PDF by headless Chromium (``chromium --headless --print-to-pdf``;
Debian's package, nothing downloaded). The maths is rendered before Chromium sees it, by
matplotlib's mathtext (a TeX subset, ``matplotlib.mathtext.math_to_image``) into inline SVG,
so the PDF needs no network, no MathJax and no LaTeX installation; ``tests/test_exams.py`` checks
that every item's maths parses. The key comes from the same ``Item.answer`` whose ``solve``
functions the hidden tests hold, so the key for an id is what the autograder expects for it.
"""

from __future__ import annotations

import html
import io
import re
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from tools.exams.bank import Exam
from tools.exams.items import Item

__all__ = ["chromium", "exam_html", "math_svg", "markdown_html", "render_pdf", "variant_id"]

_CSS = """
@page { size: A4; margin: 16mm 16mm 18mm 16mm; }
body { font-family: "DejaVu Serif", Georgia, serif; font-size: 11pt; line-height: 1.45; }
h1 { font-size: 16pt; margin: 0 0 4pt 0; }
.meta { border: 1px solid #444; padding: 6pt 8pt; margin: 8pt 0 12pt 0; }
.question { break-inside: avoid; margin: 0 0 12pt 0; }
.question h2 { font-size: 12pt; margin: 0 0 3pt 0; }
ul { margin: 4pt 0; padding-left: 18pt; list-style: none; }
li { margin: 2pt 0; }
.answer { margin-top: 6pt; }
.box { border: 1px solid #444; height: 42mm; margin-top: 4pt; }
.key { background: #eef5ee; border-left: 3pt solid #3a3; padding: 4pt 8pt; margin-top: 4pt; }
svg.math { vertical-align: middle; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 10pt; }
"""


def variant_id(variant: int | str) -> str:
    """The student id that stands for a numbered variant (for paper exams without ids)."""
    return f"variant-{variant}"


@lru_cache(maxsize=4096)
def math_svg(tex: str) -> str:
    """Inline SVG of the TeX formula ``tex`` (without dollars), by matplotlib's mathtext.

    Raises:
        ValueError: when mathtext cannot parse ``tex``.
    """
    import matplotlib
    from matplotlib import mathtext
    from matplotlib.font_manager import FontProperties

    buffer = io.BytesIO()
    try:
        with matplotlib.rc_context({"mathtext.fontset": "cm", "svg.fonttype": "path"}):
            mathtext.math_to_image(
                f"${tex}$", buffer, prop=FontProperties(size=12), dpi=72, format="svg"
            )
    except ValueError as error:
        raise ValueError(f"math_svg: cannot render ${tex}$: {error}") from error
    svg = buffer.getvalue().decode()
    svg = svg[svg.index("<svg") :]
    return svg.replace("<svg ", '<svg class="math" ', 1)


def _inline(text: str) -> str:
    parts = re.split(r"(\$[^$]+\$)", text)
    out = []
    for part in parts:
        if len(part) > 2 and part.startswith("$") and part.endswith("$"):
            out.append(math_svg(part[1:-1]))
            continue
        part = html.escape(part)
        part = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", part)
        part = re.sub(r"\*(.+?)\*", r"<i>\1</i>", part)
        part = re.sub(r"`(.+?)`", r"<code>\1</code>", part)
        out.append(part)
    return "".join(out)


def markdown_html(text: str) -> str:
    """HTML of the small Markdown subset the bank uses: paragraphs, ``- `` lists, bold, code,
    and ``$...$`` maths (as SVG)."""
    blocks, items = [], []
    for line in text.split("\n"):
        if line.startswith("- "):
            items.append(f"<li>{_inline(line[2:])}</li>")
            continue
        if items:
            blocks.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if line.strip():
            blocks.append(f"<p>{_inline(line)}</p>")
    if items:
        blocks.append("<ul>" + "".join(items) + "</ul>")
    return "\n".join(blocks)


def _key_text(it: Item, exam: Exam, student_id: str) -> str:
    answer = it.answer(exam.name, student_id)
    if it.kind == "mc":
        return f"**Answer:** {answer}"
    if it.kind == "num":
        tol = it.tol + it.rtol * abs(answer)
        return f"**Answer:** `{answer:.6g}` (accepted within ±`{tol:.3g}`)"
    return f"**Model answer.** {it.model_answer}\n\n**Rubric.** {it.rubric}"


def exam_html(exam: Exam, student_id: str, key: bool = False) -> str:
    """The question sheet (or, with ``key``, the answer key) of ``student_id`` as HTML."""
    kind = "Answer key" if key else "Question sheet"
    head = (
        f"<h1>{html.escape(exam.title)}</h1>"
        f'<div class="meta">{kind} &middot; student id / variant: <b>{html.escape(student_id)}'
        f"</b> &middot; {exam.minutes} minutes &middot; {exam.points} points"
        + ("" if key else "<br>Name: ________________________________")
        + "</div>"
    )
    if not key:
        head += markdown_html(
            "Multiple choice: write one letter. Numbers: give the digits asked for. Written "
            "questions: answer in the box. A calculator is allowed."
        )
    body = []
    for k, it in enumerate(exam.items, start=1):
        p = it.variant(exam.name, student_id)
        points = f"{it.points} point{'s' if it.points > 1 else ''}"
        parts = [
            f'<div class="question"><h2>Question {k} ({points}): {html.escape(it.topic)}</h2>',
            markdown_html(it.text(p)),
        ]
        if key:
            parts.append(f'<div class="key">{markdown_html(_key_text(it, exam, student_id))}</div>')
        elif it.kind == "text":
            parts.append('<div class="box"></div>')
        else:
            parts.append('<div class="answer">Answer: ______________________</div>')
        parts.append("</div>")
        body.append("\n".join(parts))
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(exam.name)} {html.escape(student_id)}</title>"
        f"<style>{_CSS}</style></head><body>{head}{''.join(body)}</body></html>"
    )


def chromium() -> str:
    """The path of the Chromium executable.

    Raises:
        FileNotFoundError: when neither ``chromium`` nor ``chromium-browser`` is on PATH.
    """
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError("chromium: not found on PATH; install it with apt-get install chromium")


def render_pdf(html_text: str, out: str | Path, timeout: float = 120) -> Path:
    """Print ``html_text`` to the PDF file ``out`` with headless Chromium."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sbi-course-exam-") as tmp:
        page = Path(tmp) / "exam.html"
        page.write_text(html_text, encoding="utf-8")
        command = [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if not out.is_file() or out.stat().st_size == 0:
        raise RuntimeError(f"render_pdf: Chromium wrote no PDF:\n{result.stderr[-2000:]}")
    return out
