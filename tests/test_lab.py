"""`make lab` serves JupyterLab on localhost with nbgrader's extensions enabled.

Plain HTTP checks, no browser (tests/test_browser.py drives Chromium). The server runs on a
temporary copy of the course, so the formgrader's ``gradebook.db`` never lands in the repository.
"""

from __future__ import annotations

import urllib.request

import pytest
from browser_helpers import copy_course, running_lab

TOKEN = "sbi-course-test-token"


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("lab") / "sbi-course")
    with running_lab(course, TOKEN) as lab:
        yield lab


@pytest.mark.slow
def test_make_lab_serves_jupyterlab(lab):
    status, page = _get(f"{lab.url}/lab?token={TOKEN}")
    assert status == 200 and "JupyterLab" in page


@pytest.mark.slow
def test_make_lab_has_the_nbgrader_extensions(lab):
    names = {extension["name"] for extension in lab.api("/lab/api/extensions")}
    assert any("nbgrader" in name for name in names), names
    status, page = _get(f"{lab.url}/formgrader?token={TOKEN}")
    assert status == 200 and "formgrader" in page.lower()


@pytest.mark.slow
def test_make_lab_serves_the_repository_root(lab):
    names = {item["name"] for item in lab.api("/api/contents")["content"]}
    assert {"lectures", "exercises", "README.md", "Makefile"} <= names, names
