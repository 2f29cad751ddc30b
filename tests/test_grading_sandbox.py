"""The grading sandbox on its own: a kernel in bubblewrap, without torch (a few seconds each).

What the kernel sees (no course folder, no network, an unprivileged user), the limits (memory,
whole-notebook time) and that no process survives it; then the pieces that need no kernel: the
sanitising of active content and the repairs of honest students' files.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from tools.grading.sandbox import SandboxedKernelManager, sandbox_support

ROOT = Path(__file__).resolve().parents[1]
needs_sandbox = pytest.mark.skipif(
    sandbox_support() is not None, reason=f"no sandbox: {sandbox_support()}"
)


def _run(sources: list[str], *, seconds: int = 120, memory: int | None = None, timeout: int = 30):
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    scratch = tempfile.mkdtemp(prefix="sbi-grading-test-")
    (Path(scratch) / "data.txt").write_text("student data")
    kwargs = {"scratch": scratch, "seconds": seconds}
    if memory:
        kwargs["memory_bytes"] = memory
    client = NotebookClient(
        nb, km=SandboxedKernelManager(**kwargs), timeout=timeout, allow_errors=True
    )
    client.execute()
    return [
        "".join(o.get("text", "") or f"{o.get('ename')}: {o.get('evalue')}" for o in c.outputs)
        for c in nb.cells
    ]


@needs_sandbox
def test_the_kernel_sees_no_course_no_network_and_is_nobody():
    out = _run(
        [
            "import os, pathlib, socket",
            # The course's files are invisible (its folder may exist, empty, as the parent of a
            # virtual environment that lives inside the course folder, as in CI).
            f"root = pathlib.Path({str(ROOT)!r})\n"
            "print([p.name for p in (root / 'solutions', root / 'nbgrader_config.py', "
            "root / 'sbi_course') if p.exists()], sorted(os.listdir('.')))",
            "print(os.getuid(), os.getcwd())",
            # No network: the only interface in the sandbox's namespace is an unconfigured
            # loopback (no packet is sent anywhere to check this).
            "print('no network', [name for _, name in socket.if_nameindex()])",
            "try:\n    open('/usr/evil', 'w')\nexcept OSError as e:\n    print('read-only')",
            "import sbi_course.grading; print('library ok')",
        ]
    )
    assert out[1].strip() == "[] ['data.txt']"
    assert out[2].strip() == "65534 /submission"
    assert out[3].strip() == "no network ['lo']"
    assert out[4].strip() == "read-only"
    assert out[5].strip() == "library ok"


@needs_sandbox
def test_notebook_time_limit_and_no_survivors():
    from nbclient.exceptions import DeadKernelError

    token = "sbi_grading_sandbox_test_survivor"
    start = time.perf_counter()
    with pytest.raises(DeadKernelError):
        _run(
            [
                "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', "
                f"'import time; time.sleep(300)  # {token}'], start_new_session=True)",
                "import time\ntime.sleep(4)",
                "time.sleep(4)",
                "time.sleep(4)",
            ],
            seconds=8,
            timeout=6,
        )
    assert time.perf_counter() - start < 60
    time.sleep(0.5)
    alive = [p for p in Path("/proc").glob("[0-9]*/cmdline") if _has(p, token)]
    assert alive == []


def _has(path: Path, token: str) -> bool:
    try:
        return token.encode() in path.read_bytes()
    except OSError:
        return False


@needs_sandbox
def test_memory_limit():
    out = _run(
        ["try:\n    hog = bytearray(3 * 2**30)\nexcept MemoryError:\n    print('MemoryError')"],
        memory=2 * 2**30,
    )
    assert out[0].strip() == "MemoryError"


def test_active_content_is_removed_and_student_markdown_escaped():
    from tools.grading.execute import sanitise

    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("x")
    code.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/html": "<script>bad()</script>", "text/plain": "ok", "image/svg+xml": ""},
        ),
        nbformat.v4.new_output("display_data", data={"application/javascript": "bad()"}),
    ]
    answer = nbformat.v4.new_markdown_cell("<img src=x onerror=bad()> and $a < b$")
    answer.metadata["nbgrader"] = {"solution": True, "grade": True, "grade_id": "w"}
    instructor = nbformat.v4.new_markdown_cell("<b>instructions</b>")
    instructor.metadata["nbgrader"] = {"locked": True, "grade_id": "i"}
    nb.cells = [code, answer, instructor]
    assert sanitise(nb) == 4
    assert code.outputs[0].data == {"text/plain": "ok"}
    assert "javascript" not in json.dumps(code.outputs[1].data)
    assert answer.source == "&lt;img src=x onerror=bad()> and $a < b$"
    assert instructor.source == "<b>instructions</b>"


def test_honest_mistakes_are_repaired_with_notes(tmp_path):
    from tools.grading.submissions import normalise

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 'caf\u00e9'")
    cell.metadata["nbgrader"] = {"grade_id": "a", "solution": True, "schema_version": 1}
    nb.cells = [cell, nbformat.v4.new_code_cell(cell.source, metadata=dict(cell.metadata))]
    source = tmp_path / "in"
    source.mkdir()
    (source / "02_ABC (1).ipynb").write_bytes(nbformat.writes(nb).encode("cp1252"))
    (source / "data.csv").write_text("1,2")
    notes = normalise(source, tmp_path / "out", ["02_abc"])
    text = " ".join(notes)
    assert "renamed" in text and "Windows-1252" in text and "twice" in text and "old" in text
    fixed = nbformat.read(tmp_path / "out" / "02_abc.ipynb", as_version=4)
    assert fixed.cells[0].metadata.nbgrader["schema_version"] == 3
    assert "nbgrader" not in fixed.cells[1].metadata
    assert fixed.cells[0].source == "x = 'caf\u00e9'"
    assert (tmp_path / "out" / "data.csv").read_text() == "1,2"
    (source / "02_ABC (1).ipynb").write_bytes(b"")
    assert "empty" in " ".join(normalise(source, tmp_path / "again", ["02_abc"]))


def test_workers_must_be_a_positive_integer():
    from tools.grading.parallel import autograde

    with pytest.raises(ValueError, match="autograde: workers must be a positive integer, got 0"):
        autograde(ROOT, "02_abc", workers=0)


def test_zip_collect_refuses_a_second_upload_and_reads_ids_with_numbers():
    from tools.grading.collect import UniqueCollector
    from tools.grading.course import load_config

    collector = UniqueCollector(config=load_config(ROOT))
    first = collector.collect("/x/ann_02_smith_02_abc.ipynb")
    assert first["student_id"] == "ann_02_smith" and first["file_id"] == "02_abc.ipynb"
    renamed = collector.collect("/x/bob_02_ABC-Copy1.ipynb")
    assert renamed["student_id"] == "bob"
    assert collector.collect("/x/bob_02_abc.ipynb") is None  # a second upload for bob
    assert "refused a second upload for student 'bob'" in collector.refused[0]
    assert collector.collect("/x/carol_02_abc.ipynb")["student_id"] == "carol"
