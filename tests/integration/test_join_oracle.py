"""streamframe's joins against Kafka Streams' on the same topics (issue 4, DESIGN §2 "Joins").

Each join kind runs once in Kafka Streams (tests/oracle/joins.py: all its `how`s in one topology, one
JVM) over two topics with two partitions, produced with the same murmur2 partitioner (co-partitioned
by key) and explicit, distinct record timestamps; then streamframe runs the same join on the same
topics and the outputs must be equal:

* stream–table: the multiset of output rows with their timestamps, each key's rows in the same order
  (the input has out-of-order timestamps on both sides and table updates interleaved in time with
  stream records, table deletes, and stream keys the table never has);
* table–table (on the key) and foreign-key: the final table written to a topic (last value per key,
  a tombstone removes the key); both sides get updates and deletes, foreign keys change and point at
  missing or deleted rows.

As a check of the oracle itself, Kafka Streams' final tables are also compared with pandas' merge of
the final input tables.

Also here: stream records with a null value (Kafka Streams' join ignores them, and so does streamframe:
a stream source marks null values `_tombstone`), and the stream–stream windowed join (inner/left/outer,
within 50 ms, grace 20 ms; the Kafka Streams rules: tests/oracle/joins.py), compared like stream–table
(every output row with its timestamp, each key's rows in order; input out of order on both sides, some
records later than the grace).
"""

from __future__ import annotations

import uuid

import numpy as np
import orjson
import pandas as pd
import pytest

import streamframe as sf
from streamframe.time.extract import datetime_to_ms
from tests.integration.helpers import consume_all, create_topic, produce
from tests.oracle.joins import final_table, normalize, rows_by_key, run_join_oracle

pytestmark = pytest.mark.integration

BASE_TS = 1_000_000


def _timestamps(n: int, rng, late: float = 0.2, reach: int = 8) -> list[int]:
    """Distinct timestamps for n events in production order: mostly increasing, a `late` share of
    them up to `reach` steps older than their neighbours (out of order within and across topics)."""
    pos = np.arange(n, dtype=float) - np.where(rng.random(n) < late, rng.uniform(0.5, reach, n), 0.0)
    rank = np.empty(n, dtype=int)
    rank[np.argsort(pos, kind="stable")] = np.arange(n)
    return [BASE_TS + 10 * int(r) for r in rank]


def _produce(bootstrap: str, topic: str, events: list[dict]) -> None:
    create_topic(bootstrap, topic, partitions=2)
    produce(
        bootstrap,
        topic,
        [None if e["value"] is None else orjson.dumps(e["value"]) for e in events],
        keys=[e["key"].encode() for e in events],
        timestamps=[e["ts"] for e in events],
    )


def _name(kind: str) -> str:
    return f"t-join-oracle-{kind}-{uuid.uuid4().hex[:6]}"


def _sf_final_table(bootstrap: str, frame, topic: str, drop=()) -> dict:
    q = frame.to_topic(topic, until="end")
    records = consume_all(bootstrap, topic, expect=q.metrics["records_out"])
    records.sort(key=lambda m: (m.partition(), m.offset()))
    rows = [
        {"key": m.key().decode(), "value": None if m.value() is None else orjson.loads(m.value())}
        for m in records
    ]
    return final_table(rows, drop)


def _expected_final(
    left: list[dict], right: list[dict], left_key: str, right_key: str, how: str, left_on: str | None = None
) -> dict:
    """pandas' merge of the final input tables, in the oracle's row shape (a check of the oracle)."""

    def final(events, key):
        state = {}
        for e in events:  # production order = per-key order (a key lives in one partition)
            if e["value"] is None:
                state.pop(e["key"], None)
            else:
                state[e["key"]] = e["value"]
        return pd.DataFrame(
            list(state.values()), columns=sorted({c for v in state.values() for c in v} | {key})
        )

    lt, rt = final(left, left_key), final(right, right_key)
    if left_on is None:
        merged = lt.merge(rt, on=left_key, how=how, suffixes=("", "_right"))
    else:
        merged = lt.merge(
            rt.rename(columns={right_key: left_on}), on=left_on, how=how, suffixes=("", "_right")
        )
    return {row[left_key]: normalize(row) for row in merged.to_dict("records")}


# --- stream–table ------------------------------------------------------------------------------------
NULL_KEY = "cnull"
NULL_KEY_EVENTS = {5: "customer", 40: "null", 60: "order", 120: "null", 200: "order", 230: "null"}


def _sf_rows_by_key(out: pd.DataFrame) -> dict:
    """streamframe's run(metadata=True) rows as rows_by_key: {record key: [(row, timestamp ms), ...]}."""
    values = [c for c in out.columns if not c.startswith("_")]
    return rows_by_key([
        {"key": key, "value": row, "timestamp": int(t)}
        for key, row, t in zip(out["_key"], out[values].to_dict("records"), datetime_to_ms(out["_timestamp"]))
    ])  # fmt: skip


@pytest.fixture(scope="module")
def stream_table(bootstrap):
    rng = np.random.default_rng(41)
    n = 260
    ts = _timestamps(n, rng)
    orders, customers = [], []
    table_keys = [f"c{i:02d}" for i in range(10)]
    stream_keys = table_keys + ["c10", "c11"]  # c10, c11: never in the table
    for i in range(n):
        r = rng.random()
        if i in NULL_KEY_EVENTS:  # key NULL_KEY: a table row, orders, and orders with a null value
            kind = NULL_KEY_EVENTS[i]
            value = {"oid": f"o{i}", "cid": NULL_KEY, "amount": i, "v": i} if kind == "order" else None
            if kind == "customer":
                customers.append(
                    {"key": NULL_KEY, "ts": ts[i], "value": {"cid": NULL_KEY, "name": "nul", "tier": 0}}
                )
            else:
                orders.append({"key": NULL_KEY, "ts": ts[i], "value": value})
        elif r < 0.30:
            k = str(rng.choice(table_keys))
            customers.append(
                {
                    "key": k,
                    "ts": ts[i],
                    "value": {"cid": k, "name": f"n{i}", "tier": int(rng.integers(1, 4)), "v": -i},
                }
            )
        elif r < 0.36:
            customers.append({"key": str(rng.choice(table_keys)), "ts": ts[i], "value": None})
        else:
            k = str(rng.choice(stream_keys))
            orders.append(
                {
                    "key": k,
                    "ts": ts[i],
                    "value": {"oid": f"o{i}", "cid": k, "amount": int(rng.integers(1, 100)), "v": i},
                }
            )
    s_topic, t_topic = _name("orders"), _name("customers")
    _produce(bootstrap, t_topic, customers)
    _produce(bootstrap, s_topic, orders)
    ks = run_join_oracle(
        bootstrap,
        "stream-table",
        s_topic,
        t_topic,
        hows=("inner", "left"),
        left_fields=("oid", "cid", "amount", "v"),
        right_drop=("cid",),
    )
    return {"stream": s_topic, "table": t_topic, "ks": ks, "orders": orders, "customers": customers}


@pytest.mark.parametrize("how", ["inner", "left"])
def test_stream_table_join_equals_kafka_streams(stream_table, conn, how):
    d = stream_table
    j = sf.stream(d["stream"]).join(sf.table(d["table"], key="cid"), on="cid", how=how)
    got = _sf_rows_by_key(j.run(metadata=True, timeout=120))
    want = rows_by_key(d["ks"][how])
    got.pop(NULL_KEY, None), want.pop(NULL_KEY, None)  # see test_stream_table_join_drops_null_stream_values
    assert sum(map(len, want.values())) > 50  # the oracle ran on real data
    if how == "left":
        missing = [r for r in d["ks"]["left"] if "name" not in r["value"]]
        assert any(r["key"] in ("c10", "c11") for r in missing)  # a stream key the table never has
        assert any(r["key"] not in ("c10", "c11") for r in missing)  # not yet there, or deleted
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == want[key], f"rows of key {key!r} differ (streamframe vs Kafka Streams)"




@pytest.mark.parametrize(
    "how", ["inner", "left"]
)
def test_stream_table_join_drops_null_stream_values(stream_table, conn, how):
    d = stream_table
    j = sf.stream(d["stream"]).join(sf.table(d["table"], key="cid"), on="cid", how=how)
    got = _sf_rows_by_key(j.run(metadata=True, timeout=120)).get(NULL_KEY)
    want = rows_by_key(d["ks"][how]).get(NULL_KEY)
    assert want is not None and len(want) == 2  # the two orders with a value, joined; the nulls dropped
    assert got == want


# --- table–table ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def table_table(bootstrap):
    rng = np.random.default_rng(42)
    n = 200
    ts = _timestamps(n, rng)
    left, right = [], []
    left_keys = [f"k{i:02d}" for i in range(0, 12)]  # k00-k03 left only, k12-k14 right only
    right_keys = [f"k{i:02d}" for i in range(4, 15)]
    for i in range(n):
        r = rng.random()
        if r < 0.45:
            k = str(rng.choice(left_keys))
            left.append({"key": k, "ts": ts[i], "value": {"id": k, "x": i, "s": f"a{i}"}})
        elif r < 0.90:
            k = str(rng.choice(right_keys))
            right.append({"key": k, "ts": ts[i], "value": {"id": k, "y": i, "s": f"b{i}"}})
        elif r < 0.95:
            left.append({"key": str(rng.choice(left_keys)), "ts": ts[i], "value": None})
        else:
            right.append({"key": str(rng.choice(right_keys)), "ts": ts[i], "value": None})
    l_topic, r_topic = _name("left"), _name("right")
    _produce(bootstrap, l_topic, left)
    _produce(bootstrap, r_topic, right)
    ks = run_join_oracle(
        bootstrap,
        "table-table",
        l_topic,
        r_topic,
        hows=("inner", "left", "outer"),
        left_fields=("id", "x", "s"),
        right_drop=("id",),
        key_field="id",
    )
    return {"left": l_topic, "right": r_topic, "ks": ks, "left_events": left, "right_events": right}


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
def test_table_table_join_equals_kafka_streams(table_table, conn, bootstrap, how):
    d = table_table
    want = final_table(d["ks"][how])
    assert want == _expected_final(d["left_events"], d["right_events"], "id", "id", how)  # the oracle is sane
    assert len(want) >= 5
    t = sf.table(d["left"], key="id").join(sf.table(d["right"], key="id"), how=how)
    got = _sf_final_table(bootstrap, t, f"{d['left']}-sf-{how}")
    assert got == want


# --- foreign key ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def foreign_key(bootstrap):
    rng = np.random.default_rng(43)
    n = 220
    ts = _timestamps(n, rng)
    orders, users = [], []
    order_keys = [f"o{i:02d}" for i in range(20)]
    user_keys = [f"u{i}" for i in range(8)]
    fks = user_keys + ["u8", "u9"]  # u8, u9: no such user
    for i in range(n):
        r = rng.random()
        if r < 0.45:  # a new order, or an existing one changing its foreign key / quantity
            k = str(rng.choice(order_keys))
            orders.append({"key": k, "ts": ts[i], "value": {"oid": k, "uid": str(rng.choice(fks)), "qty": i}})
        elif r < 0.48:  # no foreign key
            k = str(rng.choice(order_keys))
            orders.append({"key": k, "ts": ts[i], "value": {"oid": k, "uid": None, "qty": i}})
        elif r < 0.55:
            orders.append({"key": str(rng.choice(order_keys)), "ts": ts[i], "value": None})
        elif r < 0.90:
            k = str(rng.choice(user_keys))
            users.append(
                {"key": k, "ts": ts[i], "value": {"uid": k, "name": f"n{i}", "tier": int(rng.integers(1, 4))}}
            )
        else:
            users.append({"key": str(rng.choice(user_keys)), "ts": ts[i], "value": None})
    o_topic, u_topic = _name("orders"), _name("users")
    _produce(bootstrap, o_topic, orders)
    _produce(bootstrap, u_topic, users)
    ks = run_join_oracle(
        bootstrap,
        "fk",
        o_topic,
        u_topic,
        hows=("inner", "left"),
        fk_field="uid",
        left_fields=("oid", "uid", "qty"),
        right_drop=("uid",),
        key_field="oid",
    )
    return {"orders": o_topic, "users": u_topic, "ks": ks, "order_events": orders, "user_events": users}


@pytest.mark.parametrize("how", ["inner", "left"])
def test_foreign_key_join_equals_kafka_streams(foreign_key, conn, bootstrap, how):
    d = foreign_key
    want = final_table(d["ks"][how])
    assert want == _expected_final(d["order_events"], d["user_events"], "oid", "uid", how, left_on="uid")
    assert len(want) >= 5
    t = sf.table(d["orders"], key="oid").join(sf.table(d["users"], key="uid"), left_on="uid", how=how)
    got = _sf_final_table(bootstrap, t, f"{d['orders']}-sf-{how}")
    assert got == want


# --- stream–stream (windowed) ---------------------------------------------------------------------------
WITHIN_MS, GRACE_MS = 50, 20


@pytest.fixture(scope="module")
def stream_stream(bootstrap):
    """Two streams keyed alike, out of order on both sides (some records later than the grace). The oracle
    runs once, on first use."""
    rng = np.random.default_rng(44)
    n = 240
    ts = _timestamps(n, rng, late=0.25, reach=10)  # 10 ms apart: up to ~100 ms late vs within 50 + grace 20
    left, right = [], []
    keys = [f"k{i}" for i in range(6)]
    for i in range(n):
        k = str(rng.choice(keys))
        if rng.random() < 0.5:
            left.append({"key": k, "ts": ts[i], "value": {"l": i, "v": int(rng.integers(0, 9))}})
        else:
            right.append({"key": k, "ts": ts[i], "value": {"r": i, "v": int(rng.integers(0, 9))}})
    l_topic, r_topic = _name("clicks"), _name("views")
    _produce(bootstrap, l_topic, left)
    _produce(bootstrap, r_topic, right)
    cache: dict = {}

    def ks():
        if not cache:
            cache.update(
                run_join_oracle(
                    bootstrap,
                    "stream-stream",
                    l_topic,
                    r_topic,
                    within_ms=WITHIN_MS,
                    grace_ms=GRACE_MS,
                    left_fields=("l", "v"),
                )
            )
        return cache

    return {"left": l_topic, "right": r_topic, "ks": ks}


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
def test_stream_stream_join_equals_kafka_streams(stream_stream, conn, how):
    d = stream_stream
    j = sf.stream(d["left"]).join(sf.stream(d["right"]), how=how, within=WITHIN_MS, grace=GRACE_MS)
    out = j.run(metadata=True, timeout=120)
    values = [c for c in out.columns if not c.startswith("_")]
    got = rows_by_key([
        {"key": key, "value": row, "timestamp": int(t)}
        for key, row, t in zip(out["_key"], out[values].to_dict("records"), datetime_to_ms(out["_timestamp"]))
    ])  # fmt: skip
    want = rows_by_key(d["ks"]()[how])
    assert sum(map(len, want.values())) > 50
    rows = [value for key_rows in want.values() for value, _ in key_rows]
    if how != "inner":  # the comparison covers non-joined results (when they are emitted), not only matches
        assert sum("r" not in value for value in rows) >= 5
    if how == "outer":
        assert sum("l" not in value for value in rows) >= 5
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == want[key], f"rows of key {key!r} differ (streamframe vs Kafka Streams)"
