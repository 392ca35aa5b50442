"""A student in JupyterLab, in a real (headless) Chromium driven by Selenium.

JupyterLab serves a scratch copy of the release (lessons 01 and 04, as `make release` makes
them). In each lesson: Kernel -> Restart Kernel and Run All Cells, then every code cell outside
the exercises must have run without an error, a figure must have rendered, and (lesson 04) a
progress bar must have shown while training and the interactive predictive must redraw when a
slider moves. nbgrader's Validate button must report the unsolved exercises.

Needs Chromium and its driver (Debian: `apt-get install chromium chromium-driver`; .ci/run
installs them); skipped without them. `make test-browser` runs only this file. On a failure a
screenshot goes to build/browser/.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, nbcourse

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no Chromium and chromedriver "
                                "(apt-get install chromium chromium-driver)")
LESSONS = ["01_posterior_predictive", "04_distribution_heads"]
SHOTS = ROOT / "build" / "browser"
TOKEN = "bdl-browser-test"

# JavaScript run in the page: JupyterLab's application object (exposed by
# --LabApp.expose_app_in_browser) and the notebook open in the main area.
PANEL = "const app = window.jupyterapp; const panel = app && app.shell.currentWidget;"
STATE = PANEL + """
if (!panel || !panel.content || !panel.content.model || !panel.sessionContext) return null;
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
const cells = [];
const model = panel.content.model.cells;
for (let i = 0; i < model.length; i++) {
  const c = model.get(i);
  if (c.type !== 'code') continue;
  cells.push({id: c.id, count: c.executionCount, nbgrader: c.getMetadata('nbgrader') || null,
              errors: c.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename)});
}
const running = [...panel.node.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'));
return {path: panel.context.path, kernel: kernel ? kernel.status : null, running: running, cells: cells,
        images: panel.node.querySelectorAll('.jp-OutputArea-output img').length,
        progress: !!window.__bdlSawProgress};
"""
# a progress bar exists only while a cell trains (tqdm's leave=False removes it): watch for it
WATCH_PROGRESS = """
window.__bdlSawProgress = false;
new MutationObserver(() => {
  if (document.querySelector('.widget-hprogress, .widget-progress')) window.__bdlSawProgress = true;
}).observe(document.body, {childList: true, subtree: true});
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a scratch copy of the release, with nbgrader configured as for students."""
    scratch = tmp_path_factory.mktemp("browser")
    course = nbcourse.make_course(scratch / "course", {n: ROOT / "solutions" / n for n in LESSONS})
    served = scratch / "lessons"
    for name in LESSONS:
        shutil.copytree(nbcourse.release(course, name), served / name)
    shutil.copy(ROOT / "nbgrader_config.py", served / "nbgrader_config.py")  # Validate reads it
    jupyter = scratch / "jupyter"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(jupyter / "config"), JUPYTER_DATA_DIR=str(jupyter / "data"),
               JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"), IPYTHONDIR=str(jupyter / "ipython"),
               JUPYTERLAB_SETTINGS_DIR=str(jupyter / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"),
               MPLCONFIGDIR=str(jupyter / "matplotlib"), PYTHONHASHSEED="0")
    for key in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLCONFIGDIR"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(scratch / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
         f"--IdentityProvider.token={TOKEN}", "--LabApp.expose_app_in_browser=True",
         f"--ServerApp.root_dir={served}"], cwd=served, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{(scratch / 'lab.log').read_text()[-3000:]}")
                time.sleep(1)
        yield url, scratch
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(driver, condition, timeout: float, what: str):
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except StaleElementReferenceException:  # a widget redrew under us: look again
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def accept_dialog(driver, timeout: float = 30) -> None:
    from selenium.webdriver.common.by import By

    button = wait_for(driver, lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept"),
                      timeout, "JupyterLab's confirmation dialog")
    button[0].click()


def open_and_run_all(driver, url: str, lesson: str, timeout: float = 420) -> dict:
    """Open the lesson, Restart Kernel and Run All Cells, wait for the kernel to finish."""
    driver.get(f"{url}/lab/tree/{lesson}/{lesson}.ipynb?token={TOKEN}")
    state = lambda: driver.execute_script(STATE)  # noqa: E731
    wait_for(driver, lambda: (s := state()) and s["path"].endswith(f"{lesson}.ipynb") and s["kernel"] == "idle",
             120, f"{lesson} to open with an idle kernel")
    driver.execute_script(WATCH_PROGRESS)
    driver.execute_script("window.jupyterapp.commands.execute('notebook:restart-run-all');")
    accept_dialog(driver)  # "Restart the kernel?"

    quiet_since = []

    def finished():
        """The last cell has run, or the kernel has sat idle with nothing queued for 10 s.

        The kernel can look idle between two cells of a Run All for a moment (seen in lesson 04,
        after its widget), so a single idle reading is not the end; a Run All that really stopped
        is still seen after 10 s, and check_run_all then names the cells it did not reach."""
        s = state()
        idle = s["kernel"] == "idle" and not s["running"] and any(c["count"] for c in s["cells"])
        if not idle:
            quiet_since.clear()
            return None
        quiet_since.append(time.monotonic()) if not quiet_since else None
        return s if s["cells"][-1]["count"] or time.monotonic() - quiet_since[0] > 10 else None

    wait_for(driver, finished, timeout, f"Run All of {lesson} to finish")
    time.sleep(2)  # and still so a moment later (outputs arrive after the reply)
    return wait_for(driver, finished, 60, f"Run All of {lesson} to finish")


def screenshot_on_failure(driver, name: str):
    class Guard:
        def __enter__(self):
            return self

        def __exit__(self, kind, value, tb):
            if kind is not None:
                SHOTS.mkdir(parents=True, exist_ok=True)
                driver.get_screenshot_as_file(str(SHOTS / f"{name}.png"))
            return False
    return Guard()


def exercise(cell: dict) -> bool:
    meta = cell["nbgrader"] or {}
    return bool(meta.get("solution") or meta.get("grade"))


def check_run_all(state: dict) -> None:
    others = [c for c in state["cells"] if not exercise(c)]
    assert others and [c["id"] for c in others if not c["count"]] == [], "cells Run All did not reach"
    assert {c["id"]: c["errors"] for c in others if c["errors"]} == {}
    # the unsolved exercises are what raised
    assert any(c["errors"] for c in state["cells"] if exercise(c))
    assert state["images"] > 0, "no figure rendered"


def test_lesson_01_runs_through_its_unsolved_exercises_and_validate_lists_them(lab, browser):
    from selenium.webdriver.common.by import By

    url, _ = lab
    with screenshot_on_failure(browser, "01_run_all"):
        check_run_all(open_and_run_all(browser, url, LESSONS[0]))
    with screenshot_on_failure(browser, "01_validate"):
        browser.find_element(By.XPATH, "//*[contains(@class, 'jp-Toolbar')]//*[normalize-space(text())='Validate']").click()
        dialog = wait_for(browser, lambda: [d for d in browser.find_elements(By.CSS_SELECTOR, ".jp-Dialog")
                                            if "Validat" in d.text and "Validating" not in d.text],
                          300, "nbgrader's Validate result")[0]
        text = dialog.text
        assert "Success" not in text and "NotImplementedError" in text, text[:2000]
        accept_dialog(browser)


def test_lesson_04_shows_progress_bars_and_its_widget_redraws(lab, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, _ = lab
    with screenshot_on_failure(browser, "04_run_all"):
        state = open_and_run_all(browser, url, LESSONS[1])
        check_run_all(state)
        assert state["progress"], "no progress bar rendered while training"
    with screenshot_on_failure(browser, "04_widget"):
        cell = browser.execute_script(PANEL + "return panel.content.widgets.find(w => w.model.id === 'widget').node;")
        browser.execute_script("arguments[0].scrollIntoView();", cell)
        image = lambda: [i.get_attribute("src") for i in cell.find_elements(By.CSS_SELECTOR, "img")]  # noqa: E731
        before = wait_for(browser, image, 60, "the widget's figure")

        def samples_slider():
            return next(s for s in cell.find_elements(By.CSS_SELECTOR, ".widget-slider") if "weight samples" in s.text)

        readout = lambda: samples_slider().find_element(By.CSS_SELECTOR, ".widget-readout").text  # noqa: E731
        start = readout()
        samples_slider().find_element(By.CSS_SELECTOR, ".noUi-handle").send_keys(Keys.ARROW_LEFT)
        wait_for(browser, lambda: readout() != start, 30, "the slider to move")
        wait_for(browser, lambda: (now := image()) and now != before, 120, "the widget to redraw its figure")
