"""End to end: what a student and an instructor do in JupyterLab, driven in headless Chromium.

JupyterLab is started the way the README tells students to (``make lab``), on a temporary copy
of the course (tests/browser_helpers.py), and one server and one browser serve all the tests:

* every lecture notebook opens, renders all its cells, starts its kernel, and shows no error;
* one lecture (the quickest, ``01_introduction`` when it exists) runs completely with
  Run > Run All Cells: every code cell runs, figures appear, no cell raises;
* nbgrader's Validate button reports failing tests for a blank exercise and "Success!" for
  the corresponding solution notebook;
* the formgrader lists the course's assignments and finds the course id.

Screenshots go to ``test-artifacts/browser/``: one of each success, and one of the page when a
test fails (the path is printed). Without Chromium or Playwright the tests are skipped, except
in CI (``CI`` set), where they fail instead. ``SBI_COURSE_BROWSER_LECTURE`` picks the lecture
that is run; ``SBI_COURSE_BROWSER_TIMEOUT`` (seconds, default 600) bounds that run.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import pytest
from browser_helpers import (
    ARTIFACTS,
    ROOT,
    Lab,
    browser_missing_reason,
    copy_course,
    launch_chromium,
    running_lab,
    skip_or_fail,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TOKEN = "sbi-course-browser-test"
LECTURES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "lectures").glob("*.ipynb"))
# The lecture that runs completely: the quickest one (the introduction trains no network).
PREFERRED_LECTURES = ("lectures/01_introduction.ipynb", "lectures/02_abc.ipynb")
# Assignments with both a student version and a solution: exercises/<a>/<a>.ipynb, solutions/...
ASSIGNMENTS = sorted(
    p.parent.name
    for p in (ROOT / "exercises").glob("*/*.ipynb")
    if p.stem == p.parent.name and (ROOT / "solutions" / p.parent.name / p.name).exists()
)

# Generous bounds for a loaded 2-core machine; they only turn hangs into failures.
OPEN_TIMEOUT_MS = 120_000
RUN_ALL_TIMEOUT_S = float(os.environ.get("SBI_COURSE_BROWSER_TIMEOUT", "600"))
VALIDATE_TIMEOUT_MS = 300_000
ERROR_TEXT = re.compile(r"Traceback|\b[A-Z]\w*Error\b")


# --------------------------------------------------------------------------------------------
# fixtures: one browser, one JupyterLab on a copy of the course, one JupyterLab tab


@pytest.fixture(scope="module")
def browser():
    reason = browser_missing_reason()
    if reason:
        skip_or_fail(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def course():
    with tempfile.TemporaryDirectory(prefix="sbi-course-browser-") as tmp:
        yield copy_course(Path(tmp) / "course")


@pytest.fixture(scope="module")
def lab(browser, course) -> Lab:
    with running_lab(course, TOKEN) as server:
        yield server


class LabTab:
    """One JupyterLab tab, loaded once and shared by the tests (loading it takes seconds).

    After a failed test it is thrown away, so that a stuck dialog cannot spoil the next test.
    """

    def __init__(self, browser, lab: Lab):
        self.browser, self.lab = browser, lab
        self.context = self.page = None

    def get(self):
        if self.page is None:
            self.context = self.browser.new_context(viewport={"width": 1400, "height": 900})
            self.page = self.context.new_page()
            self.page.set_default_timeout(30_000)
            # ?reset: a clean workspace, with no notebook open.
            self.page.goto(f"{self.lab.url}/lab/tree/lectures?reset&token={self.lab.token}")
            self.page.locator(".jp-DirListing-content").wait_for(timeout=OPEN_TIMEOUT_MS)
        return self.page

    def clean_up(self, failed: bool) -> None:
        """Close every document (or the whole tab after a failure); stop the kernels."""
        if self.page is not None and not failed:
            failed = not self._close_all_documents()
        if failed and self.context is not None:
            self.context.close()
            self.context = self.page = None
        self.lab.shutdown_kernels()

    def _close_all_documents(self, timeout_s: float = 30) -> bool:
        """File > Close All Tabs, discarding changes; False if notebooks or dialogs remain."""
        from playwright.sync_api import Error as PlaywrightError

        page = self.page
        for _ in range(5):  # a dialog that the test left open
            if page.locator(".jp-Dialog").count() == 0:
                break
            page.keyboard.press("Escape")
            time.sleep(0.3)
        try:
            click_menu(page, "File", "Close All Tabs")
        except PlaywrightError:
            return False
        # The kernel fills in each notebook's language_info when it starts, so JupyterLab asks
        # "Save your work?" even for an untouched notebook: this is a throwaway copy, discard.
        discard = page.locator(".jp-Dialog .jp-Dialog-button", has_text=re.compile(r"^Discard$"))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if discard.count():
                try:
                    discard.first.click(timeout=5000)
                except PlaywrightError:
                    return False
            elif page.locator(".jp-NotebookPanel, .jp-Dialog").count() == 0:
                return True
            time.sleep(0.2)
        return False


@pytest.fixture(scope="module")
def lab_tab(browser, lab):
    tab = LabTab(browser, lab)
    yield tab
    if tab.context is not None:
        tab.context.close()


@pytest.fixture
def page(request, lab_tab):
    """The shared JupyterLab tab; a screenshot when the test fails; documents closed after."""
    failures_before = request.session.testsfailed
    page = lab_tab.get()
    yield page
    failed = request.session.testsfailed > failures_before
    if failed:  # a picture of every open page (the formgrader test opens a second one)
        paths = [
            screenshot(p, f"FAILED-{request.node.name}" + (f"-{i}" if i else ""))
            for i, p in enumerate(page.context.pages)
        ]
        shown = "\n".join(str(p) for p in paths)
        _report(request, f"\nscreenshots of the failed test:\n{shown}\n{lab_tab.lab.log_tail(30)}")
    lab_tab.clean_up(failed)


def _report(request, text: str) -> None:
    """Print in the terminal even though pytest captures the teardown's output."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(text)
    else:
        print(text, file=sys.__stderr__)


# --------------------------------------------------------------------------------------------
# helpers


def screenshot(page, name: str) -> Path:
    path = ARTIFACTS / "browser" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    return path


def _notebook(course: Path, path: str) -> dict:
    return json.loads((course / path).read_text())


def wait_for_kernel_idle(lab: Lab, path: str, timeout_s: float) -> None:
    """Poll the server until the notebook's kernel exists and reports idle."""
    deadline = time.monotonic() + timeout_s
    state = "no session"
    while time.monotonic() < deadline:
        sessions = [s for s in lab.api("/api/sessions") if s.get("path") == path]
        if sessions and sessions[0]["kernel"]:
            state = sessions[0]["kernel"]["execution_state"]
            if state == "idle":
                return
        time.sleep(0.5)
    raise AssertionError(f"the kernel of {path} is not idle after {timeout_s:.0f} s ({state})")


def click_menu(page, menu: str, item: str) -> None:
    """Choose ``item`` from the menu bar's ``menu``, as a user does."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{re.escape(menu)}$")).click()
    label = re.compile(rf"^{re.escape(item)}$")
    page.locator(".lm-Menu-itemLabel", has_text=label).click()


def open_notebook(page, lab: Lab, course: Path, path: str):
    """Open ``path`` with File > Open from Path; wait for all its cells and an idle kernel."""
    from playwright.sync_api import expect

    cells = len(_notebook(course, path)["cells"])
    click_menu(page, "File", "Open from Path…")
    page.locator(".jp-Dialog-body input").fill(path)
    page.locator(".jp-Dialog-footer .jp-mod-accept").click()
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    expect(panel.locator(".jp-Notebook .jp-Cell")).to_have_count(cells, timeout=OPEN_TIMEOUT_MS)
    wait_for_kernel_idle(lab, path, OPEN_TIMEOUT_MS / 1000)
    expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
        "data-status", "idle", timeout=OPEN_TIMEOUT_MS
    )
    return panel


def assert_no_error_dialog(page) -> None:
    dialogs = page.locator(".jp-Dialog")
    assert dialogs.count() == 0, f"a dialog is open: {dialogs.all_inner_texts()}"
    toasts = page.locator(".Toastify__toast--error")
    assert toasts.count() == 0, f"an error notification is shown: {toasts.all_inner_texts()}"


def run_all_cells(page) -> None:
    """Run > Run All Cells, then wait until no cell is queued or running any more."""
    click_menu(page, "Run", "Run All Cells")
    # Run All marks every queued cell [*] at once; it is done when no [*] is left and at least
    # one cell has run (after an error JupyterLab unqueues the rest, so this ends then too).
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
                .map(e => e.textContent);
            return !prompts.some(t => t.includes('*')) && prompts.some(t => /\\[\\d+\\]/.test(t));
        }""",
        timeout=RUN_ALL_TIMEOUT_S * 1000,
        polling=1000,
    )


def save_and_read(page, course: Path, path: str) -> dict:
    """Save the notebook with its toolbar button; return the notebook as written to disk."""
    file = course / path
    since = time.time()
    page.locator(
        '.jp-NotebookPanel:not(.lm-mod-hidden) jp-button[data-command="docmanager:save"]'
    ).click()
    deadline = time.monotonic() + 60
    while file.stat().st_mtime < since - 0.01:
        assert time.monotonic() < deadline, f"{path} was not saved"
        time.sleep(0.3)
    # Jupyter's "atomic" save writes the file in place (keeping a backup until it is done), so
    # a reader can catch it half written: read until it parses.
    while True:
        try:
            return _notebook(course, path)
        except json.JSONDecodeError:
            assert time.monotonic() < deadline, f"{path} was not completely saved"
            time.sleep(0.3)


def click_validate(page) -> tuple[str, object]:
    """Press nbgrader's Validate button; return the result dialog's title and the dialog."""
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .validate-button").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(state="visible", timeout=VALIDATE_TIMEOUT_MS)
    return dialog.locator(".jp-Dialog-header").inner_text(), dialog


def _has_code(source: str) -> bool:
    return any(line.strip() and not line.strip().startswith("#") for line in source.splitlines())


def _pick_lecture() -> str:
    wanted = os.environ.get("SBI_COURSE_BROWSER_LECTURE")
    if wanted:
        return wanted if wanted.startswith("lectures/") else f"lectures/{wanted}"
    for path in PREFERRED_LECTURES:
        if path in LECTURES:
            return path
    assert LECTURES, "no lecture notebooks in lectures/"
    return LECTURES[0]


# --------------------------------------------------------------------------------------------
# tests


def test_there_is_something_to_test():
    assert LECTURES, "no lectures/*.ipynb"
    assert ASSIGNMENTS, "no assignment in both exercises/<a>/<a>.ipynb and solutions/<a>/"


@pytest.mark.parametrize("path", LECTURES)
def test_lecture_opens(page, lab, course, path):
    panel = open_notebook(page, lab, course, path)
    nb = _notebook(course, path)
    markdown = sum(cell["cell_type"] == "markdown" for cell in nb["cells"])
    assert panel.locator(".jp-MarkdownCell .jp-RenderedMarkdown").count() == markdown
    assert_no_error_dialog(page)


def test_lecture_runs_completely_with_run_all(page, lab, course):
    path = _pick_lecture()
    panel = open_notebook(page, lab, course, path)
    start = time.monotonic()
    run_all_cells(page)
    wait_for_kernel_idle(lab, path, 60)
    seconds = time.monotonic() - start
    print(f"Run All of {path} took {seconds:.0f} s")

    assert_no_error_dialog(page)
    stderr = panel.locator('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')
    errors = [text for text in stderr.all_inner_texts() if ERROR_TEXT.search(text)]
    assert not errors, f"{path} printed errors:\n" + "\n---\n".join(errors)[:3000]

    # Every figure has arrived and been decoded by the browser.
    images = panel.locator(".jp-OutputArea-output img")
    assert images.count() > 0, f"{path} shows no figure"
    assert images.evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
    images.last.scroll_into_view_if_needed()
    print(f"screenshot: {screenshot(page, 'lecture-run-all')}")

    # The saved notebook tells precisely what ran: every non-empty code cell, with no error.
    nb = save_and_read(page, course, path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    not_run = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not not_run, f"{path}: code cells {not_run} (counting code cells) did not run"
    raised = [
        f"{o['ename']}: {o['evalue']}"
        for c in code
        for o in c["outputs"]
        if o["output_type"] == "error"
    ]
    assert not raised, f"{path} raised: {raised}"
    figures = sum("image/png" in o.get("data", {}) for c in code for o in c["outputs"])
    assert figures > 0


@pytest.mark.parametrize("assignment", ASSIGNMENTS[:1])
def test_validate_reports_the_blank_exercise_as_failing(page, lab, course, assignment):
    path = f"exercises/{assignment}/{assignment}.ipynb"
    open_notebook(page, lab, course, path)
    title, dialog = click_validate(page)
    print(f"screenshot: {screenshot(page, f'validate-{assignment}-exercise')}")
    assert title == "Validation Results", dialog.inner_text()
    assert dialog.locator(".validation-failed").count() == 1, dialog.inner_text()
    # Every visible test cell fails on the blank version. (In the student version the cells of
    # hidden tests hold only a comment, and so pass.)
    tests = [
        c
        for c in _notebook(course, path)["cells"]
        if c["cell_type"] == "code"
        and c["metadata"].get("nbgrader", {}).get("grade")
        and not c["metadata"]["nbgrader"].get("solution")
        and _has_code("".join(c["source"]))
    ]
    failed = dialog.get_by_text("The following cell failed:").count()
    assert tests and failed >= len(tests), dialog.inner_text()
    print(f"Validate on the blank {assignment}: {failed} failing test cells")
    dialog.locator(".jp-mod-accept").click()


@pytest.mark.parametrize("assignment", ASSIGNMENTS[:1])
def test_validate_passes_the_solution(page, lab, course, assignment):
    path = f"solutions/{assignment}/{assignment}.ipynb"
    open_notebook(page, lab, course, path)
    title, dialog = click_validate(page)
    print(f"screenshot: {screenshot(page, f'validate-{assignment}-solution')}")
    assert title == "Validation Results", dialog.inner_text()
    assert dialog.locator(".validation-success").count() == 1, dialog.inner_text()
    assert "Success! Your notebook passes all the tests." in dialog.inner_text()
    dialog.locator(".jp-mod-accept").click()


def test_formgrader_lists_the_assignments(page, lab, course):
    from playwright.sync_api import expect

    page = page.context.new_page()  # the formgrader is a page of its own
    page.goto(f"{lab.url}/formgrader?token={lab.token}")
    sources = sorted(p.name for p in (course / "solutions").iterdir() if p.is_dir())
    names = page.locator("td.name")
    expect(names).to_have_count(len(sources), timeout=OPEN_TIMEOUT_MS)
    assert sorted(t.strip() for t in names.all_inner_texts()) == sources
    # nbgrader_config.py was read: without a course id the page shows this warning.
    assert page.locator("#warning-course-id").count() == 0
    print(f"screenshot: {screenshot(page, 'formgrader')}")
    page.close()
