"""The course on a real JupyterHub: one instructor, two students, the nbgrader exchange.

A JupyterHub (from PyPI, with configurable-http-proxy from npm) runs on 127.0.0.1 with an
allow-list of three users behind the ``DummyAuthenticator`` and a local process spawner
(tests/hub_helpers.py). Then, as in a class:

1. the instructor generates and releases a two-question assignment into a temporary nbgrader
   exchange folder (nbgrader's Python API on the instructor's course folder, as the
   formgrader uses it);
2. each student, in headless Chromium, logs in through the hub's login page (which starts
   their server), opens Nbgrader > Assignment List, presses Fetch, opens the notebook,
   types the answers into the solution cells, saves, and presses Submit;
3. the instructor collects and autogrades (nbgrader's API) and the gradebook holds
   the right score for each student: alice answers both questions (3 of 3 points), bob only
   the first (1 of 3).

Whatever happens, the hub, the proxy, the servers and their kernels are stopped, and the test
checks that none is left. Screenshots: ``test-artifacts/hub/``.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

import pytest
from browser_helpers import ARTIFACTS, browser_missing_reason, launch_chromium, skip_or_fail
from hub_helpers import (
    ASSIGNMENT,
    PASSWORD,
    QUESTIONS,
    WRONG_ANSWERS,
    Instructor,
    hub_missing_reason,
    processes_left,
    running_hub,
    write_assignment,
    write_nbgrader_config,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning"),  # nbgrader's gradebook
]

INSTRUCTOR = "instructor"
# Each student's answers: alice gets both right, bob only `add`.
ANSWERS = {
    "alice": {name: answer for name, (answer, _) in QUESTIONS.items()},
    "bob": {"add": QUESTIONS["add"][0], "mul": WRONG_ANSWERS["mul"]},
}
EXPECTED_SCORES = {"alice": 3.0, "bob": 1.0}
SPAWN_TIMEOUT_MS = 240_000


def screenshot(page, name: str) -> Path:
    path = ARTIFACTS / "hub" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    return path


def log_in(page, url: str, user: str) -> None:
    """The hub's login page: user name and password, then Sign in (which starts the server)."""
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")


def wait_for_lab(page, user: str) -> None:
    page.wait_for_url(f"**/user/{user}/lab**", timeout=SPAWN_TIMEOUT_MS)
    page.locator(".jp-DirListing-content").wait_for(timeout=SPAWN_TIMEOUT_MS)


def click_menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{re.escape(menu)}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}$")).click()


def fetch_answer_submit(page, home: Path, answers: dict[str, str]) -> None:
    """Fetch in the Assignments tab, type the answers in the notebook, save, Submit."""
    from playwright.sync_api import expect

    click_menu(page, "Nbgrader", "Assignment List")
    released = page.locator("#released_assignments_list .list_item", has_text=ASSIGNMENT)
    released.get_by_role("button", name="Fetch").click(timeout=60_000)
    fetched = page.locator("#fetched_assignments_list .list_item", has_text=ASSIGNMENT)
    expect(fetched.first).to_be_visible(timeout=60_000)
    notebook = home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert notebook.is_file(), f"Fetch did not put the assignment in {notebook}"

    click_menu(page, "File", "Open from Path…")
    page.locator(".jp-Dialog-body input").fill(f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
    page.locator(".jp-Dialog-footer .jp-mod-accept").click()
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(panel.locator(".jp-Cell")).to_have_count(5, timeout=120_000)
    for name, answer in answers.items():
        cell = panel.locator(".jp-CodeCell", has_text=f"def {name}(a, b)").first
        cell.locator(".cm-content").click()
        page.keyboard.press("Control+a")
        page.keyboard.type(answer)
    since = notebook.stat().st_mtime
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 60
    while True:  # saved when the file on disk holds the typed answers
        try:
            text = json.loads(notebook.read_text()) if notebook.stat().st_mtime > since else None
        except json.JSONDecodeError:  # caught half written
            text = None
        sources = ["".join(c["source"]) for c in text["cells"]] if text else []
        if all(answer in sources for answer in answers.values()):
            break
        assert time.monotonic() < deadline, f"the answers were not saved: {sources}"
        time.sleep(0.3)

    page.locator(".lm-TabBar-tab", has_text="Assignments").click()
    fetched.get_by_role("button", name="Submit").click()
    submitted = page.locator("#submitted_assignments_list .list_item", has_text=ASSIGNMENT)
    expect(submitted.first).to_be_visible(timeout=60_000)


def test_students_fetch_answer_and_submit_and_the_instructor_grades():
    for reason in (hub_missing_reason(), browser_missing_reason()):
        if reason:
            skip_or_fail(reason)
    from nbgrader.api import Gradebook
    from playwright.sync_api import sync_playwright

    users = [INSTRUCTOR, *ANSWERS]
    start = time.monotonic()

    def said(what: str) -> None:  # what the test saw, and when (pytest -s shows it)
        print(f"[hub test {time.monotonic() - start:6.1f} s] {what}", flush=True)

    with tempfile.TemporaryDirectory(prefix="sbi-course-hub-") as tmp:
        with running_hub(Path(tmp) / "hub", users, INSTRUCTOR) as hub:
            said(f"JupyterHub answers at {hub.url}")
            course = hub.home(INSTRUCTOR) / "course"
            write_assignment(course)
            write_nbgrader_config(course, hub.exchange, {INSTRUCTOR})
            instructor = Instructor(course, hub.exchange)
            instructor("generate_assignment", ASSIGNMENT)
            instructor("release_assignment", ASSIGNMENT)
            assert (hub.exchange / "hubcourse" / "outbound" / ASSIGNMENT).is_dir()
            said(f"the instructor released {ASSIGNMENT} into the exchange")

            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                try:
                    pages = {}
                    for user in ANSWERS:  # both log in first: their servers start together
                        context = browser.new_context(viewport={"width": 1400, "height": 900})
                        pages[user] = context.new_page()
                        pages[user].set_default_timeout(30_000)
                        log_in(pages[user], hub.url, user)
                    for user, page in pages.items():
                        try:
                            wait_for_lab(page, user)
                            hub.record_descendants()
                            said(f"{user} logged in; JupyterLab is up at {page.url}")
                            fetch_answer_submit(page, hub.home(user), ANSWERS[user])
                            said(f"{user} fetched, answered, saved and submitted")
                            print(f"screenshot: {screenshot(page, f'{user}-submitted')}")
                        except Exception:
                            print(f"screenshot: {screenshot(page, f'FAILED-{user}')}")
                            print(hub.log_tail())
                            raise
                finally:
                    browser.close()

            inbound = sorted(
                p.name.split("+")[0] for p in (hub.exchange / "hubcourse" / "inbound").iterdir()
            )
            assert inbound == sorted(ANSWERS), f"the exchange's inbound holds {inbound}"
            instructor("collect", ASSIGNMENT)
            for student in inbound:
                instructor("autograde", ASSIGNMENT, student)
            said(f"the instructor collected and autograded the submissions of {inbound}")
            with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
                scores = {
                    s.student.id: (s.score, s.max_score)
                    for s in gradebook.assignment_submissions(ASSIGNMENT)
                }
            said(f"scores (points, out of): {scores}")
            assert scores == {u: (EXPECTED_SCORES[u], 3.0) for u in ANSWERS}
            hub.record_descendants()
        assert processes_left(hub) == [], "the hub left processes behind"
        said(f"hub stopped; none of its {len(hub.seen)} processes is left")
