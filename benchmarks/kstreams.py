"""Kafka Streams (Java, kafka-streams 4.3.1) as a contestant: the topologies in `benchmarks/kstreams_bench`,
built with Maven once and cached as the test oracles are (`tests/oracle/kstreams.py` `build_oracle`), run
as a child JVM against the same broker and input as the other contestants.

The time is the app's own, printed when it is done: from building its topology to `close()` returning
(outputs flushed, offsets committed). The JVM's start and class loading are not in it, as the Python
contestants' imports are not in theirs. The JVM runs with its defaults (C2 compiler, G1), as a user's would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from benchmarks import common
from benchmarks.common import Run
from tests.oracle.kstreams import OracleError, build_oracle

PROJECT = Path(__file__).resolve().parent / "kstreams_bench"


def command(main_class: str, **args) -> list[str]:
    home = build_oracle(PROJECT)
    java = shutil.which("java")
    if os.environ.get("JAVA_HOME") and (Path(os.environ["JAVA_HOME"]) / "bin" / "java").exists():
        java = str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    if java is None:
        raise OracleError("java is not on PATH (Java 17+ runs the Kafka Streams contestant)")
    cp = os.pathsep.join([str(home / "classes"), str(home / "lib" / "*")])
    cmd = [java, "-Xmx1g", "-cp", cp, f"streamframe.bench.{main_class}"]
    for name, value in args.items():
        cmd += [f"--{name.replace('_', '-')}", str(value)]
    return cmd


def run(main_class: str, bootstrap: str, timeout: float = 600, **args) -> Run:
    """Run one Kafka Streams app to completion: the seconds it reports, and in its notes when its first
    record came (start-up: its consumer group's rebalance, stream threads), how long its close took, and
    what else it printed (late records). Its state directory and internal topics are removed after."""
    app_id = f"bench-kstreams-{uuid.uuid4().hex[:8]}"
    state_dir = tempfile.mkdtemp(prefix="streamframe-bench-kstreams-")
    cmd = command(main_class, bootstrap=bootstrap, app_id=app_id, state_dir=state_dir,
                  timeout_ms=int(timeout * 1000), **args)
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout + 60)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"Kafka Streams {main_class} did not finish within {timeout + 60:.0f} s") from exc
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        common.delete_topics(bootstrap, common.topics_with_prefix(bootstrap, app_id))
    found = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", proc.stdout)}
    if proc.returncode != 0 or "elapsed_s" not in found:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"Kafka Streams {main_class} failed (exit {proc.returncode}):\n{tail}")
    seconds = found.pop("elapsed_s")
    return Run(seconds, {k: int(v) if k == "late" else v for k, v in found.items()})
