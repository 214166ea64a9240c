"""Exactly-once with state, against the real broker: an aggregation by a column (windows emitted final,
and a table of updates), SIGKILLed mid-stream, crashed by the checkpoint's fault switch just before and
just after a commit, restarted with its state files deleted; read back read-committed and compared with
pandas over the whole input — records in, out, missing and duplicated. At-least-once runs the same
steps as the contrast (it may duplicate, never lose)."""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from confluent_kafka import Producer

import streamframe as sf
from tests.faults.test_exactly_once import PARTITIONS, read_committed
from tests.faults.test_sigkill import _committed
from tests.integration.helpers import create_topic, produce

pytestmark = pytest.mark.integration
APP = Path(__file__).with_name("eos_state_app.py")
BASE = 1_700_000_000_000
# Each step: a SIGKILL once the group has committed past a fraction of the input, the fault switch
# (the process dies by itself at its Nth commit), or the state directory deleted before the next start.
STEPS = (("kill", 0.15), ("fault", "before_commit:4"), ("kill", 0.4), ("wipe", None),
         ("fault", "after_commit:4"), ("kill", 0.7))


def _input(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": np.arange(n), "k": [f"k{i}" for i in rng.integers(0, 12, n)],
                         "amount": rng.integers(1, 100, n), "ts": BASE + np.arange(n) * 7})


def _run(env: dict, conn, group: str, topic: str, total: int, state: Path, finish) -> list:
    """Start the app for each step, then once more to the end of the input, where `finish()` produces
    the records that close the last windows and says how many (stopped by SIGTERM once they are
    processed); returns what the group had committed when each step ended."""
    command = [sys.executable, "-m", "streamframe.cli", "run", "--processing-guarantee",
               env["SF_GUARANTEE"], str(APP)]
    progress = []
    for step, arg in [*STEPS, ("end", None)]:
        if step == "wipe":
            shutil.rmtree(state, ignore_errors=True)
            continue
        run_env = {**env, **({"STREAMFRAME_FAULT": arg} if step == "fault" else {})}
        proc = subprocess.Popen(command, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdout.readline() == b"started\n", proc.stderr.read().decode()[-2000:]
            if step == "fault":
                assert proc.wait(120) == 70, proc.stderr.read().decode()[-2000:]  # died at the switch
            else:
                _wait(proc, lambda: _committed(conn, group, topic, PARTITIONS),
                      total if step == "end" else arg * total)
                if step == "end":
                    _wait(proc, lambda: _committed(conn, group, topic, PARTITIONS), total + finish())
                time.sleep(0.3)  # a little more work: the kill lands inside a transaction
                proc.send_signal(signal.SIGKILL if step == "kill" else signal.SIGTERM)
                _, err = proc.communicate(timeout=60)
                if step == "end":
                    assert proc.returncode == 0, err.decode()[-2000:]
        finally:
            if proc.poll() is None:
                proc.kill()
        progress.append(_committed(conn, group, topic, PARTITIONS))
    return progress


def _wait(proc, committed, target: float) -> None:
    deadline = time.monotonic() + 120
    while committed() < target:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the app made no progress"
        time.sleep(0.05)


@pytest.mark.parametrize("shape", ["window", "table"])
@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_state_survives_kills_crashes_and_lost_files_exactly_once(
    bootstrap, conn, topic_name, tmp_path, shape, guarantee
):
    n = 5000
    df = _input(n, seed=len(shape))
    create_topic(bootstrap, topic_name, partitions=PARTITIONS)
    produce(bootstrap, topic_name, [orjson.dumps(r) for r in df.to_dict("records")],
            keys=[f"id{i % 50}" for i in range(n)])

    def finish() -> int:
        """Once the input is processed, a record per group far ahead in time, so every window closes
        (grace 60 s: whatever the order the partitions are read in, none of the input is late)."""
        if shape == "table":
            return 0
        flush = [orjson.dumps({"id": -1, "k": k, "amount": 0, "ts": int(df.ts.max()) + 200_000})
                 for k in sorted(df.k.unique())]
        produce(bootstrap, topic_name, flush, keys=[f"id{i}" for i in range(len(flush))])
        return len(flush)

    out = f"{topic_name}-out"
    app_id = f"eoss-{uuid.uuid4().hex[:6]}"
    state = tmp_path / "state"
    env = {**os.environ, "SF_TOPIC": topic_name, "SF_OUT": out, "SF_APP_ID": app_id, "SF_SHAPE": shape,
           "SF_STATE_DIR": str(state), "SF_GUARANTEE": guarantee, "STREAMFRAME_BOOTSTRAP": bootstrap,
           # at-least-once commits every 5 s by default: the whole input would fit in one interval
           **({"SF_COMMIT_INTERVAL": "0.3"} if guarantee == "at_least_once" else {})}
    progress = _run(env, conn, f"{app_id}.eos-state", topic_name, n, state, finish)
    assert progress[-2] < n, f"the last kill should land mid-stream: {progress}"

    # The golden run: pandas over the whole input.
    if shape == "window":
        want = df.assign(window_start=df.ts // 1000 * 1000).groupby(["k", "window_start"]) \
            .agg(n=("amount", "count"), total=("amount", "sum"))
    else:
        want = df.groupby("k").agg(n=("amount", "count"), total=("amount", "sum"))
    want = {key if isinstance(key, tuple) else (key,): (int(r.n), int(r.total)) for key, r in want.iterrows()}
    records = read_committed(bootstrap, out)
    got = collections.defaultdict(list)
    for m in records:
        value = orjson.loads(m.value())
        if shape == "window":  # a windowed key is JSON; a table's is the group key's text
            key = orjson.loads(m.key())
            group = (key["k"], int(key["window_start"]))
        else:
            group = (m.key().decode(),)
        got[group].append((int(value["n"]), int(value["total"])))
    missing = set(want) - set(got)
    if shape == "window":  # a final window is written once
        duplicated = sum(len(v) - 1 for v in got.values())
    else:  # each update counts more records in than the one before it: a repeat does not
        duplicated = sum(sum(b[0] <= a[0] for a, b in zip(v, v[1:])) for v in got.values())
    print(f"{shape}, {guarantee}: {n} in, {len(want)} groups expected, {len(records)} out, "
          f"{len(missing)} missing, {duplicated} duplicated; committed after each step {progress}")
    assert not missing and len(want) >= 12
    if guarantee == "at_least_once":  # records processed again after a crash are counted again
        over = sum(got[g][-1][0] - want[g][0] for g in want)
        print(f"  at-least-once counted {over} records more than once")
        assert all(got[g][-1][0] >= want[g][0] for g in want)
        return
    assert {g: v[-1] for g, v in got.items()} == want
    if guarantee == "exactly_once":
        assert duplicated == 0
        if shape == "window":
            assert len(records) == len(want)
        _assert_no_transaction_left_open(bootstrap, out)


def _assert_no_transaction_left_open(bootstrap: str, topic: str) -> None:
    """A marker produced in a transaction after the runs is readable read-committed, so nothing before
    it is still open (a transaction left open would hold every later record back)."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"mark-{uuid.uuid4().hex[:6]}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    for p in range(PARTITIONS):
        producer.produce(topic, b'{"marker": true}', key=b"marker", partition=p)
    producer.commit_transaction(30)
    markers = [m for m in read_committed(bootstrap, topic) if m.key() == b"marker"]
    assert len(markers) == PARTITIONS
    assert sf.stream(topic).run(timeout=30)["marker"].notna().sum() == PARTITIONS
