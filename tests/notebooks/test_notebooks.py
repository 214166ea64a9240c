"""The tutorials in notebooks/, executed by nbval against the suite's broker and compared with their stored
outputs (sanitized by sanitize.cfg; live cells are marked `# NBVAL_IGNORE_OUTPUT`).

nbval runs in a child pytest, one fresh kernel per notebook from this Python, with the environment the
`bootstrap` fixture set up (STREAMFRAME_BOOTSTRAP, STREAMFRAME_HOME), so `sf.connect()` in the notebooks
and the Kafka Connect worker of notebook 04 use the suite's broker. After editing a notebook, refresh its
stored outputs with `python tests/notebooks/refresh.py notebooks/NN-name.ipynb`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.notebooks.refresh import warm_up

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SANITIZE = Path(__file__).with_name("sanitize.cfg")


@pytest.fixture(scope="module")
def warm_broker(bootstrap):
    warm_up(bootstrap)
    return bootstrap


def test_there_are_seven_tutorials():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_matches_its_stored_outputs(notebook, warm_broker, tmp_path):
    env = {**os.environ, "STREAMFRAME_BOOTSTRAP": warm_broker, "PYTHONDONTWRITEBYTECODE": "1"}
    ini = tmp_path / "pytest.ini"  # the child does not read the project's pytest settings
    ini.write_text("[pytest]\n")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(ini),
        "--rootdir",
        str(tmp_path),
        "-p",
        "no:cacheprovider",
        "-q",
        "--no-header",
        "--nbval",
        str(notebook),
        "--nbval-current-env",
        "--nbval-sanitize-with",
        str(SANITIZE),
        "--nbval-cell-timeout",
        "120",
    ]
    started = time.monotonic()
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540)
    took = time.monotonic() - started
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    print(f"{notebook.name}: {summary} in {took:.1f} s")
    assert result.returncode == 0, (
        f"nbval failed on {notebook.name}:\n{result.stdout[-12000:]}\n{result.stderr[-3000:]}"
    )
