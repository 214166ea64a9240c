"""Tables and windows against the real broker: sinks, live lookups, durable state and its rebuild."""

from __future__ import annotations

import time

import orjson
import pandas as pd
import pytest
import sqlite_utils

import streamframe as sf
from tests.integration.helpers import consume_all, create_topic, produce, wait_until

pytestmark = pytest.mark.integration




@pytest.fixture
def events(bootstrap, conn, topic_name):
    rows = [{"k": f"k{i % 4}", "x": i, "ts": 1_000 * i} for i in range(40)]
    create_topic(bootstrap, topic_name, partitions=2)
    produce(bootstrap, topic_name, [orjson.dumps(r) for r in rows], keys=[r["k"] for r in rows])
    return topic_name, pd.DataFrame(rows)


def test_windowed_table_to_topic_keys_and_values(events, bootstrap):
    topic, df = events
    t = sf.stream(topic, timestamp="ts").groupby("k").window(tumbling="10s").agg(total=("x", "sum"))
    q = t.emit("final").to_topic(f"{topic}-w", until="end")
    records = consume_all(bootstrap, f"{topic}-w", expect=q.metrics["records_out"])
    got = {
        (orjson.loads(m.key())["k"], orjson.loads(m.key())["window_start"]): orjson.loads(m.value())["total"]
        for m in records
    }
    closed = df[(df.ts - df.ts % 10_000) + 10_000 <= df.ts.max()]  # the windows stream time has closed
    want = closed.assign(ws=closed.ts - closed.ts % 10_000).groupby(["k", "ws"])["x"].sum().to_dict()
    assert got == want and len(records) == len(want)  # final: one record per window


def test_table_topic_live_lookups_and_tombstones(bootstrap, conn, topic_name):
    create_topic(bootstrap, topic_name)
    produce(
        bootstrap,
        topic_name,
        [orjson.dumps({"symbol": s, "price": p}) for s, p in (("AAPL", 1.0), ("MSFT", 2.0), ("AAPL", 3.0))],
        keys=[b"AAPL", b"MSFT", b"AAPL"],
    )
    prices = sf.table(topic_name, key="symbol")
    q = prices.start()
    wait_until(lambda: q.metrics["records_in"] == 3)
    assert prices["AAPL"]["price"] == 3.0
    assert prices.loc[["AAPL", "MSFT"]]["price"].tolist() == [3.0, 2.0]
    assert prices.snapshot()["price"].to_dict() == {"AAPL": 3.0, "MSFT": 2.0}
    produce(bootstrap, topic_name, [None], keys=[b"MSFT"])
    wait_until(lambda: q.metrics["records_in"] == 4)
    assert prices.snapshot()["price"].to_dict() == {"AAPL": 3.0}
    q.stop()
    out = f"{topic_name}-copy"
    prices.to_topic(out, until="end")
    copy = consume_all(bootstrap, out, expect=4)
    assert [(m.key(), m.value() and orjson.loads(m.value())["price"]) for m in copy][-1] == (b"MSFT", None)


def test_live_aggregation_resumes_from_sqlite_then_from_changelog(events, bootstrap, conn, tmp_path):
    topic, df = events
    t = sf.stream(topic, timestamp="ts").groupby("k").agg(n=("x", "count"), total=("x", "sum"))
    opts = {"state_dir": tmp_path, "commit_interval": 0.2}
    q = t.start(name="resume", **opts)
    wait_until(lambda: q.metrics["records_in"] == 40)
    q.stop()
    more = [{"k": f"k{i % 4}", "x": i, "ts": 1_000 * i} for i in range(40, 60)]
    produce(bootstrap, topic, [orjson.dumps(r) for r in more], keys=[r["k"] for r in more])
    q = t.start(name="resume", **opts)  # restored from the SQLite file: reads only the 20 new records
    wait_until(lambda: q.metrics["records_in"] == 20)
    q.stop()
    everything = pd.concat([df, pd.DataFrame(more)])
    expected = everything.groupby("k").agg(n=("x", "count"), total=("x", "sum"))
    pd.testing.assert_frame_equal(q.sink.result(), expected, check_dtype=False)
    # Lose the file: the state comes back from the changelog topics, still without double counting.
    for f in tmp_path.rglob("resume.sqlite*"):
        f.unlink()
    last = [{"k": "k0", "x": 1000, "ts": 99_000}]
    produce(bootstrap, topic, [orjson.dumps(r) for r in last], keys=["k0"])
    q = t.start(name="resume", **opts)
    wait_until(lambda: q.metrics["records_in"] == 1)
    time.sleep(0.5)
    q.stop()
    assert q.metrics["records_in"] == 1
    expected = (
        pd.concat([everything, pd.DataFrame(last)]).groupby("k").agg(n=("x", "count"), total=("x", "sum"))
    )
    pd.testing.assert_frame_equal(q.sink.result(), expected, check_dtype=False)
    assert any(name.endswith("-changelog") for name in conn.topics())
    # The rebuilt file holds every row, not only the one changed since: the next start trusts it.
    again = [{"k": "k1", "x": 2000, "ts": 100_000}]
    produce(bootstrap, topic, [orjson.dumps(r) for r in again], keys=["k1"])
    q = t.start(name="resume", **opts)
    wait_until(lambda: q.metrics["records_in"] == 1)
    time.sleep(0.5)
    q.stop()
    everything = pd.concat([everything, pd.DataFrame(last), pd.DataFrame(again)])
    expected = everything.groupby("k").agg(n=("x", "count"), total=("x", "sum"))
    pd.testing.assert_frame_equal(q.sink.result(), expected, check_dtype=False)


def test_corrupt_state_file_is_rebuilt_from_the_changelog(events, conn, tmp_path):
    topic, df = events
    t = sf.stream(topic).groupby("k")["x"].sum()
    q = t.start(name="corrupt", state_dir=tmp_path, commit_interval=0.2)
    wait_until(lambda: q.metrics["records_in"] == 40)
    q.stop()
    [path] = list(tmp_path.rglob("corrupt.sqlite"))
    path.write_bytes(b"this is not a database" * 100)
    for extra in tmp_path.rglob("corrupt.sqlite-*"):
        extra.unlink()
    q = t.start(name="corrupt", state_dir=tmp_path, commit_interval=0.2)
    time.sleep(2)
    q.stop()
    assert q.status == "stopped" and q.metrics["records_in"] == 0
    pd.testing.assert_frame_equal(q.sink.result(), df.groupby("k")["x"].sum().to_frame(), check_dtype=False)


def test_to_sqlite_writes_rows_and_offsets_together_and_resumes(events, bootstrap, conn, tmp_path):
    topic, df = events
    db = tmp_path / "out.db"
    s = sf.stream(topic)
    q = s.to_sqlite(str(db), "events", pk="x", name="to-db")
    wait_until(lambda: q.metrics["records_out"] == 40)
    q.stop()
    table = sqlite_utils.Database(db)
    assert sorted(r["x"] for r in table["events"].rows) == list(range(40))
    offsets = {(r["topic"], r["partition"]): r["next"] for r in table["_streamframe_offsets"].rows}
    assert sum(offsets.values()) == 40
    produce(bootstrap, topic, [orjson.dumps({"k": "k9", "x": 40, "ts": 0})], keys=["k9"])
    q = s.to_sqlite(str(db), "events", pk="x", name="to-db")
    wait_until(lambda: q.metrics["records_in"] >= 1)
    time.sleep(0.5)
    q.stop()
    assert q.metrics["records_in"] == 1  # resumed after the offsets stored with the rows
    assert table["events"].count == 41


def test_joining_topics_with_different_partition_counts_is_a_clear_error(bootstrap, conn, topic_name):
    create_topic(bootstrap, f"{topic_name}-s", partitions=2)
    create_topic(bootstrap, f"{topic_name}-t", partitions=3)
    joined = sf.stream(f"{topic_name}-s").join(sf.table(f"{topic_name}-t"))  # on the record key
    with pytest.raises(sf.ConfigError, match=r"not co-partitioned .*-s has 2, .*-t has 3 partitions"):
        joined.run()
    # Or the user's choice: the table goes through a repartition topic with the stream's partition count.
    produce(
        bootstrap,
        f"{topic_name}-t",
        [orjson.dumps({"k": k, "v": i}) for i, k in enumerate("abc")],
        keys=list("abc"),
    )
    time.sleep(0.01)  # the orders come after the table's rows in time (record timestamps: now)
    produce(
        bootstrap,
        f"{topic_name}-s",
        [orjson.dumps({"k": k, "n": i}) for i, k in enumerate("abcab")],
        keys=list("abcab"),
    )
    repartitioned = sf.stream(f"{topic_name}-s").join(sf.table(f"{topic_name}-t"), repartition=True)
    got = repartitioned.run().sort_values("n")
    assert got[["k", "n", "v"]].values.tolist() == [
        ["a", 0, 0],
        ["b", 1, 1],
        ["c", 2, 2],
        ["a", 3, 0],
        ["b", 4, 1],
    ]
    assert {
        n for t, n in conn.topics().items() if t.startswith(conn.app_id) and t.endswith("-repartition")
    } == {2}
    # On a column of the stream, the stream is re-keyed by it through a topic partitioned like the table.
    on_column = sf.stream(f"{topic_name}-s").join(sf.table(f"{topic_name}-t", key="k"), on="k").run()
    assert on_column.sort_values("n")[["k", "n", "v"]].values.tolist() == got[["k", "n", "v"]].values.tolist()
    assert {
        n for t, n in conn.topics().items() if t.startswith(conn.app_id) and t.endswith("-repartition")
    } == {2, 3}
    # A global table needs no co-partitioning.
    glob = sf.stream(f"{topic_name}-s").join(sf.global_table(f"{topic_name}-t", key="k"), on="k").run()
    assert len(glob) == 5


def test_an_idle_query_writes_nothing_at_its_commits(events, bootstrap, conn, tmp_path):
    topic, _ = events
    t = sf.stream(topic).groupby("k")["x"].sum()
    q = t.start(name="idle", state_dir=tmp_path, commit_interval=0.1)
    wait_until(lambda: q.metrics["records_in"] == 40)
    changelogs = [name for name in conn.topics() if name.endswith("-changelog") and "idle" in name]
    ends = lambda: [len(consume_all(bootstrap, name, timeout=5)) for name in changelogs]  # noqa: E731
    wait_until(lambda: ends() != [0] * len(changelogs))
    before = ends()
    time.sleep(1.5)  # fifteen commit intervals with nothing new
    assert ends() == before and before
    q.stop()


def test_a_rebalance_resumes_from_the_commit_not_where_the_state_began(events, bootstrap, conn, tmp_path):
    """A restarted query starts at its state file's offsets; a partition taken away and given back later
    resumes from the group's commit: going back to the file's offsets would count records twice."""
    from confluent_kafka import Consumer

    topic, df = events
    t = sf.stream(topic).groupby("k").agg(n=("x", "count"), total=("x", "sum"))
    opts = {"name": "rebalanced", "state_dir": tmp_path, "commit_interval": 0.2}
    q = t.start(**opts)
    wait_until(lambda: q.metrics["records_in"] == 40)
    q.stop()
    q = t.start(**opts)  # its readers start at the file's offsets
    more = [{"k": f"k{i % 4}", "x": i, "ts": 1_000 * i} for i in range(40, 80)]
    produce(bootstrap, topic, [orjson.dumps(r) for r in more], keys=[r["k"] for r in more])
    wait_until(lambda: q.metrics["records_in"] == 40)
    time.sleep(0.5)  # a commit past them
    intruder = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{conn.app_id}.rebalanced",
                         "enable.auto.commit": False})
    intruder.subscribe([topic])
    deadline = time.monotonic() + 60
    while not intruder.assignment() and time.monotonic() < deadline:
        intruder.poll(0.2)
    assert intruder.assignment(), "the intruder was given no partition"
    intruder.close()  # its partition goes back to the query
    time.sleep(5)
    q.stop()
    everything = pd.concat([df, pd.DataFrame(more)])
    expected = everything.groupby("k").agg(n=("x", "count"), total=("x", "sum"))
    pd.testing.assert_frame_equal(q.sink.result(), expected, check_dtype=False)
