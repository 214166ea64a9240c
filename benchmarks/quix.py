"""Quix Streams as a contestant: the apps in `quix_apps.py`, run by a Python of their own.

Quix Streams 3.28 needs confluent-kafka < 2.13, older than streamframe's, so it lives in its own virtual
environment under the user's cache directory, keyed by its version and the Python's, made on first use
(`python -m venv`, `pip install quixstreams==...`; about a minute, once). The app times itself, from
creating its Application to `run()` returning (outputs flushed, offsets committed), and prints the time.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

from benchmarks import common
from benchmarks.common import Run

QUIX_VERSION = "3.28.1"
APPS = Path(__file__).resolve().parent / "quix_apps.py"


def _home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    return Path(base) / "streamframe" / f"quixstreams-{QUIX_VERSION}-{tag}"


def python() -> str:
    """The Python of Quix Streams' environment, made on first use (under a file lock)."""
    home = _home()
    exe = home / "bin" / "python"
    if (home / ".complete").exists():
        return str(exe)
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f"{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / ".complete").exists():
            shutil.rmtree(home, ignore_errors=True)
            venv.EnvBuilder(with_pip=True).create(home)
            proc = subprocess.run([str(exe), "-m", "pip", "install", "-q", f"quixstreams=={QUIX_VERSION}"],
                                  capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
                raise RuntimeError(f"installing quixstreams=={QUIX_VERSION} into {home} failed:\n{tail}")
            (home / ".complete").write_text(f"quixstreams {QUIX_VERSION}\n")
    return str(exe)


def run(app: str, timeout: float = 900, **args) -> Run:
    """Run one Quix Streams app of quix_apps.py to completion; the seconds it reports."""
    found = common.run_child([python(), str(APPS), app, json.dumps(args)], f"Quix Streams {app}", timeout)
    return Run(found["elapsed_s"], {})
