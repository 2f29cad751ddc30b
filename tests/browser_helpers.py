"""Helpers for the end-to-end browser tests (tests/test_browser.py).

They start JupyterLab exactly as a student does, with ``make lab``, but on a temporary copy
of the course: running notebooks and nbgrader's Validate button save notebooks, and the
formgrader creates ``gradebook.db``, so the repository itself must stay untouched. The copy
shares the repository's ``.venv`` through a symbolic link.

Chromium is the system's browser (``/usr/bin/chromium`` on Debian), driven by Playwright;
Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"

# Headless, offline and quiet: no GPU, no sandbox (CI containers run as root), no phoning home.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# JupyterLab user settings for the tests: no "Would you like to get notified about news?" toast
# over the notebook, and no requests to the internet.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}

# Folders that never belong in the copy when git cannot list the working tree.
_NOT_COPIED = {
    ".git",
    ".venv",
    "__pycache__",
    ".ipynb_checkpoints",
    ".pytest_cache",
    ".ruff_cache",
    "submitted",
    "autograded",
    "feedback",
    "release",
    "gradebook.db",
    "test-artifacts",
}


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_chromium() -> str | None:
    """The Chromium executable: ``$SBI_COURSE_CHROMIUM``, else the first one on ``PATH``."""
    configured = os.environ.get("SBI_COURSE_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def browser_missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install -e '.[dev]')"
    if find_chromium() is None:
        return "no Chromium found (apt-get install chromium, or set SBI_COURSE_CHROMIUM)"
    if not (ROOT / ".venv" / "bin" / "jupyter").exists():
        return "no .venv with JupyterLab in the repository (run `make venv`)"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip on a developer's machine, but fail in CI: browser tests may never vanish there."""
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


def launch_chromium(playwright):
    """Start headless Chromium (the system's, never a downloaded one)."""
    return playwright.chromium.launch(
        executable_path=find_chromium(), headless=True, args=list(CHROMIUM_ARGS)
    )


def _working_tree_files(root: Path) -> list[str] | None:
    """Tracked and untracked-but-not-ignored files, as git sees them; None without git."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return [name for name in listing.decode().split("\0") if name]


def copy_course(dest: Path, root: Path = ROOT) -> Path:
    """Copy the course's working tree to ``dest`` and link the repository's ``.venv`` into it.

    Modification times are kept (``copy2``), so that ``make`` sees the same up-to-date venv.
    """
    dest.mkdir(parents=True, exist_ok=True)
    names = _working_tree_files(root)
    if names is None:
        shutil.copytree(
            root,
            dest,
            dirs_exist_ok=True,
            ignore=lambda _, entries: [e for e in entries if e in _NOT_COPIED],
        )
    else:
        for name in names:
            source = root / name
            if not source.is_file():  # deleted in the working tree, or a submodule
                continue
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (dest / ".venv").symlink_to(root / ".venv", target_is_directory=True)
    return dest


@dataclass
class Lab:
    """A running ``make lab``: its URL, token, process and log file."""

    url: str
    token: str
    process: subprocess.Popen
    log_path: Path

    def api(self, path: str, method: str = "GET") -> object:
        """Call the Jupyter server's REST API; return the decoded JSON (None when empty)."""
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """End every notebook session, so that idle kernels do not pile up between tests."""
        for session in self.api("/api/sessions"):
            self.api(f"/api/sessions/{session['id']}", method="DELETE")

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextmanager
def running_lab(course: Path, token: str, timeout_s: float = 180) -> Iterator[Lab]:
    """Run ``make lab PORT=<free port>`` in ``course`` and stop its process group afterwards.

    ``-o .venv/.installed`` keeps make from ever reinstalling the shared venv from the copy.
    JupyterLab's user settings and workspaces go to a private folder, so that neither the
    developer's settings change what the tests see nor the tests change the developer's lab.
    """
    port = free_port()
    private = course.parent / f"{course.name}-lab-user"  # outside the lab's root folder
    env = dict(
        os.environ,
        JUPYTER_TOKEN=token,
        JUPYTERLAB_SETTINGS_DIR=str(private / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(private / "workspaces"),
    )
    for name, settings in LAB_SETTINGS.items():
        path = private / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    log_path = private / "lab.log"
    with open(log_path, "w") as log:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(
            ["make", "-o", ".venv/.installed", "lab", f"PORT={port}"],
            cwd=course,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kernels are stopped with it
        )
    lab = Lab(url=f"http://127.0.0.1:{port}", token=token, process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                lab.api("/api/status")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"make lab did not start JupyterLab on port {port}:\n{lab.log_tail()}"
                    )
                time.sleep(0.5)
        yield lab
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen, timeout_s: float = 20) -> None:
    """SIGTERM the process group started for ``process``; SIGKILL it if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)  # make, jupyter and its kernels
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
