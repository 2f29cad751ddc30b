"""The course folder, its nbgrader configuration, and releasing ``solutions/`` to ``exercises/``.

nbgrader itself is imported only inside the functions that run it, so that importing
:mod:`sbi_course.grading` (as the homework's set-up cells do) stays cheap.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tools.grading.notebooks import check_source

__all__ = [
    "assignments",
    "find_course_root",
    "generate",
    "load_config",
    "normalised",
    "stale_exercises",
]


def find_course_root(start: str | Path | None = None) -> Path:
    """The folder holding ``nbgrader_config.py`` and ``solutions/``: ``start`` or a parent.

    Falls back to the repository that contains this package.
    """
    candidates = [Path(start or Path.cwd()).resolve()]
    candidates += list(candidates[0].parents) + [Path(__file__).resolve().parents[2]]
    for folder in candidates:
        if (folder / "nbgrader_config.py").is_file() and (folder / "solutions").is_dir():
            return folder
    raise FileNotFoundError(
        f"no course root (a folder with nbgrader_config.py and solutions/) at or above {start}"
    )


def assignments(root: str | Path) -> list[str]:
    """Names of the assignments: the folders of ``solutions/`` that hold a notebook."""
    source = Path(root) / "solutions"
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def load_config(root: str | Path, **overrides):
    """The course's ``nbgrader_config.py`` as a traitlets ``Config``, rooted at ``root``.

    Args:
        root: the course folder (where ``nbgrader_config.py`` is).
        overrides: ``Class__trait=value`` pairs, e.g. ``Execute__timeout=10``.
    """
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    root = Path(root).resolve()
    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    config.merge(Config({"CourseDirectory": {"root": str(root)}}))
    for key, value in overrides.items():
        section, trait = key.split("__")
        config.merge(Config({section: {trait: value}}))
    return config


@contextlib.contextmanager
def _nbgrader_environment() -> Iterator[None]:
    """nbgrader runs ``alembic`` from PATH: put this Python's bin folder first, then restore."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), old])
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        yield
    finally:
        os.environ["PATH"] = old


def _api(config):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def _check_result(result: dict, what: str) -> None:
    if not result.get("success"):
        raise RuntimeError(f"{what} failed:\n{result.get('log', '')}\n{result.get('error', '')}")


def _source_notebooks(root: Path, assignment: str) -> list[Path]:
    return sorted((root / "solutions" / assignment).glob("*.ipynb"))


def generate(root: str | Path, names: list[str] | None = None, *, check: bool = True) -> None:
    """Run ``nbgrader generate_assignment --force`` for ``names`` (default: all) in ``root``.

    Writes ``exercises/<assignment>/`` and records the assignment in ``root/gradebook.db``.
    With ``check``, refuse (``ValueError``) to release a notebook that :func:`check_source`
    finds problems with.
    """
    root = Path(root).resolve()
    names = names or assignments(root)
    if check:
        problems = [
            f"{nb.relative_to(root)}: {p}"
            for name in names
            for nb in _source_notebooks(root, name)
            for p in check_source(nb)
        ]
        if problems:
            raise ValueError("not releasing, fix these first:\n  " + "\n  ".join(problems))
    with _nbgrader_environment():
        api = _api(load_config(root))
        for name in names:
            _check_result(api.generate_assignment(name, force=True), f"generate_assignment {name}")


def normalised(path: str | Path) -> dict:
    """What matters of a released notebook: cell types, sources and nbgrader metadata.

    Cell ids, outputs, execution counts and editor metadata are left out, so that stripping
    tools (nbstripout renumbers cell ids) and Jupyter versions do not count as changes.
    """
    import nbformat

    nb = nbformat.read(Path(path), as_version=4)
    keep = ("nbgrader", "editable", "deletable")
    return {
        "kernelspec": nb.metadata.get("kernelspec", {}).get("name"),
        "cells": [
            {
                "cell_type": cell.cell_type,
                "source": cell.source,
                "metadata": {k: cell.metadata[k] for k in keep if k in cell.metadata},
            }
            for cell in nb.cells
        ],
    }


def _folder_contents(folder: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or ".ipynb_checkpoints" in path.parts or "__pycache__" in path.parts:
            continue
        key = str(path.relative_to(folder))
        out[key] = normalised(path) if path.suffix == ".ipynb" else path.read_bytes()
    return out


def _copy_course(root: Path, target: Path, names: list[str]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "nbgrader_config.py", target / "nbgrader_config.py")
    for name in names:
        shutil.copytree(
            root / "solutions" / name,
            target / "solutions" / name,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )


def stale_exercises(root: str | Path, names: list[str] | None = None) -> list[str]:
    """Assignments whose committed ``exercises/`` differ from a fresh release of ``solutions/``.

    The release is generated in a temporary copy of the course, so nothing in ``root`` changes.
    """
    root = Path(root).resolve()
    names = names or assignments(root)
    stale = []
    with tempfile.TemporaryDirectory(prefix="sbi-course-release-") as tmp:
        _copy_course(root, Path(tmp), names)
        generate(tmp, names, check=False)
        for name in names:
            fresh = _folder_contents(Path(tmp) / "exercises" / name)
            committed = root / "exercises" / name
            if not committed.is_dir() or _folder_contents(committed) != fresh:
                stale.append(name)
    return stale
