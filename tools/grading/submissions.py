"""Honest mistakes in a submission, repaired before grading, each with a note for the feedback.

Students rename files (``02_abc-Copy1.ipynb``, ``02_abc (1).ipynb``, ``02_ABC.ipynb``), save them
in another encoding, or use an editor that drops or rewrites nbgrader's cell metadata. nbgrader
grades such a notebook 0 or stops on it; :func:`normalise` copies a submission folder to a
scratch folder with these repaired and says what it did. Nothing it repairs can raise a score
above what the student's code earns: the tests are always the gradebook's.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

__all__ = ["normalise"]

_SUFFIX = re.compile(r"(\s*-\s*copy\d*|\s*\(\d+\)|\s*copy\d*|[\s_-]+v?\d+)$", re.IGNORECASE)


def _key(stem: str) -> str:
    previous = None
    while previous != stem:
        previous, stem = stem, _SUFFIX.sub("", stem.strip())
    return re.sub(r"[\s-]+", "_", stem).lower()


def _read(path: Path, notes: list[str]) -> dict | None:
    raw = path.read_bytes()
    if not raw.strip():
        notes.append(f"{path.name} is empty: nothing could be graded")
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
        notes.append(f"{path.name} is not UTF-8: read as Windows-1252")
    try:
        nb = json.loads(text)
    except ValueError as error:
        notes.append(f"{path.name} is not a readable notebook ({error}): nothing could be graded")
        return None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        notes.append(f"{path.name} is not a notebook: nothing could be graded")
        return None
    return nb


def _repair_metadata(nb: dict, name: str, notes: list[str]) -> None:
    seen: set[str] = set()
    for cell in nb["cells"]:
        if not isinstance(cell, dict):
            continue
        cell.setdefault("metadata", {})
        meta = cell["metadata"].get("nbgrader")
        if meta is None:
            continue
        if not isinstance(meta, dict) or "grade_id" not in meta:
            del cell["metadata"]["nbgrader"]
            notes.append(f"{name}: a cell had broken grading metadata; it was ignored")
            continue
        if meta.get("schema_version") != 3:
            meta["schema_version"] = 3
            notes.append(f"{name}: cell {meta['grade_id']} had old grading metadata; updated")
        if meta["grade_id"] in seen:
            # a duplicated cell: the copy keeps the code, loses the grading role
            del cell["metadata"]["nbgrader"]
            notes.append(f"{name}: cell {meta['grade_id']} appears twice; the copy is run as code")
            continue
        seen.add(meta["grade_id"])


def normalise(
    source: str | Path,
    target: str | Path,
    notebooks: list[str],
    blanks: dict[str, Path] | None = None,
) -> list[str]:
    """Copy a submission folder to ``target`` with honest mistakes repaired; returns notes.

    Args:
        source: ``submitted/<student>/<assignment>``.
        target: an empty or missing folder.
        notebooks: the assignment's notebook names (without ``.ipynb``).
        blanks: notebook name -> the released notebook, graded (0 points) in place of a
            missing, empty or unreadable one, so that the student gets a gradebook entry and
            feedback rather than an error.

    Returns:
        One sentence per repair, for the feedback and the instructor's report.
    """
    source, target = Path(source), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    found = sorted(p for p in source.iterdir() if p.suffix.lower() == ".ipynb" and p.is_file())
    for path in source.iterdir():
        if path.is_file() and path.suffix.lower() != ".ipynb":
            shutil.copy(path, target / path.name)
        elif path.is_dir() and path.name not in (".ipynb_checkpoints", "__pycache__"):
            shutil.copytree(path, target / path.name)
    for name in notebooks:
        exact = [p for p in found if p.stem == name]
        close = [p for p in found if _key(p.stem) == _key(name)]
        if len(found) == 1 and len(notebooks) == 1:
            close = close or found
        if exact:
            path = exact[0]
        elif close:
            path = sorted(close, key=lambda p: p.stat().st_mtime)[-1]
            notes.append(f"graded {path.name} as {name}.ipynb (renamed)")
        else:
            notes.append(f"no notebook {name}.ipynb in the submission ({len(found)} other files)")
            path = None
        nb = _read(path, notes) if path is not None else None
        if nb is None:
            if blanks and name in blanks and Path(blanks[name]).is_file():
                shutil.copy(blanks[name], target / f"{name}.ipynb")
                notes.append(f"{name}.ipynb was graded as the blank release (0 points)")
            continue
        _repair_metadata(nb, name, notes)
        (target / f"{name}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    return notes
