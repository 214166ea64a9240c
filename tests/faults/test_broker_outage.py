"""The broker stopped for 70 s under a live stateful query, then started again (issue 13, item 1): the
query says "broker unreachable" in its metrics and its live view within 10 s, resumes by itself, and its
table equals pandas over the input; a query started during the outage waits up to its connect_timeout,
or fails after it with one line naming the address."""

from __future__ import annotations

import time

import numpy as np
import orjson
import pandas as pd
import pytest
from confluent_kafka import Producer

import streamframe as sf
from streamframe import local
from streamframe.display import view
from tests.integration import helpers

pytestmark = pytest.mark.integration
OUTAGE_S = 70  # the figure: longer than the consumer group's 45 s session timeout
REPORTED_WITHIN = 10
BEFORE, AFTER = 3000, 3000  # records produced before the outage, and after the broker is back


def _records(start: int, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    keys = [f"k{i}" for i in rng.integers(0, 25, n)]
    return pd.DataFrame({"id": np.arange(start, start + n), "k": keys, "qty": rng.integers(1, 100, n)})


def _produce(bootstrap: str, topic: str, df: pd.DataFrame) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    for row in df.to_dict("records"):
        producer.produce(topic, orjson.dumps(row), key=row["k"].encode())
    assert producer.flush(30) == 0


def _wait_for(condition, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout:g} s"
        time.sleep(0.2)
    return time.monotonic() - started


def _compare(name: str, table: pd.DataFrame, data: pd.DataFrame) -> dict:
    """Counts against pandas over the input: records in, counted (out), missing, duplicated, and keys
    whose total differs. `ids` (distinct ids per key) tells a missing record from a duplicated one."""
    golden = data.groupby("k").agg(n=("id", "count"), total=("qty", "sum"))
    got = table.reindex(golden.index)
    counts = {"in": len(data), "out": int(table["n"].sum()),
              "missing": int((golden["n"] - got["ids"].fillna(0)).sum()),
              "duplicated": int((got["n"].fillna(0) - got["ids"].fillna(0)).sum()),
              "keys_wrong": int((got["total"] != golden["total"]).sum())
              + len(set(table.index) - set(golden.index))}
    print(f"\n{name}: {counts}")
    return counts


@pytest.fixture
def own_broker(tmp_path):
    """A broker of its own to stop and start (the suite's stays up for the other tests)."""
    with helpers.own_broker(tmp_path / "home") as broker:
        yield broker


def test_a_live_query_outlasts_a_70_s_broker_outage(own_broker, tmp_path):
    broker, topic = own_broker, "orders"
    conn = sf.connect(broker.bootstrap, app_id="outage")
    conn.ensure_topic(topic, partitions=2)
    before, after = _records(0, BEFORE, 1), _records(BEFORE, AFTER, 2)
    _produce(broker.bootstrap, topic, before)

    def totals():
        return sf.stream(topic).groupby("k").agg(n=("id", "count"), ids=("id", "nunique"),
                                                 total=("qty", "sum"))

    frame = totals()
    v = view(frame, live=True, rate=10)  # starts the query
    q = v.query
    try:
        _wait_for(lambda: q.metrics["records_in"] >= BEFORE, 60, "the first records")
        local.stop()
        stopped = time.monotonic()

        def reported():
            v.refresh(force=True)
            return q.metrics["broker"] == "broker unreachable" and "broker unreachable" in v.status.value

        took = _wait_for(reported, REPORTED_WITHIN, "broker unreachable in the metrics and the view")
        print(f"\nbroker unreachable reported after {took:.1f} s: {v.status.value[:160]}")

        # Started while the broker is down: one waits, one gives up after its connect_timeout.
        waiting = totals().start(name="started-during-outage", connect_timeout=OUTAGE_S + 60)
        impatient = totals().start(name="impatient", connect_timeout=3)
        began = time.monotonic()
        with pytest.raises(sf.BrokerUnreachableError) as err:
            impatient.wait(timeout=30)
        gave_up = time.monotonic() - began
        message = str(err.value)
        assert "\n" not in message and broker.bootstrap in message and "connect_timeout=3" in message
        assert gave_up < 3 + 5, f"gave up after {gave_up:.1f} s"
        print(f"impatient query failed after {gave_up:.1f} s: {message}")
        _wait_for(lambda: waiting.metrics["broker"] == "broker unreachable", REPORTED_WITHIN,
                  "the waiting query's status")

        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        assert q.status == "running" and waiting.status == "running", (q.exception, waiting.exception)
        again = local.start(timeout=90)
        assert again.bootstrap == broker.bootstrap  # the same address: clients reconnect by themselves
        restarted = time.monotonic()
        print(f"broker down for {restarted - stopped:.1f} s")
        _produce(broker.bootstrap, topic, after)

        everything = pd.concat([before, after])
        for query in (q, waiting):
            recovered = _wait_for(lambda query=query: query.metrics["records_in"] >= BEFORE + AFTER
                                  and query.metrics["broker"] == "ok", 120, f"{query.name} to catch up")
            print(f"{query.name} caught up {recovered:.1f} s after the restart "
                  f"({query.metrics['records_in']} in)")
            assert query.status == "running", query.exception
        v.refresh(force=True)
        assert "broker unreachable" not in v.status.value
        time.sleep(1.0)  # a duplicate would arrive right after the catch-up
        for name, table in (("live query across the outage", frame.snapshot()),
                            ("query started during the outage", waiting.sink.result())):
            counts = _compare(name, table.set_index("k") if "k" in table.columns else table, everything)
            assert counts["missing"] == 0 and counts["duplicated"] == 0 and counts["keys_wrong"] == 0
            assert counts["out"] == counts["in"]
    finally:
        v.close()
        q.stop()
