"""Re-execute the tutorials and store their outputs: what nbval compares against.

    .venv/bin/python tests/notebooks/refresh.py                      # all of notebooks/*.ipynb
    .venv/bin/python tests/notebooks/refresh.py notebooks/02-time-and-windows.ipynb

Like the suite, it runs them against a fresh broker in a temporary STREAMFRAME_HOME (or the cluster
named by STREAMFRAME_BOOTSTRAP), each on a fresh kernel of this Python, from the notebooks' folder.
The widget part of the stored outputs is dropped (its model does not exist without the kernel, and
nbval ignores it anyway), so a saved notebook shows the views' static HTML/text snapshots.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
WIDGET = "application/vnd.jupyter.widget-view+json"


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Outputs as a reader without the kernel sees them: no widget models, no run-specific metadata."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            out.get("data", {}).pop(WIDGET, None)
    return nb


def execute(path: Path, timeout: int = 120) -> float:
    nb = nbformat.read(path, as_version=4)
    started = time.monotonic()
    NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    ).execute()
    nbformat.write(clean(nb), path)
    return time.monotonic() - started


def warm_up(bootstrap: str) -> None:
    """One idempotent produce first: on a fresh broker the first producer id takes a moment and
    librdkafka logs a retry warning, which would otherwise land in a notebook's first output."""
    from streamframe.kafka.connection import Connection
    from streamframe.kafka.writer import Output

    conn = Connection(bootstrap, app_id="notebooks-warm-up")
    conn.ensure_topic("notebooks-warm-up")
    output = Output(conn)
    output.produce_many("notebooks-warm-up", [b"{}"], [None], [0])
    output.flush(30)


@contextlib.contextmanager
def broker():
    """The cluster the notebooks use: $STREAMFRAME_BOOTSTRAP, else a fresh local broker (stopped after)."""
    if os.environ.get("STREAMFRAME_BOOTSTRAP"):
        yield os.environ["STREAMFRAME_BOOTSTRAP"]
        return
    from streamframe import local

    with tempfile.TemporaryDirectory(prefix="streamframe-notebooks-") as home:
        os.environ["STREAMFRAME_HOME"] = home
        started = local.start()
        os.environ["STREAMFRAME_BOOTSTRAP"] = started.bootstrap
        try:
            yield started.bootstrap
        finally:
            local.stop()


def main(argv: list[str]) -> int:
    paths = [Path(a).resolve() for a in argv] or sorted(NOTEBOOKS.glob("*.ipynb"))
    with broker() as bootstrap:
        print(f"broker at {bootstrap}")
        warm_up(bootstrap)
        for path in paths:
            print(f"{path.name}: {execute(path):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
