"""SIGKILL mid-stream, then restart: the final windows equal an uninterrupted run's."""

from __future__ import annotations

import os
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

import streamframe as sf
from tests.integration.helpers import consume_all, create_topic, produce

pytestmark = pytest.mark.integration
APP = Path(__file__).with_name("window_app.py")
JOIN_APP = Path(__file__).with_name("join_app.py")


def _input(n=6000, keys=20, seed=5):
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000_000 + np.arange(n) * 7 - rng.integers(0, 400, n)  # out of order, some late
    return pd.DataFrame({"k": [f"k{i}" for i in rng.integers(0, keys, n)], "amount": rng.integers(1, 100, n),
                         "ts": ts})


def _final(records) -> dict:
    """The last value per window key, as a downstream table would hold it."""
    out = {}
    for m in records:
        key = orjson.loads(m.key())
        out[(key["_key"], key["window_start"])] = orjson.loads(m.value())
    return out


def _committed(conn, group: str, topic: str, partitions: int) -> int:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    c = Consumer({"bootstrap.servers": conn.bootstrap, "group.id": group})
    try:
        for _ in range(50):  # a fresh broker's group coordinator may still be loading
            try:
                offsets = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
                return sum(max(tp.offset, 0) for tp in offsets)
            except KafkaException:
                time.sleep(0.2)
        raise AssertionError("could not read the group's committed offsets")
    finally:
        c.close()


def test_sigkill_at_several_points_then_restart_gives_the_uninterrupted_result(
    bootstrap, conn, topic_name, tmp_path
):
    df = _input()
    create_topic(bootstrap, topic_name, partitions=2)
    produce(bootstrap, topic_name, [orjson.dumps(r) for r in df.to_dict("records")], keys=df["k"].tolist())
    out = f"{topic_name}-out"
    app_id = f"fault-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "SF_TOPIC": topic_name,
        "SF_OUT": out,
        "SF_APP_ID": app_id,
        "SF_STATE_DIR": str(tmp_path / "state"),
        "STREAMFRAME_BOOTSTRAP": bootstrap,
    }
    group = f"{app_id}.fault-app"
    # Kill once the app has checkpointed past each mark (plus a little more work), so every kill
    # lands mid-stream whatever the machine's speed.
    progress = _kill_at_marks(
        APP,
        env,
        lambda: _committed(conn, group, topic_name, 2),
        len(df),
        ((0.1, 0.25), (0.3, 0.1), (0.5, 0.4), (0.75, 0.2)),
    )
    assert progress[-1] < len(df), "the last kill should land mid-stream"
    proc = subprocess.Popen(
        [sys.executable, str(APP)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 180
        while _committed(conn, group, topic_name, 2) < len(df):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the restarted app did not finish the input"
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    # The oracle: the same topology, uninterrupted, in one bounded run.
    s = sf.stream(topic_name, timestamp="ts")
    expected = (
        s.groupby("_key")
        .window(tumbling="1s", grace="200ms")
        .agg(n=("amount", "count"), total=("amount", "sum"))
        .emit("final")
        .run()
    )
    got = _final(consume_all(bootstrap, out))
    want = {
        (k, int(ws.value // 1_000_000)): (int(r.n), int(r.total)) for (k, ws, _), r in expected.iterrows()
    }
    assert len(progress) == 4 and len(want) > 20
    assert {key: (v["n"], v["total"]) for key, v in got.items()} == want


def _kill_at_marks(app, env, committed, total, marks) -> list:
    """Start `app`, kill it with SIGKILL once it has checkpointed past each mark (a fraction of `total`,
    then `extra` s more work; `committed()`: the records its group has committed); returns the progress."""
    progress = []
    for mark, extra in marks:
        proc = subprocess.Popen(
            [sys.executable, str(app)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 120
        while committed() < mark * total:
            assert proc.poll() is None, f"the app exited by itself: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "the app made no progress"
            time.sleep(0.05)
        time.sleep(extra)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        progress.append(committed())
    return progress


def _ends(conn, topic: str, partitions: int) -> int:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": conn.bootstrap, "group.id": "ends"})
    try:
        return sum(
            c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)
        )
    finally:
        c.close()


def test_sigkill_of_a_join_then_restart_gives_the_uninterrupted_result(bootstrap, conn, topic_name, tmp_path):
    rng = np.random.default_rng(9)
    symbols = [f"S{i}" for i in range(15)]
    prices_topic, orders_topic, out = f"{topic_name}-prices", f"{topic_name}-orders", f"{topic_name}-out"
    create_topic(bootstrap, prices_topic, partitions=2)
    create_topic(bootstrap, orders_topic, partitions=2)
    base = 1_700_000_000_000
    # Prices first (older), then orders: each order must see the last price of its symbol.
    produce(
        bootstrap,
        prices_topic,
        [orjson.dumps({"symbol": s, "price": float(i)}) for i, s in enumerate(symbols[:12])],
        keys=symbols[:12],
        timestamps=[base + i for i in range(12)],
    )
    n = 6000
    chosen = rng.choice(symbols, n)
    produce(
        bootstrap,
        orders_topic,
        [
            orjson.dumps({"order_id": i, "symbol": str(s), "qty": int(q)})
            for i, (s, q) in enumerate(zip(chosen, rng.integers(1, 50, n)))
        ],
        keys=[str(s) for s in chosen],
        timestamps=[base + 1000 + i for i in range(n)],
    )
    app_id = f"fault-join-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "SF_ORDERS": orders_topic,
        "SF_PRICES": prices_topic,
        "SF_OUT": out,
        "SF_APP_ID": app_id,
        "SF_STATE_DIR": str(tmp_path / "state"),
        "STREAMFRAME_BOOTSTRAP": bootstrap,
    }
    group = f"{app_id}.fault-join"
    # The join is on a column: the app re-keys the orders by symbol through a repartition topic (a
    # helper query, group `{group}-repartition-{position}`) and the join's group reads that topic.
    prefix, suffix = f"{app_id}-fault-join-", "-repartition"

    def repartition_topic():
        return next((t for t in conn.topics() if t.startswith(prefix) and t.endswith(suffix)), None)

    def committed():
        topic = repartition_topic()
        return 0 if topic is None else _committed(conn, group, topic, 2)

    progress = _kill_at_marks(JOIN_APP, env, committed, n, ((0.15, 0.2), (0.4, 0.1), (0.7, 0.3)))
    assert progress[-1] < n, "the last kill should land mid-stream"
    topic = repartition_topic()
    copy_group = f"{group}-repartition-{topic[len(prefix) : -len(suffix)]}"

    def done():  # every order copied, every copy joined (a copy may hold an order twice: at least once)
        return _committed(conn, copy_group, orders_topic, 2) >= n and committed() >= _ends(conn, topic, 2)

    proc = subprocess.Popen(
        [sys.executable, str(JOIN_APP)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 180
        while not done():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the restarted app did not finish the input"
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    expected = (
        sf.stream(orders_topic)
        .join(sf.table(prices_topic, key="symbol"), on="symbol", how="left")
        .run()
        .set_index("order_id")
        .sort_index()
    )
    got = {}
    for m in consume_all(bootstrap, out):
        row = orjson.loads(m.value())
        got[row["order_id"]] = row.get("price")  # at-least-once: a repeat must carry the same price
    assert len(got) == n == len(expected)
    want = {i: (None if pd.isna(p) else p) for i, p in expected["price"].items()}
    assert got == want
