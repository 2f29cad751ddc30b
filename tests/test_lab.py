"""`make lab` serves JupyterLab on localhost with nbgrader's extensions enabled."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "sbi-course-test-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


@pytest.fixture(scope="module")
def lab_url():
    port = _free_port()
    env = dict(os.environ, JUPYTER_TOKEN=TOKEN)
    process = subprocess.Popen(
        ["make", "lab", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(f"{url}/api/status?token={TOKEN}")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read() if process.poll() is not None else ""
                    pytest.fail(f"make lab did not start JupyterLab on port {port}:\n{output}")
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.slow
def test_make_lab_serves_jupyterlab(lab_url):
    status, page = _get(f"{lab_url}/lab?token={TOKEN}")
    assert status == 200 and "JupyterLab" in page


@pytest.mark.slow
def test_make_lab_has_the_nbgrader_extensions(lab_url):
    _, body = _get(f"{lab_url}/lab/api/extensions?token={TOKEN}")
    names = {extension["name"] for extension in json.loads(body)}
    assert any("nbgrader" in name for name in names), names
    status, page = _get(f"{lab_url}/formgrader?token={TOKEN}")
    assert status == 200 and "formgrader" in page.lower()


@pytest.mark.slow
def test_make_lab_serves_the_repository_root(lab_url):
    _, body = _get(f"{lab_url}/api/contents?token={TOKEN}")
    names = {item["name"] for item in json.loads(body)["content"]}
    assert {"lectures", "exercises", "README.md"} <= names, names
