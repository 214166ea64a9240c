"""Scale-out (DESIGN §4): the same script run as two processes with `streamframe run` and the same
app_id splits the input's partitions through the consumer group. A second process joining mid-stream
takes partitions over from the first (a rebalance: the first commits what it processed as they are
revoked), SIGTERM stops both cleanly, and together they write exactly what one bounded run writes."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

import streamframe as sf
from tests.faults.test_sigkill import _committed
from tests.integration.helpers import consume_all, create_topic, group_split, produce, records_read

pytestmark = pytest.mark.integration
APP = Path(__file__).with_name("filter_app.py")
PARTITIONS = 4


def _start(env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "streamframe.cli", "run", str(APP)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_split_the_partitions_and_write_what_one_run_writes(bootstrap, conn, topic_name,
                                                                          tmp_path):
    n = 6000
    rows = [{"id": i, "qty": i * 37 % 200, "price": 0.5 + i % 17} for i in range(n)]
    create_topic(bootstrap, topic_name, partitions=PARTITIONS)
    produce(bootstrap, topic_name, [orjson.dumps(r) for r in rows], keys=[f"k{i % 40}" for i in range(n)])
    out = f"{topic_name}-out"
    app_id = f"scale-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "SF_TOPIC": topic_name, "SF_OUT": out, "SF_APP_ID": app_id,
           "STREAMFRAME_BOOTSTRAP": bootstrap, "SF_GATE": str(tmp_path / "gate")}
    group = f"{app_id}.scale"
    first = _start(env)
    procs = [first]
    try:
        deadline = time.monotonic() + 120
        while _committed(conn, group, topic_name, PARTITIONS) < n // 10:  # the first is under way
            assert first.poll() is None, first.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "the first process made no progress"
            time.sleep(0.1)
        procs.append(_start(env))
        while len(group_split(bootstrap, group, PARTITIONS)) < 2:  # on a loaded machine the first is paced
            assert time.monotonic() < deadline, "the second process was given no partition"
            time.sleep(0.2)
        (tmp_path / "gate").touch()
        while _committed(conn, group, topic_name, PARTITIONS) < n:
            for p in procs:
                assert p.poll() is None, p.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "the two processes did not finish the input"
            time.sleep(0.2)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        outputs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    # Each says what it read as it stops: both read part of the input, and together all of it, once.
    read = records_read([stdout for stdout, _ in outputs], "scale")
    assert all(r > 0 for r in read) and sum(read) == n, read
    # The oracle: the same frame in one bounded run.
    s = sf.stream(topic_name)
    want = s[s.qty > 50].assign(notional=s.qty * s.price).run()
    got = [orjson.loads(m.value()) for m in consume_all(bootstrap, out, expect=len(want))]
    assert len(want) > 1000
    assert collections.Counter(r["id"] for r in got) == collections.Counter(want["id"].tolist())
    assert {r["id"]: r for r in got} == {r["id"]: r for r in want.to_dict("records")}
