"""The conda environment and the pip package must name the same dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# conda-forge names that differ from PyPI names.
CONDA_TO_PYPI = {"pytorch": "torch"}
# conda-only entries that are not Python dependencies of the package.
CONDA_ONLY = {"python", "pip"}


def _split(requirement: str) -> tuple[str, str]:
    """'numpy>=1.24' -> ('numpy', '>=1.24'), names normalised as PyPI does."""
    requirement = requirement.split("#")[0].strip()
    match = re.match(r"^([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    return CONDA_TO_PYPI.get(name, name), match.group(2).replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return dict(_split(r) for r in requirements)


def _environment() -> dict[str, str]:
    """Parse environment.yml's conda and pip dependency lists (a flat, simple YAML)."""
    names: dict[str, str] = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        stripped = line.split("#")[0].strip()
        if not stripped.startswith("- ") or stripped.endswith(":"):
            continue
        item = stripped[2:].strip()
        if item.startswith("-e ") or item in ("conda-forge", "nodefaults"):
            continue
        name, bound = _split(item)
        if name not in CONDA_ONLY:
            names[name] = bound
    return names


def test_environment_yml_names_the_same_dependencies_as_pyproject():
    pip, conda = _pyproject(), _environment()
    assert sorted(conda) == sorted(pip), (
        f"only in environment.yml: {sorted(set(conda) - set(pip))}; "
        f"only in pyproject.toml: {sorted(set(pip) - set(conda))}"
    )


def test_lower_bounds_agree():
    pip, conda = _pyproject(), _environment()
    different = {name: (pip[name], conda[name]) for name in pip if pip[name] != conda.get(name)}
    assert not different, f"(pyproject, environment.yml) bounds differ: {different}"


def test_pyproject_uses_lower_bounds_only():
    exact = [f"{n}{b}" for n, b in _pyproject().items() if "==" in b]
    assert not exact, f"pin exact versions in constraints.txt, not pyproject.toml: {exact}"


def test_environment_installs_the_course_package():
    assert "- -e ." in (ROOT / "environment.yml").read_text()


def test_constraints_pin_the_cpu_torch():
    constraints = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^torch==2\.13\.0\s*$", constraints, flags=re.M)
