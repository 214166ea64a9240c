"""The state directory on a small filesystem that fills up (issue 13, item 5): a tmpfs mounted by the test,
all but a little of it taken by a ballast file, under a live windowed query with durable state. The
query fails within seconds with one line naming the directory; the consumer group has committed nothing
past the offsets saved in the SQLite file; once the ballast is deleted a restart finishes the input and
the output equals pandas over it (at-least-once: a window may be written again, with the same values)."""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

import streamframe as sf
from tests.faults.test_exactly_once import read_committed
from tests.integration.helpers import create_topic, produce

pytestmark = pytest.mark.integration
APP = Path(__file__).with_name("disk_app.py")
BASE = 1_700_000_000_000
PARTITIONS = 2
SIZE = 8 * 1024 * 1024  # the mount; SQLite's WAL alone may grow to 4 MB (1000 pages) before it starts over
LEAVE = 384 * 1024  # what the ballast leaves free: a few checkpoints' worth of WAL
ERROR_WITHIN = 10.0  # s from the query's last commit to its process ending with the error


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of SIZE bytes of the test's own, unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "state"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs refused: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def _free(mount: Path) -> int:
    st = os.statvfs(mount)
    return st.f_bavail * st.f_frsize


def _ballast(mount: Path, leave: int) -> Path:
    """A file taking all of the mount's free space but `leave` bytes (written, so tmpfs holds the pages)."""
    assert os.path.ismount(mount) and _free(mount) <= SIZE  # never anything but the test's own tmpfs
    ballast = mount / "ballast"
    ballast.write_bytes(b"\0" * (_free(mount) - leave))
    return ballast


def _input(n: int, keys: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = BASE + np.arange(n) * 7 - rng.integers(0, 400, n)  # a little out of order, none later than grace
    return pd.DataFrame({"k": [f"k{i}" for i in rng.integers(0, keys, n)], "amount": rng.integers(1, 100, n),
                         "ts": ts})


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        for _ in range(50):  # a fresh broker's group coordinator may still be loading
            try:
                offsets = c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
                return {tp.partition: max(tp.offset, 0) for tp in offsets}
            except KafkaException:
                time.sleep(0.2)
        raise AssertionError("could not read the group's committed offsets")
    finally:
        c.close()


def _saved(path: Path) -> dict[int, int]:
    """The input offsets the SQLite file holds state for (read-only: the disk may still be full)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {p: n for _, p, n in db.execute("SELECT topic, partition, next FROM offsets")}
    finally:
        db.close()


def test_a_full_state_directory_fails_the_query_clearly_and_a_restart_after_space_is_freed_recovers(
    bootstrap, conn, topic_name, small_disk
):
    n = 20_000
    df = _input(n, keys=12, seed=13)
    create_topic(bootstrap, topic_name, partitions=PARTITIONS)
    produce(bootstrap, topic_name, [orjson.dumps(r) for r in df.to_dict("records")], keys=df["k"].tolist())
    out, app_id = f"{topic_name}-out", f"disk-{uuid.uuid4().hex[:6]}"
    group, state_file = f"{app_id}.disk", small_disk / app_id / "disk.sqlite"
    env = {**os.environ, "SF_TOPIC": topic_name, "SF_OUT": out, "SF_APP_ID": app_id,
           "SF_STATE_DIR": str(small_disk), "STREAMFRAME_BOOTSTRAP": bootstrap}
    command = [sys.executable, "-m", "streamframe.cli", "run", str(APP)]
    ballast = _ballast(small_disk, LEAVE)
    print(f"\n{SIZE // 1024} KB tmpfs at {small_disk}, {_free(small_disk) // 1024} KB free besides")

    # 1. The state outgrows the space: the query fails by itself, with one line naming the directory.
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "started\n", proc.stderr.read()[-2000:]
        last, last_change = {}, time.monotonic()
        while proc.poll() is None:
            assert time.monotonic() - started < 120, "the query neither failed nor finished"
            now = _committed(bootstrap, group, topic_name)
            if now != last:
                last, last_change = now, time.monotonic()
            time.sleep(0.05)
        failed_after = time.monotonic() - last_change
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    free_at_error = _free(small_disk)
    lines = [line for line in err.splitlines() if "is full" in line]
    print(f"the query ended with status {proc.returncode} {failed_after:.2f} s after its last commit, "
          f"{time.monotonic() - started:.1f} s after it started, {free_at_error // 1024} KB free: {lines}")
    assert proc.returncode == 1 and lines, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    expected = f"state directory {small_disk / app_id} is full (database or disk is full)"
    assert all(expected in line for line in lines), lines
    assert failed_after < ERROR_WITHIN

    # 2. Nothing committed past the state the file holds: a restart from it loses nothing.
    committed, saved = _committed(bootstrap, group, topic_name), _saved(state_file)
    print(f"committed {committed}, saved in {state_file.name} {saved} (of {n} records)")
    assert saved and 0 < sum(committed.values()) < n, "the disk should fill mid-stream"
    assert all(committed[p] <= saved.get(p, 0) for p in committed)

    # 3. Space freed, the query started again: it finishes the input from the file.
    ballast.unlink()
    keys = sorted(df.k.unique())  # a record per key far ahead in time, so every window closes
    flush = [orjson.dumps({"k": k, "amount": 0, "ts": int(df.ts.max()) + 200_000}) for k in keys]
    restarted = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "started\n", proc.stderr.read()[-2000:]
        for target, then in ((n, lambda: produce(bootstrap, topic_name, flush, keys=keys)),
                             (n + len(flush), None)):
            while sum(_committed(bootstrap, group, topic_name).values()) < target:
                assert proc.poll() is None, proc.stderr.read()[-2000:]
                assert time.monotonic() - restarted < 120, "the restarted query did not finish the input"
                time.sleep(0.1)
            if then is not None:
                caught_up = time.monotonic() - restarted
                then()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not list(small_disk.rglob("*.corrupt")), "the state file was taken for a bad one"

    # 4. The golden run: pandas over the whole input; every window once, repeats (at-least-once) equal.
    want = df.assign(window_start=df.ts // 1000 * 1000).groupby(["k", "window_start"]) \
        .agg(n=("amount", "count"), total=("amount", "sum"))
    want = {key: (int(r.n), int(r.total)) for key, r in want.iterrows()}
    records = read_committed(bootstrap, out, partitions=PARTITIONS)
    got = collections.defaultdict(list)
    for m in records:
        key, value = orjson.loads(m.key()), orjson.loads(m.value())
        got[(key["_key"], int(key["window_start"]))].append((int(value["n"]), int(value["total"])))
    missing = set(want) - set(got)
    duplicated = sum(len(v) - 1 for v in got.values())
    wrong = sum(1 for g, v in got.items() if any(x != want.get(g) for x in v))
    print(f"disk full: {n} in, {len(want)} windows expected, {len(records)} out, {len(missing)} missing, "
          f"{duplicated} duplicated, {wrong} wrong; error {failed_after:.2f} s after the last commit; "
          f"restart caught up in {caught_up:.1f} s")
    assert len(want) > 1000 and not missing and wrong == 0
    assert {g: v[-1] for g, v in got.items()} == want


def test_an_exactly_once_query_on_a_full_state_directory_fails_at_once_naming_it(
    bootstrap, conn, topic_name, small_disk
):
    """Exactly-once keeps the process's transactional id in an instance file in the state directory:
    written first, so a full disk fails there, as clearly."""
    create_topic(bootstrap, topic_name, partitions=PARTITIONS)
    df = _input(200, keys=4, seed=3)
    produce(bootstrap, topic_name, [orjson.dumps(r) for r in df.to_dict("records")], keys=df["k"].tolist())
    app_id = f"disk-eos-{uuid.uuid4().hex[:6]}"
    sf.connect(bootstrap, app_id=app_id, processing_guarantee="exactly_once")
    _ballast(small_disk, leave=0)
    began = time.monotonic()
    query = (sf.stream(topic_name, timestamp="ts").groupby("_key").window(tumbling="1s")
             .agg(n=("amount", "count")).to_topic(f"{topic_name}-out", name="eos-disk", state_dir=small_disk))
    with pytest.raises(sf.StateError) as failure:
        query.wait(timeout=60)
    took, message = time.monotonic() - began, str(failure.value)
    print(f"\nexactly-once on a full disk: failed after {took:.2f} s: {message}")
    assert f"state directory {small_disk / app_id} is full (No space left on device)" in message
    assert "\n" not in message and took < ERROR_WITHIN
    assert query.status == "failed" and query.metrics["records_in"] == 0
