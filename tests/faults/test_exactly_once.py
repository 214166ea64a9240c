"""Exactly-once against the real broker: a live filter + assign into a topic, SIGKILLed mid-stream three
times and restarted, read back read-committed, compared with pandas over the whole input — records in,
out, missing and duplicated. At-least-once runs the same kills as the contrast (it may duplicate)."""

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
import pandas as pd
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

import streamframe as sf
from tests.faults.test_sigkill import _committed
from tests.integration.helpers import create_topic, produce

pytestmark = pytest.mark.integration
APP = Path(__file__).with_name("eos_app.py")
PARTITIONS = 2


def read_committed(bootstrap: str, topic: str, timeout: float = 60.0, partitions: int = PARTITIONS) -> list:
    """Every committed record of `topic`: read until each partition's position reaches its high
    watermark, so no transaction is still open before it (a read-committed consumer's own end offsets
    stop at the first one); the last offsets of a transactional topic are markers, never delivered."""
    config = {"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:6]}",
              "enable.auto.commit": False}
    tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)]
    every = Consumer({**config, "isolation.level": "read_uncommitted"})
    try:
        ends = {tp.partition: every.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
    finally:
        every.close()
    c = Consumer({**config, "isolation.level": "read_committed"})
    try:
        c.assign(tps)
        out, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            out += [m for m in c.consume(1000, 0.3) if m.error() is None]
            positions = c.position([TopicPartition(topic, p) for p in range(partitions)])
            if all(tp.offset >= ends[tp.partition] or ends[tp.partition] == 0 for tp in positions):
                return out
        raise AssertionError(f"could not read {topic} to its end offsets {ends} in {timeout:g} s")
    finally:
        c.close()


def _run_with_kills(env, conn, group, topic, total, marks) -> None:
    """Start the app, SIGKILL it once its group has committed past each mark (a fraction of `total`),
    then let a last start finish the input and stop it with SIGTERM."""
    command = [sys.executable, "-m", "streamframe.cli", "run", "--processing-guarantee",
               env["SF_GUARANTEE"], str(APP)]
    for mark in [*marks, None]:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdout.readline() == b"started\n", proc.stderr.read().decode()[-2000:]
            deadline = time.monotonic() + 120
            target = total if mark is None else mark * total
            while _committed(conn, group, topic, PARTITIONS) < target:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "the app made no progress"
                time.sleep(0.05)
            if mark is not None:
                time.sleep(0.3)  # and a little more work: the kill lands inside a transaction
                proc.send_signal(signal.SIGKILL)
            else:
                proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        if mark is None:
            assert proc.returncode == 0, err.decode()[-2000:]


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
def test_sigkill_and_restart_neither_loses_nor_duplicates_under_exactly_once(
    bootstrap, conn, topic_name, tmp_path, guarantee
):
    n = 6000
    rows = [{"id": i, "qty": i * 37 % 200, "price": 0.5 + i % 17} for i in range(n)]
    create_topic(bootstrap, topic_name, partitions=PARTITIONS)
    produce(bootstrap, topic_name, [orjson.dumps(r) for r in rows], keys=[f"k{i % 40}" for i in range(n)])
    out = f"{topic_name}-out"
    app_id = f"eos-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "SF_TOPIC": topic_name, "SF_OUT": out, "SF_APP_ID": app_id,
           "SF_STATE_DIR": str(tmp_path / "state"), "SF_GUARANTEE": guarantee,
           # at-least-once commits every 5 s by default: the whole input would fit in one interval
           **({"SF_COMMIT_INTERVAL": "0.3"} if guarantee == "at_least_once" else {}),
           "STREAMFRAME_BOOTSTRAP": bootstrap}
    _run_with_kills(env, conn, f"{app_id}.eos", topic_name, n, (0.2, 0.45, 0.7))

    # The golden run: pandas over the whole input.
    frame = pd.DataFrame(rows)
    want = frame[frame.qty > 50].assign(notional=frame.qty * frame.price)
    got = [orjson.loads(m.value()) for m in read_committed(bootstrap, out)]
    counts = collections.Counter(r["id"] for r in got)
    missing = set(want["id"]) - set(counts)
    duplicated = sum(c - 1 for c in counts.values())
    print(f"{guarantee}: {n} in, {len(want)} expected, {len(got)} out, {len(missing)} missing, "
          f"{duplicated} duplicated")
    assert not missing and len(want) > 3000
    assert {r["id"]: r for r in got} == {r["id"]: r for r in want.to_dict("records")}
    if guarantee == "exactly_once":
        assert duplicated == 0 and len(got) == len(want)
    # No transaction is left open: a bounded run of the output ends at once with every record.
    assert len(sf.stream(out).run(timeout=30)) == len(got)


def test_a_bounded_run_stops_at_the_last_stable_offset(bootstrap, topic_name):
    """Records of a transaction still open are not waited for: the run ends with the committed ones."""
    create_topic(bootstrap, topic_name, partitions=1)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"t-{uuid.uuid4().hex[:6]}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    for i in range(10):
        producer.produce(topic_name, orjson.dumps({"i": i}))
    producer.commit_transaction(30)
    producer.begin_transaction()
    for i in range(10, 15):
        producer.produce(topic_name, orjson.dumps({"i": i}))
    producer.flush(30)  # delivered, inside the open transaction
    try:
        started = time.monotonic()
        got = sf.stream(topic_name).run(timeout=20)
        assert sorted(got["i"]) == list(range(10))
        assert time.monotonic() - started < 15
    finally:
        producer.abort_transaction(30)


def test_an_output_record_too_large_under_exactly_once_commits_nothing_past_it(bootstrap, conn, topic_name):
    """An output record over the topic's max.message.bytes, with on_error="fail": the query fails naming
    the limit, its open transaction is aborted, and readers see each batch before it once, none after."""
    out = f"{topic_name}-out"
    create_topic(bootstrap, topic_name, partitions=1)
    conn.ensure_topic(out, 1, {"max.message.bytes": "100000"})  # a batch of small records fits
    rows = [{"id": i, "pad": "x" * (200_000 if i == 300 else 10)} for i in range(600)]
    produce(bootstrap, topic_name, [orjson.dumps(r) for r in rows])
    q = sf.stream(topic_name, on_error="fail").to_topic(out, name="refused", batch_size=100,
                                                        processing_guarantee="exactly_once")
    try:
        deadline = time.monotonic() + 90
        while q.status == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert q.status == "failed", q.status
    finally:
        q.stop()
    assert "max.message.bytes" in str(q.exception) and "\n" not in str(q.exception), repr(q.exception)
    got = [orjson.loads(m.value())["id"] for m in read_committed(bootstrap, out, partitions=1)]
    assert got == list(range(len(got))) and len(got) < 300  # committed batches before it, once each
    committed = _committed(conn, q.group_id, topic_name, 1)
    assert committed == len(got) and committed <= 300
