"""The live view in a real browser: JupyterLab on 127.0.0.1, the quickstart run in headless Chromium.

The widget tests assert on the synced state; this proves the rest: the front end renders the view, its
table changes while the generator writes, and the chart draws. The quickstart runs cell by cell up to
the cell tagged `live-view`, is watched there, then runs to its end (which stops the queries). Screenshots
go to tests/browser/output/ (git-ignored).

Needs Debian's chromium (`make setup` installs it as root) and Playwright's Python package (its driver
ships in the wheel; no browser download).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "01-quickstart.ipynb"
OUTPUT = Path(__file__).with_name("output")
CHROMIUM = os.environ.get("STREAMFRAME_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# JupyterLab settings for a quiet, fully rendered notebook: no news toast, every cell in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
# Seconds to let the chart grow before the screenshot of the view (docs/live-view.png is one, taken longer).
LINGER = float(os.environ.get("STREAMFRAME_BROWSER_LINGER", "6"))
VIEW = ".jupyter-widgets.sf-view"  # the widget (the static HTML fallback has .sf-view but no widget classes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(
        f"JupyterLab did not answer at {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}"
    )


@pytest.fixture
def lab(bootstrap, tmp_path):
    """JupyterLab serving a copy of the quickstart (the browser's autosave must not touch the repo)."""
    work, home = tmp_path / "work", tmp_path / "jupyter"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    settings = home / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), os.urandom(12).hex()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "STREAMFRAME_BOOTSTRAP": bootstrap,
    }
    log = tmp_path / "jupyterlab.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                f"--ServerApp.root_dir={work}",
                f"--IdentityProvider.token={token}",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                "--ServerApp.open_browser=False",
                "--ServerApp.allow_root=True",
            ],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{base}/api/status?token={token}", proc, log)
        yield {"url": f"{base}/lab/tree/{NOTEBOOK.name}?reset&token={token}", "work": work, "log": log}
    finally:
        proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down on the way out
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _live_cell_index() -> tuple[int, int]:
    """(index of the cell tagged live-view, number of cells) in the quickstart."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "live-view" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "the quickstart tags exactly one cell live-view"
    return tagged[0], len(nb.cells)


ACTIVE = ("() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')]"
          ".findIndex(c => c.classList.contains('jp-mod-active'))")


def _run_cells(page, count: int) -> None:
    """Shift+Enter `count` times from the active cell (each runs it and moves to the next). Each press
    must move the active cell on: a press a busy page dropped is made again, after a wait long enough
    that a slow one would have shown (pressing again too early would run a cell more)."""
    for _ in range(count):
        before = page.evaluate(ACTIVE)
        for attempt in range(3):
            page.keyboard.press("Shift+Enter")
            try:
                page.wait_for_function(f"(before) => ({ACTIVE})() !== before", arg=before, timeout=15_000)
                break
            except Exception:
                if attempt == 2:
                    page.screenshot(path=str(OUTPUT / "cell-did-not-run.png"), full_page=True)
                    raise


KERNEL_IDLE = "() => /\\|\\s*Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent || '')"
FIRST_CODE_CELL_RAN = """() => {
    const p = document.querySelector('.jp-Notebook .jp-CodeCell .jp-InputPrompt');
    return !!p && /\\[(\\*|\\d+)\\]/.test(p.textContent);
}"""


def _run_from_the_top(page, count: int) -> None:
    """Run the first `count` cells, once the kernel is connected and idle. A first JupyterLab start on a
    busy machine can take the presses before its kernel session is ready: the cells are then passed over
    without being queued (their prompts stay [ ]:, the kernel idle), and they are run again from the top."""
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)
    for attempt in range(2):
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Escape")  # command mode: Shift+Enter runs and moves on
        _run_cells(page, count)
        try:
            page.wait_for_function(FIRST_CODE_CELL_RAN, timeout=30_000)
            return
        except Exception:
            page.screenshot(path=str(OUTPUT / f"cells-not-queued-{attempt + 1}.png"), full_page=True)
            if attempt == 1:
                raise


def _wait_executed(page, upto: int, timeout: float = 90.0) -> None:
    """Until every code cell among the first `upto` cells shows an execution count ([3]:, not [*]:)."""
    try:
        page.wait_for_function(
            """(upto) => {
                const cells = [...document.querySelectorAll('.jp-Notebook .jp-Cell')].slice(0, upto);
                return cells.filter(c => c.classList.contains('jp-CodeCell')).every(c => {
                    const p = c.querySelector('.jp-InputPrompt');
                    return p && /\\[\\d+\\]/.test(p.textContent);
                });
            }""",
            arg=upto,
            timeout=timeout * 1000,
        )
    except Exception:
        page.screenshot(path=str(OUTPUT / "cells-not-executed.png"), full_page=True)
        raise


def _errors(page) -> list[str]:
    texts = page.locator(".jp-OutputArea-output").all_inner_texts()
    return [t for t in texts if "Traceback" in t or "Error displaying widget" in t or "UsageError" in t]


@pytest.mark.timeout(240)
def test_the_quickstart_live_view_renders_and_updates_in_chromium(lab):
    assert Path(CHROMIUM).exists(), (
        f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium (as root)"
    )
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    live_index, cells = _live_cell_index()
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(lab["work"].parent / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = browser.pages[0] if browser.pages else browser.new_page()
            page.goto(lab["url"])
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator", timeout=60_000)
            _run_from_the_top(page, live_index + 1)
            _wait_executed(page, live_index + 1)
            view = page.locator(VIEW)
            try:
                view.wait_for(timeout=90_000)  # a first JupyterLab start on a busy machine is slow
            except Exception:
                page.screenshot(path=str(OUTPUT / "no-live-view.png"), full_page=True)
                raise
            view.scroll_into_view_if_needed()
            status, table = view.locator(".sf-status"), view.locator(".sf-table")
            page.wait_for_function(
                "(sel) => /running/.test(document.querySelector(sel + ' .sf-status')?.textContent || '')",
                arg=VIEW,
                timeout=30_000,
            )
            # the table fills, then its values change while the generator writes
            page.wait_for_function(
                "(sel) => !!document.querySelector(sel + ' table.sf-rows')", arg=VIEW, timeout=30_000
            )
            first_table, first_status = table.inner_text(), status.inner_text()
            page.screenshot(path=str(OUTPUT / "quickstart-live-1.png"), full_page=False)
            changed = False
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not changed:
                page.wait_for_timeout(500)
                changed = table.inner_text() != first_table
            assert changed, f"the live table did not change in 20 s:\n{first_table}"
            assert status.inner_text() != first_status
            # the chart draws one line per symbol over window_start
            page.wait_for_function(
                "(sel) => document.querySelectorAll(sel + ' svg.sf-chart polyline').length >= 2",
                arg=VIEW,
                timeout=30_000,
            )
            page.wait_for_timeout(1000 * LINGER)  # a few more windows, for the picture
            view.screenshot(path=str(OUTPUT / "live-view.png"))
            page.screenshot(path=str(OUTPUT / "quickstart-live-2.png"), full_page=False)
            assert view.locator("svg.sf-chart polyline").count() >= 2
            assert view.locator(".widget-dropdown select").count() == 1  # the sort control rendered

            # the rest of the notebook: a sink, the query list, then everything is stopped
            page.locator(".jp-Notebook .jp-Cell").nth(live_index + 1).click()
            page.keyboard.press("Escape")
            _run_cells(page, cells - live_index - 1)
            _wait_executed(page, cells)
            page.wait_for_function(
                "(sel) => /stopped/.test(document.querySelector(sel + ' .sf-status')?.textContent || '')",
                arg=VIEW,
                timeout=30_000,
            )
            page.screenshot(path=str(OUTPUT / "quickstart-end.png"), full_page=True)
            assert _errors(page) == []
        finally:
            browser.close()
