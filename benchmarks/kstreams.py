"""Kafka Streams (Java, kafka-streams 4.3.1) as a contestant: the topologies in `benchmarks/kstreams_bench`,
built with Maven once and cached as the test oracles are (`tests/oracle/kstreams.py` `build_oracle`), run
as a child JVM against the same broker and input as the other contestants.

The time is the app's own, printed when it is done: from building its topology to `close()` returning
(outputs flushed, offsets committed). The JVM's start and class loading are not in it, as the Python
contestants' imports are not in theirs. The JVM runs with its defaults (C2 compiler, G1), as a user's would.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

from benchmarks import common
from benchmarks.common import Run
from tests.oracle.kstreams import java_command

PROJECT = Path(__file__).resolve().parent / "kstreams_bench"


def command(main_class: str, **args) -> list[str]:
    return java_command(PROJECT, f"streamframe.bench.{main_class}", ["-Xmx1g"], args)


def run(main_class: str, bootstrap: str, timeout: float = 600, **args) -> Run:
    """Run one Kafka Streams app to completion: the seconds it reports, and in its notes when its first
    record came (start-up: its consumer group's rebalance, stream threads), how long its close took, and
    what else it printed (late records). Its state directory and internal topics are removed after."""
    app_id = f"bench-kstreams-{uuid.uuid4().hex[:8]}"
    state_dir = tempfile.mkdtemp(prefix="streamframe-bench-kstreams-")
    cmd = command(main_class, bootstrap=bootstrap, app_id=app_id, state_dir=state_dir,
                  timeout_ms=int(timeout * 1000), **args)
    try:
        found = common.run_child(cmd, f"Kafka Streams {main_class}", timeout + 60)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        common.delete_topics(bootstrap, common.topics_with_prefix(bootstrap, app_id))
    seconds = found.pop("elapsed_s")
    return Run(seconds, {k: int(v) if k == "late" else v for k, v in found.items()})
