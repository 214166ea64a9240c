"""The tutorials in a real browser: JupyterLab on 127.0.0.1, each of the tutorials run in headless
Chromium.

The widget tests assert on the synced state; this proves the rest. Every tutorial runs from a copy with
its stored outputs cleared, and then: no cell has an error output, and every widget output the kernel
sent (counted in the notebook JupyterLab saves) rendered as a widget, not as its text fallback or
"Error displaying widget". The quickstart runs cell by cell up to the cell tagged `live-view` and is
watched there: the grid's rows and the chart's series change between two moments, a header click sorts
the grid, the chart answers a hover; then it runs to its end (which stops the queries).

Screenshots go to tests/browser/output/ (git-ignored; $STREAMFRAME_BROWSER_OUTPUT elsewhere), one per
tutorial plus the live view's; the README's picture (docs/live-view.png) is `live-view.png` from there.

Needs Debian's chromium (`make chromium` installs it as root) and Playwright's Python package (its driver
ships in the wheel; no browser download).
"""

from __future__ import annotations

import json
import os
import re
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
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
QUICKSTART = ROOT / "notebooks" / "01-quickstart.ipynb"
OUTPUT = Path(os.environ.get("STREAMFRAME_BROWSER_OUTPUT") or Path(__file__).with_name("output"))
WIDGET = "application/vnd.jupyter.widget-view+json"
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


def _fresh_copy(source: Path, target: Path) -> None:
    """The notebook without its stored outputs and counts, so what the page shows is this run's."""
    nb = nbformat.read(source, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, target)


@pytest.fixture(scope="module")
def lab(bootstrap, tmp_path_factory):
    """JupyterLab serving fresh copies of the tutorials (the browser's autosave must not touch the repo),
    with its app object exposed to the page (`window.jupyterapp`) so a test can run its commands."""
    root = tmp_path_factory.mktemp("lab")
    work, home = root / "work", root / "jupyter"
    work.mkdir()
    for notebook in NOTEBOOKS:
        _fresh_copy(notebook, work / notebook.name)
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
    log = root / "jupyterlab.log"
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
                "--LabApp.expose_app_in_browser=True",
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
        yield {"base": base, "token": token, "work": work, "log": log, "profile": root / "chromium-profile"}
    finally:
        proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down on the way out
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def browser(lab):
    """One headless Chromium for all the tutorials (each opens in a page of its own)."""
    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: `make chromium` installs Debian's (as root)"
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {OUTPUT}")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(lab["profile"]),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


def _api(lab, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{lab['base']}{path}?token={lab['token']}", method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture
def notebook_page(lab, browser):
    """open(name) → a page showing that tutorial with its kernel idle; afterwards its kernel is shut down
    (the next tutorial starts from a fresh one, as nbval's do) and the page closed."""
    pages = []

    def open_notebook(name: str):
        page = browser.new_page()
        pages.append(page)
        page.goto(f"{lab['base']}/lab/tree/{name}?reset&token={lab['token']}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator", timeout=60_000)
        page.wait_for_function(KERNEL_IDLE, timeout=90_000)
        page.wait_for_function("() => !!window.jupyterapp", timeout=30_000)
        return page

    yield open_notebook
    for page in pages:
        page.close()
    for session in _api(lab, "/api/sessions"):
        _api(lab, f"/api/sessions/{session['id']}", method="DELETE")


def _live_cell_index() -> tuple[int, int]:
    """(index of the cell tagged live-view, number of cells) in the quickstart."""
    nb = nbformat.read(QUICKSTART, as_version=4)
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


def _run_all(page, cells: int) -> None:
    """Run every cell through JupyterLab's own command (Run > Run All Cells) and wait for them all."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    _wait_executed(page, cells, timeout=180)
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)


def _saved(page, lab, name: str) -> nbformat.NotebookNode:
    """The notebook as JupyterLab saves it now: this run's outputs, as the kernel sent them."""
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    nb = nbformat.read(lab["work"] / name, as_version=4)
    # (Shift+Enter on the last cell adds an empty one below it: nothing to run there)
    unrun = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and c.source.strip() and c.execution_count is None]
    assert unrun == [], f"{name}: cells {unrun} were not run (or the save did not happen)"
    return nb


# JupyterLab marks each output with the mime type it rendered (data-mime-type), except those the widget
# renderer took; a widget that fell back to its text/HTML form carries that form's type instead.
WIDGET_OUTPUTS = f"""() => [...document.querySelectorAll('.jp-OutputArea-output')]
    .filter(o => !o.dataset.mimeType || o.dataset.mimeType === '{WIDGET}')
    .map(o => ({{rendered: !!o.querySelector('.jupyter-widgets'), text: o.innerText.slice(0, 300)}}))"""


def _check_tutorial(page, lab, name: str) -> None:
    """No error output; every widget the kernel sent rendered as one; explain() drew its graph."""
    nb = _saved(page, lab, name)
    outputs = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.outputs]
    errors = [(i, o.get("ename"), o.get("evalue")) for i, o in outputs if o.output_type == "error"]
    assert errors == [], f"{name}: error outputs {errors}"
    sent = sum(WIDGET in o.get("data", {}) for _, o in outputs)
    shown = page.evaluate(WIDGET_OUTPUTS)
    if len(shown) != sent:
        kinds = page.evaluate(
            "() => [...document.querySelectorAll('.jp-OutputArea-output')].map(o => o.dataset.mimeType)"
        )
        raise AssertionError(f"{name}: {sent} widget outputs sent, {len(shown)} shown as widgets; {kinds}")
    broken = [w["text"] for w in shown if not w["rendered"] or "Error displaying widget" in w["text"]]
    assert broken == [], f"{name}: widgets that did not render: {broken}"
    if any("sf-op" in o.get("data", {}).get("text/html", "") for _, o in outputs):  # an explain()
        drawn = page.locator(".jp-OutputArea-output svg g.sf-op").count()
        assert drawn >= 2, f"{name}: explain() drew no graph"
    assert _errors(page) == []
    page.screenshot(path=str(OUTPUT / f"{Path(name).stem}.png"), full_page=True)


HOVER = "(sel) => (document.querySelector(sel + ' .js-plotly-plot .hoverlayer')?.childElementCount || 0) > 0"
HEADER = """([sel, text]) => [...document.querySelectorAll(sel + ' .sf-head')]
    .some(b => b.textContent.trim() === text)"""
SERIES = """(sel) => [...document.querySelectorAll(sel + ' .js-plotly-plot .scatterlayer .trace')]
    .map(t => t.querySelector('path.js-line')?.getAttribute('d') || '').join('|')"""


@pytest.mark.timeout(300)
def test_the_quickstart_live_view_renders_and_updates_in_chromium(lab, notebook_page):
    live_index, cells = _live_cell_index()
    page = notebook_page(QUICKSTART.name)
    _run_from_the_top(page, live_index + 1)
    _wait_executed(page, live_index + 1)
    view = page.locator(VIEW)
    try:
        view.wait_for(timeout=90_000)  # a first JupyterLab start on a busy machine is slow
    except Exception:
        page.screenshot(path=str(OUTPUT / "no-live-view.png"), full_page=True)
        raise
    view.scroll_into_view_if_needed()
    status, grid = view.locator(".sf-status"), view.locator(".sf-grid")
    page.wait_for_function(
        "(sel) => /running/.test(document.querySelector(sel + ' .sf-status')?.textContent || '')",
        arg=VIEW,
        timeout=30_000,
    )
    # the grid fills and the chart draws a line per symbol, then both change while the generator writes
    page.wait_for_function(
        "(sel) => !!document.querySelector(sel + ' .sf-grid .sf-col .sf-cell')", arg=VIEW, timeout=30_000
    )
    page.wait_for_function(f"(sel) => ({SERIES})(sel).split('|').length >= 2", arg=VIEW, timeout=30_000)
    first_grid, first_status = grid.inner_text(), status.inner_text()
    first_series = page.evaluate(SERIES, VIEW)
    assert "–" in first_grid and "volume" in first_grid  # compact windows, the headers
    page.screenshot(path=str(OUTPUT / "quickstart-live-1.png"), full_page=False)
    grid_changed = series_changed = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (grid_changed and series_changed):
        page.wait_for_timeout(500)
        grid_changed = grid_changed or grid.inner_text() != first_grid
        series_changed = series_changed or page.evaluate(SERIES, VIEW) != first_series
    assert grid_changed, f"the live grid did not change in 20 s:\n{first_grid}"
    assert series_changed, "the chart's series did not change in 20 s"
    assert status.inner_text() != first_status
    assert view.locator(".js-plotly-plot .legend .traces").count() >= 2  # a legend entry per symbol
    ticks = view.locator(".js-plotly-plot .xtick text").evaluate_all("ts => ts.map(t => t.textContent)")
    assert ticks and all(re.match(r"\d\d:\d\d:\d\d", t) for t in ticks), ticks  # a time axis

    page.wait_for_timeout(1000 * LINGER)  # a few more windows, for the picture
    plot = view.locator(".js-plotly-plot .nsewdrag").first  # plotly's drag (zoom) surface
    plot.scroll_into_view_if_needed()
    box = plot.bounding_box()
    hovered = False
    for step in range(40):  # an update redraws the chart and clears the label: point again until it shows
        page.mouse.move(box["x"] + box["width"] * (0.55 + 0.01 * (step % 5)), box["y"] + box["height"] * 0.5)
        page.wait_for_timeout(100)
        hovered = page.evaluate(HOVER, VIEW)
        if hovered:
            break
    assert hovered, "no hover label over the chart"
    view.screenshot(path=str(OUTPUT / "live-view.png"))
    page.screenshot(path=str(OUTPUT / "quickstart-live-2.png"), full_page=False)

    # a header click sorts the grid through the kernel: volume ascending, then descending
    header = view.locator(".sf-grid .sf-head", has_text="volume")
    header.click()
    page.wait_for_function(HEADER, arg=[VIEW, "volume ▲"], timeout=15_000)
    header.click()
    page.wait_for_function(HEADER, arg=[VIEW, "volume ▼"], timeout=15_000)
    volumes = page.evaluate(
        """(sel) => [...document.querySelectorAll(sel + ' .sf-col[data-column="volume"] .sf-cell')]
            .map(c => Number(c.textContent.replace(/,/g, '')))""",
        VIEW,
    )
    assert len(volumes) >= 2 and volumes == sorted(volumes, reverse=True), volumes

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
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    _check_tutorial(page, lab, QUICKSTART.name)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("notebook", [p for p in NOTEBOOKS if p != QUICKSTART], ids=lambda p: p.stem)
def test_each_tutorial_runs_in_jupyterlab_with_every_widget_rendered(lab, notebook_page, notebook):
    cells = len(nbformat.read(notebook, as_version=4).cells)
    page = notebook_page(notebook.name)
    try:
        _run_all(page, cells)
    except Exception:
        page.screenshot(path=str(OUTPUT / f"{notebook.stem}-did-not-finish.png"), full_page=True)
        raise
    _check_tutorial(page, lab, notebook.name)


FAILING = '''import pandas as pd
import streamframe as sf

def boom(batch):
    raise ValueError("price feed broke")

sf.from_pandas(pd.DataFrame({"x": range(5)}), on_error="fail").map(boom)'''


@pytest.mark.timeout(180)
def test_a_failed_query_shows_its_error_and_its_traceback_behind_a_toggle(lab, notebook_page):
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nb.cells = [nbformat.v4.new_code_cell(FAILING)]
    nbformat.write(nb, lab["work"] / "failed-query.ipynb")
    page = notebook_page("failed-query.ipynb")
    _run_all(page, 1)
    failure = page.locator(f"{VIEW} .sf-failure")
    failure.wait_for(timeout=30_000)
    assert "price feed broke" in failure.inner_text()
    assert "failed" in page.locator(f"{VIEW} .sf-status").inner_text()
    trace = failure.locator(".sf-traceback")
    assert not trace.is_visible()  # closed at first: one line, not a wall of text
    failure.locator("summary").click()
    trace.wait_for(state="visible", timeout=5_000)
    assert "Traceback (most recent call last)" in trace.inner_text() and "ValueError" in trace.inner_text()
    page.locator(VIEW).screenshot(path=str(OUTPUT / "failed-query.png"))
