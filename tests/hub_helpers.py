"""Helpers for tests/test_hub.py: a real JupyterHub on 127.0.0.1, and a small nbgrader course.

The hub is the one from PyPI with the proxy from npm (``configurable-http-proxy``), the
``DummyAuthenticator`` restricted to an allow-list, and ``SimpleLocalProcessSpawner``: every
user's single-user server is a local process with its own home folder. It runs as the same
Unix user as the test (real Unix users would need the Python installation to be readable by
them, which a developer's checkout under /root is not), so each student's nbgrader identity
comes from ``JUPYTERHUB_USER`` in a shared ``nbgrader_config.py`` (see docs/JUPYTERHUB.md,
"Servers that share one Unix user").

The hub, the proxy, the servers and their kernels are all descendants of the ``jupyterhub``
process: :func:`running_hub` records them while it runs and stops every one afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from browser_helpers import LAB_SETTINGS, free_port

COURSE_ID = "hubcourse"
ASSIGNMENT = "ps0"
PASSWORD = "course-test-password"

# The nbgrader configuration every server reads (JUPYTER_CONFIG_PATH), and the instructor's
# course folder too. The student id is the hub's user name, not the Unix user.
NBGRADER_CONFIG = """\
import os
c = get_config()
c.CourseDirectory.course_id = {course_id!r}
c.Exchange.root = {exchange!r}
user = os.environ.get("JUPYTERHUB_USER")
if user and user not in {instructors!r}:
    c.CourseDirectory.student_id = user
"""

HUB_CONFIG = """\
c = get_config()
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = {proxy_pid!r}
c.JupyterHub.db_url = "sqlite:///{db}"
c.JupyterHub.cookie_secret_file = {cookie!r}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = set({users!r})
c.Authenticator.admin_users = {{{instructor!r}}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {homes!r} + "/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = ["--allow-root"]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.Spawner.environment = {environment!r}
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
c.JupyterHub.services = [{{"name": "test", "api_token": {api_token!r}, "admin": True}}]
c.JupyterHub.load_roles = [
    {{"name": "test", "scopes": ["admin:users", "admin:servers"], "services": ["test"]}}
]
"""


def hub_missing_reason() -> str | None:
    """Why a hub cannot start here, or None when it can."""
    try:
        import jupyterhub  # noqa: F401
        import nbgrader  # noqa: F401
    except ImportError as error:
        return f"{error.name} is not installed (pip install -e '.[dev]')"
    if shutil.which("configurable-http-proxy") is None:
        return "configurable-http-proxy is not installed (npm install -g configurable-http-proxy)"
    if shutil.which("jupyterhub-singleuser", path=str(Path(sys.executable).parent)) is None:
        return "jupyterhub-singleuser is missing beside this Python"
    return None


@dataclass
class Hub:
    """A running JupyterHub: its public URL, folders, process and log."""

    url: str
    root: Path
    homes: Path
    exchange: Path
    process: subprocess.Popen
    log_path: Path
    api_token: str
    seen: dict[int, object] = field(default_factory=dict)  # pid -> psutil.Process

    def api(self, path: str, method: str = "GET", body: dict | None = None) -> object:
        """Call the hub's REST API as the test's admin service."""
        request = urllib.request.Request(
            f"{self.url}/hub/api{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"token {self.api_token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def home(self, user: str) -> Path:
        return self.homes / user

    def record_descendants(self) -> list[int]:
        """Remember every process the hub started (proxy, servers, kernels) to stop it later."""
        import psutil

        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for child in children:
            self.seen.setdefault(child.pid, child)
        return [c.pid for c in children]

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def write_nbgrader_config(folder: Path, exchange: Path, instructors: set[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nbgrader_config.py"
    text = NBGRADER_CONFIG.format(
        course_id=COURSE_ID, exchange=str(exchange), instructors=set(instructors)
    )
    path.write_text(text)
    return path


@contextmanager
def running_hub(root: Path, users: list[str], instructor: str, timeout_s: float = 120):
    """Start JupyterHub in ``root``; yield a :class:`Hub`; stop it and everything it started."""
    root.mkdir(parents=True, exist_ok=True)
    homes, exchange, etc = root / "home", root / "exchange", root / "etc-jupyter"
    homes.mkdir()
    exchange.mkdir(mode=0o777)
    exchange.chmod(0o777)  # as on a real hub: every user writes the exchange
    write_nbgrader_config(etc, exchange, {instructor})
    settings = root / "lab-settings"
    for name, value in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port, api_token = free_port(), os.urandom(16).hex()
    environment = {
        "JUPYTER_CONFIG_PATH": str(etc),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    config = HUB_CONFIG.format(
        port=port,
        hub_port=free_port(),
        proxy_api_port=free_port(),
        proxy_pid=str(root / "proxy.pid"),
        db=root / "jupyterhub.sqlite",
        cookie=str(root / "cookie_secret"),
        password=PASSWORD,
        users=sorted(users),
        instructor=instructor,
        homes=str(homes),
        singleuser=str(Path(sys.executable).parent / "jupyterhub-singleuser"),
        environment=environment,
        api_token=api_token,
    )
    (root / "jupyterhub_config.py").write_text(config)
    log_path = root / "hub.log"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(root / "jupyterhub_config.py")],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = Hub(
        url=f"http://127.0.0.1:{port}",
        root=root,
        homes=homes,
        exchange=exchange,
        process=process,
        log_path=log_path,
        api_token=api_token,
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            hub.record_descendants()
            try:
                hub.api("/")
                break
            except (OSError, urllib.error.HTTPError):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterHub did not start on port {port}:\n{hub.log_tail()}")
                time.sleep(0.5)
        yield hub
    finally:
        stop_hub(hub)


def stop_hub(hub: Hub, timeout_s: float = 30) -> None:
    """SIGTERM the hub (it stops the servers and the proxy), then kill whatever is left."""
    import psutil

    hub.record_descendants()
    if hub.process.poll() is None:
        hub.process.send_signal(signal.SIGTERM)
        try:
            hub.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            hub.record_descendants()
            hub.process.kill()
            hub.process.wait()
    left = [p for p in _alive(hub.seen)]
    for process in left:
        process.terminate()
    _, still = psutil.wait_procs(left, timeout=10)
    for process in still:
        process.kill()
    psutil.wait_procs(still, timeout=10)


def _alive(seen: dict[int, object]) -> Iterator:
    """The recorded processes still running: the same process (pid and start time), no zombie."""
    import psutil

    for process in seen.values():
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                yield process
        except psutil.NoSuchProcess:
            continue


def processes_left(hub: Hub) -> list[int]:
    """The pids of the hub's recorded descendants that still run."""
    return [p.pid for p in _alive(hub.seen)]


# --------------------------------------------------------------------------------------------
# a two-question assignment and the instructor's side (nbgrader's command line)

#: The student's answer to each question (one line: no auto-indentation to fight in the
#: browser's editor) and the points a correct one earns.
QUESTIONS = {"add": ("def add(a, b): return a + b", 1), "mul": ("def mul(a, b): return a * b", 2)}
WRONG_ANSWERS = {"add": "def add(a, b): return a - b", "mul": "def mul(a, b): return a + b"}


def _cell(kind: str, source: str, **nbgrader) -> dict:
    import nbformat

    maker = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    cell = maker(source)
    if nbgrader:
        cell.metadata["nbgrader"] = {"schema_version": 3, "locked": False, **nbgrader}
    return cell


def write_assignment(course: Path) -> Path:
    """``source/ps0/ps0.ipynb``: two solution cells, each checked by a hidden-free test cell."""
    import nbformat

    cells = [_cell("markdown", "# Problem set 0\nWrite `add(a, b)` and `mul(a, b)`.")]
    for name, (answer, points) in QUESTIONS.items():
        body = answer.split(": ", 1)[1]
        cells.append(
            _cell(
                "code",
                f"def {name}(a, b):\n    ### BEGIN SOLUTION\n    {body}\n    ### END SOLUTION",
                solution=True,
                grade=False,
                grade_id=name,
            )
        )
        a, b = 3, 4
        expected = a + b if name == "add" else a * b
        cells.append(
            _cell(
                "code",
                f"assert {name}({a}, {b}) == {expected}",
                solution=False,
                grade=True,
                locked=True,
                grade_id=f"test_{name}",
                points=points,
            )
        )
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    path = course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


class Instructor:
    """The instructor's side, through nbgrader's Python API (what the formgrader calls).

    In this process rather than as ``nbgrader`` commands: each command would import nbgrader
    and its dependencies again, which costs more than the rest of the instructor's work.
    """

    def __init__(self, course: Path, exchange: Path):
        from nbgrader.apps import NbGraderAPI
        from traitlets.config import Config

        config = Config()
        config.CourseDirectory.root = str(course)
        config.CourseDirectory.course_id = COURSE_ID
        config.Exchange.root = str(exchange)
        self.api = NbGraderAPI(config=config)

    def __call__(self, step: str, *args: str) -> str:
        """Run ``api.<step>(*args)``; fail the test with nbgrader's log when it fails."""
        result = getattr(self.api, step)(*args)
        if not result.get("success"):
            pytest.fail(
                f"nbgrader {step} {' '.join(args)} failed:\n{result.get('log')}\n"
                f"{result.get('error')}"
            )
        return result.get("log", "")
