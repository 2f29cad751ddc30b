"""nbgrader's execution split in two: run in a sandbox (a worker), record in the course (parent).

nbgrader's ``autograde`` restores the test cells, executes the notebook and saves the scores in one
process, with the kernel in the course folder. Here the execution is a separate step:

* :class:`SandboxedExecute` (in a worker, in a private scratch copy of the course) runs the
  notebook in a :class:`~tools.grading.sandbox.SandboxedKernelManager`, checks for tampering
  before each test cell (:mod:`tools.grading.tamper`), turns a kernel that died or ran out of
  time into failed test cells (never into silently passing ones), and writes the executed
  notebook and a report to ``record_folder``.
* :class:`ReplayExecute` (in the grading process, in the real course) takes the recorded notebook
  in place of executing, removes active content from what the student wrote or printed (scripts
  would run in the instructor's formgrader page), puts the grader's notes in a cell at the top,
  and lets nbgrader's own ``SaveAutoGrades`` write the gradebook. No student code runs here.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_core.utils import run_sync
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer, Unicode

from tools.grading import tamper
from tools.grading.sandbox import Limits, SandboxedKernelManager

__all__ = ["ReplayExecute", "SandboxedExecute", "sanitise"]

SAFE_MIME = ("text/plain", "image/png", "image/jpeg", "image/gif")
NOTES_MARKER = "**Autograder notes**"


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _error(ename: str, message: str) -> NotebookNode:
    return NotebookNode(
        output_type="error", ename=ename, evalue=message, traceback=[f"{ename}: {message}"]
    )


class SandboxedExecute(Execute):
    """nbgrader's ``Execute`` with the kernel in a sandbox and tamper checks before test cells."""

    record_folder = Unicode("", help="where the executed notebooks and reports go").tag(config=True)
    sandbox = Unicode("bwrap", help="'bwrap' or 'none' (no sandbox: weaker)").tag(config=True)
    memory_bytes = Integer(Limits.memory_bytes).tag(config=True)
    notebook_seconds = Integer(Limits.seconds, help="wall-clock limit per notebook").tag(
        config=True
    )

    def preprocess(self, nb, resources=None, km=None):
        source = Path(resources["metadata"]["path"])
        scratch = Path(tempfile.mkdtemp(prefix="sbi-grading-scratch-"))
        for path in source.iterdir():  # the data files, never a notebook
            if path.is_file() and path.suffix != ".ipynb" and path.name != "timestamp.txt":
                shutil.copy(path, scratch / path.name)
            elif path.is_dir() and path.name not in (".ipynb_checkpoints", "__pycache__"):
                shutil.copytree(path, scratch / path.name, ignore=shutil.ignore_patterns("*.ipynb"))
        self.kernel_manager_class = type(
            "ConfiguredSandboxedKernelManager",
            (SandboxedKernelManager,),
            {
                "scratch": Unicode(str(scratch)),
                "sandbox": Unicode(self.sandbox),
                "memory_bytes": Integer(self.memory_bytes),
                "seconds": Integer(self.notebook_seconds),
            },
        )
        self._report = {"tampering": [], "kernel": None}
        self._done: set[int] = set()
        self._baseline = False
        self._student_ran = False
        start = time.perf_counter()
        try:
            nb, resources = super().preprocess(nb, resources, km=km)
        except DeadKernelError as error:
            self._report["kernel"] = (
                f"the kernel died after {time.perf_counter() - start:.0f} s: it used more than "
                f"{self.memory_bytes / 2**30:g} GiB of memory, ran longer than the notebook's "
                f"limit of {self.notebook_seconds} s, or crashed ({error})"
            )
            nb = self.nb
            for index, cell in enumerate(nb.cells):
                if (
                    cell.cell_type == "code"
                    and _meta(cell).get("grade")
                    and index not in self._done
                ):
                    cell.outputs = [
                        *cell.get("outputs", []),
                        _error("KernelDied", self._report["kernel"]),
                    ]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if self.record_folder:
            folder = Path(self.record_folder)
            folder.mkdir(parents=True, exist_ok=True)
            name = resources["unique_key"]
            (folder / f"{name}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
            (folder / f"{name}.json").write_text(json.dumps(self._report), encoding="utf-8")
        return nb, resources

    async def _silent(self, code: str, expressions: dict | None = None, timeout: float = 120):
        msg_id = self.kc.execute(
            code, silent=True, store_history=False, user_expressions=expressions or {}
        )
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"content": {"status": "error", "ename": "no answer in time"}}
            try:
                msg = await self.kc.get_shell_msg(timeout=remaining)
            except (TimeoutError, Exception):  # queue.Empty
                if not await self.km.is_alive():
                    raise DeadKernelError("the kernel died") from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if not self._baseline:
            self._baseline = True
            reply = await self._silent(tamper.BASELINE)
            if reply["content"].get("status") != "ok":
                self._report["tampering"].append(
                    {"cell": None, "found": ["the grader could not record the kernel's state"]}
                )
        meta = _meta(cell)
        if cell.cell_type == "code" and meta.get("grade"):
            reply = await self._silent(tamper.CHECK, {tamper.RESULT: tamper.CHECK_EXPRESSION})
            found = tamper.parse(reply)
            if found:
                self._report["tampering"].append({"cell": meta.get("grade_id"), "found": found})
            if self._report["tampering"]:
                cell.outputs = [
                    _error(
                        "TamperingDetected",
                        "not run: an earlier cell altered the grading machinery ("
                        + "; ".join(self._report["tampering"][0]["found"])
                        + "). Flagged for review by the instructor.",
                    )
                ]
                cell.execution_count = None
                self._done.add(cell_index)
                return cell
        result = await super().async_execute_cell(
            cell, cell_index, execution_count=execution_count, store_history=store_history
        )
        self._done.add(cell_index)
        if cell.cell_type == "code" and not meta.get("locked"):
            self._student_ran = True
        elif cell.cell_type == "code" and not meta.get("grade") and not self._student_ran:
            # the instructor's set-up cell, before any student code: what its imports do to
            # torch & co. (some wrap torch.manual_seed) is part of the baseline
            await self._silent(tamper.BASELINE)
        return result

    # nbclient binds its synchronous ``execute_cell`` to the base class's coroutine
    execute_cell = run_sync(async_execute_cell)


_TAG = re.compile(r"<(?=[A-Za-z/!?])")


def sanitise(nb) -> int:
    """Remove active content from a notebook's student parts; returns how many items changed.

    Outputs keep only plain text and raster images (no HTML, JavaScript, SVG, Markdown or
    widgets); Markdown the student wrote (answer cells, cells without nbgrader metadata) has
    its HTML tags escaped, so it shows as text in formgrader and the feedback pages.
    """
    changed = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data:
                unsafe = [k for k in data if k not in SAFE_MIME]
                for key in unsafe:
                    del data[key]
                changed += len(unsafe)
                if not data:
                    data["text/plain"] = "[output removed by the grader: active content]"
            output.get("metadata", {}).clear()
        meta = _meta(cell)
        student = not meta or (meta.get("solution") and not meta.get("locked"))
        if cell.cell_type in ("markdown", "raw") and student:
            escaped = _TAG.sub("&lt;", cell.source)
            changed += escaped != cell.source
            cell.source = escaped
            cell.pop("attachments", None)
    return changed


class ReplayExecute(NbGraderPreprocessor):
    """Take the notebook executed by a worker instead of executing (see the module's docstring)."""

    record_folder = Unicode("", help="the worker's executed notebooks and reports").tag(config=True)

    def preprocess(self, nb, resources):
        name = resources["unique_key"]
        folder = Path(self.record_folder)
        executed = nbformat.from_dict(json.loads((folder / f"{name}.ipynb").read_text("utf-8")))
        report = json.loads((folder / f"{name}.json").read_text("utf-8"))

        def ids(notebook):
            return [(c.cell_type, _meta(c).get("grade_id")) for c in notebook.cells]

        if ids(executed) != ids(nb):
            raise ValueError(f"{name}: the executed notebook does not match the submission")
        for mine, theirs in zip(nb.cells, executed.cells, strict=True):
            if _meta(mine).get("grade") or _meta(mine).get("locked"):
                if mine.source != theirs.source:
                    raise ValueError(f"{name}: a test cell differs from the gradebook's")
        sanitise(executed)
        notes = list(report.get("notes", []))
        for item in report.get("tampering", []):
            where = f"before {item['cell']}" if item["cell"] else "at the start"
            notes.append(f"Tampering found {where}: {'; '.join(item['found'])}.")
        if report.get("kernel"):
            notes.append(f"The notebook stopped early: {report['kernel']}.")
        if notes:
            text = "\n".join(f"* {n}" for n in notes)
            executed.cells.insert(
                0,
                NotebookNode(
                    cell_type="markdown",
                    id="sbi-grading-notes",
                    metadata={},
                    source=(
                        f"{NOTES_MARKER} (added by the grader, not part of your "
                        f"notebook):\n\n{text}"
                    ),
                ),
            )
        return executed, resources
