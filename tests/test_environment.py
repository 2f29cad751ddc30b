"""The conda environment and the pip package must name the same dependencies."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest

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


# --- a lean core (issue #12, item 2) --------------------------------------------------------------

RUNTIME = {"numpy", "scipy", "torch", "matplotlib", "scikit-learn", "tqdm"}
COURSE_TOOLING = ("jupyterlab", "ipykernel", "nbgrader", "nbval", "sbi", "pytest", "playwright")


def test_runtime_dependencies_are_the_lean_core():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {_split(r)[0] for r in project["dependencies"]} == RUNTIME
    extras = project["optional-dependencies"]
    assert {"jupyterlab", "ipykernel", "nbgrader", "nbval", "sbi"} <= {
        _split(r)[0] for r in extras["course"]
    }
    assert {"pytest", "ruff", "playwright", "hypothesis"} <= {_split(r)[0] for r in extras["dev"]}


def test_make_venv_installs_both_extras():
    assert '-e ".[course,dev]"' in (ROOT / "Makefile").read_text()


_IMPORT_EVERYTHING = """
import importlib, importlib.abc, importlib.metadata, pkgutil, sys

BLOCKED = {blocked!r}


class Block(importlib.abc.MetaPathFinder):
    # The course tooling is installed in the shared environment; hide it, as if absent.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is course tooling, not a runtime dependency")


sys.meta_path.insert(0, Block())
import sbi_course

assert "site-packages" in sbi_course.__file__, sbi_course.__file__
names = [m.name for m in pkgutil.walk_packages(sbi_course.__path__, "sbi_course.")]
for name in names:
    importlib.import_module(name)
from sbi_course.inference import NPE, NLE, NRE  # noqa: F401

requires = importlib.metadata.requires("sbi_course")
core = sorted(
    {{r.split(">")[0].split("=")[0].split(";")[0].strip() for r in requires if "extra ==" not in r}}
)
print(len(names), "modules;", " ".join(core))
"""


@pytest.mark.slow
def test_pip_install_without_extras_imports_every_module(tmp_path):
    """``pip install .`` (no extras) in a fresh venv, then import every module of sbi_course.

    No download: the venv reuses the shared environment's packages through a ``.pth`` file,
    ``pip install --no-deps --no-build-isolation`` builds and installs only the package, and
    an import hook hides the course tooling (jupyter, nbgrader, nbval, sbi, pytest, ...), so
    an import of any of them from the library fails the test.
    """
    import subprocess
    import sysconfig
    import venv

    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shared = sysconfig.get_path("purelib")
    (Path(site) / "_shared_packages.pth").write_text(shared + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    script = _IMPORT_EVERYTHING.format(blocked=set(COURSE_TOOLING) | {"jupyter_server", "notebook"})
    run = subprocess.run(
        [python, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split(";")[1].split() == sorted(RUNTIME), run.stdout
