"""In-kernel connectors against the real broker, driven through the magics of a real InteractiveShell:
generator, file, pandas, SQLite and topic copy; names, stopping, failures and progress."""

from __future__ import annotations

import json
import sqlite3
import time

import orjson
import pandas as pd
import pytest
from IPython.core.error import UsageError

from streamframe.connectors import default_registry, generate
from tests.integration.helpers import consume_all, create_topic, produce

pytestmark = pytest.mark.integration
START_MS = 1_700_000_000_000


@pytest.fixture
def shell(conn):
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance()
    if "kafka_source" not in sh.magics_manager.magics["line"]:
        sh.run_line_magic("load_ext", "streamframe")
    yield sh
    default_registry().stop_all(delete=True)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def finished(name: str, timeout: float = 30.0):
    c = default_registry().get(name)
    c.wait(timeout)
    assert c.state == "FINISHED", (c.state, c.last_error)
    return c


def test_generator_to_topic_to_file_sink_equals_what_was_generated(shell, topic_name, tmp_path, bootstrap):
    out = tmp_path / "trades.jsonl"
    shell.run_line_magic("kafka_source", f"gen connector.class=generator schema=trades topic={topic_name} "
                                         f"rate=0 count=300 seed=5 start.ms={START_MS} jitter.ms=200")
    gen = finished("gen")
    assert (gen.records, gen.total) == (300, 300)
    shell.run_line_magic("kafka_sink", f"out connector.class=file topics={topic_name} file={out} until=end")
    sink = finished("out")
    assert sink.records == sink.total == 300
    got = [orjson.loads(line) for line in out.read_text().splitlines()]
    expected = generate("trades", 300, seed=5, start_ms=START_MS, rate=0, jitter_ms=200)
    assert got == expected.to_dict("records")
    # keyed by symbol, timed by ts
    records = consume_all(bootstrap, topic_name, expect=300)
    assert [m.key().decode() for m in records] == expected["symbol"].tolist()
    assert [m.timestamp()[1] for m in records] == expected["ts"].tolist()


@pytest.mark.parametrize("schema", ["clicks", "orders", "iot"])
def test_generator_schemas_rate_and_duration(shell, topic_name, schema):
    shell.run_line_magic("kafka_source", f"g-{schema} connector.class=generator schema={schema} "
                                         f"topic={topic_name} rate=200 duration=1s")
    c = default_registry().get(f"g-{schema}")
    assert c.total == 200
    started = time.monotonic()
    finished(f"g-{schema}")
    assert 0.8 < time.monotonic() - started < 5
    assert c.records == 200
    import streamframe as sf

    got = sf.stream(topic_name).run(metadata=True)
    assert len(got) == 200 and got["_key"].notna().all()


def test_file_source_follow_picks_up_appended_lines(shell, topic_name, tmp_path):
    import streamframe as sf

    path = tmp_path / "events.jsonl"
    path.write_text('{"id": 1, "user": "a"}\n{"id": 2, "user": "b"}\n')
    shell.run_line_magic("kafka_source", f"tail-in connector.class=file file={path} topic={topic_name} "
                                         "follow=true key=user poll.interval.ms=50")
    c = default_registry().get("tail-in")
    wait_for(lambda: c.records == 2, what="the first two lines")
    with path.open("a") as f:
        f.write('{"id": 3, "user": "c"}\n{"id": 4,')  # the second line is not finished yet
    wait_for(lambda: c.records == 3, what="the appended line")
    time.sleep(0.3)
    assert c.records == 3 and c.state == "RUNNING"
    with path.open("a") as f:
        f.write(' "user": "d"}\n')
    wait_for(lambda: c.records == 4, what="the finished line")
    got = sf.stream(topic_name).run(metadata=True)
    assert got["id"].tolist() == [1, 2, 3, 4]
    assert got["_key"].tolist() == ["a", "b", "c", "d"]
    shell.run_line_magic("connector_stop", "tail-in")
    assert c.state == "STOPPED"


def test_csv_file_source_and_csv_file_sink_round_trip(shell, topic_name, tmp_path):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text("id,name,amount,note\n1,ann,9.5,\n2,bob,3.25,\"x, y\"\n3,NA,1.0,z\n")
    shell.run_line_magic("kafka_source", f"csv-in connector.class=file file={src} topic={topic_name} key=id")
    assert finished("csv-in").records == 3
    shell.run_line_magic("kafka_sink",
                         f"csv-out connector.class=file file={dst} topics={topic_name} until=end")
    finished("csv-out")
    assert pd.read_csv(dst, keep_default_na=False).equals(pd.read_csv(src, keep_default_na=False))


def test_file_source_bad_line_fails_with_its_line_number_or_is_skipped(shell, topic_name, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\nnot json\n{"id": 3}\n')
    shell.run_line_magic("kafka_source", f"strict connector.class=file file={path} topic={topic_name}")
    c = default_registry().get("strict").wait(20)
    assert c.state == "FAILED" and "line 2" in c.last_error and "errors.tolerance=all" in c.last_error
    status = shell.run_line_magic("connectors", "")
    row = status.set_index("name").loc["strict"]
    assert row["state"] == "FAILED" and "line 2" in row["last_error"]
    shell.run_line_magic(
        "kafka_source", f"lenient connector.class=file file={path} topic={topic_name} errors.tolerance=all"
    )
    c = finished("lenient")
    assert (c.records, c.skipped) == (2, 1)


def test_sqlite_source_incremental_then_sqlite_sink_upsert(shell, bootstrap, topic_name, tmp_path):
    src_db, dst_db = tmp_path / "src.db", tmp_path / "dst.db"
    hostile = 'x"; DROP TABLE t; --'
    with sqlite3.connect(src_db) as db:
        db.execute(
            'CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, '
            f'"{hostile.replace(chr(34), 2 * chr(34))}" INT)'
        )
        db.executemany("INSERT INTO users VALUES (?, ?, ?)", [(1, "ann", 10), (2, "bob", 20)])
    with sqlite3.connect(dst_db) as db:  # the sink's table is called t: the hostile name must not drop it
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO t VALUES (99, 'keep')")
    shell.run_line_magic(
        "kafka_source",
        f"users-in connector.class=sqlite db={src_db} table=users "
        f"incrementing.column=id topic={topic_name} poll.interval.ms=100",
    )
    shell.run_line_magic(
        "kafka_sink", f"users-out connector.class=sqlite topics={topic_name} db={dst_db} table=t pk=id"
    )
    src, dst = default_registry().get("users-in"), default_registry().get("users-out")
    wait_for(lambda: dst.records == 2, what="the snapshot")
    with sqlite3.connect(src_db) as db:  # new rows after the snapshot, one of them an update of id 1
        db.execute("INSERT INTO users VALUES (3, 'cy', 30)")
    wait_for(lambda: dst.records == 3, what="the incremental row")
    # an update of an existing key through the topic: the sink upserts
    produce(bootstrap, topic_name, [json.dumps({"id": 1, "name": "ann2", hostile: 11}).encode()])
    wait_for(lambda: dst.records == 4, what="the update")
    rows = _rows(dst_db)  # records counts rows written (committed): all four are there now
    assert rows[1] == {"id": 1, "name": "ann2", hostile: 11}
    assert rows[3] == {"id": 3, "name": "cy", hostile: 30}
    assert rows[99]["name"] == "keep" and len(rows) == 4
    assert src.state == "RUNNING" and src.total is None and src.records == 3


def _rows(path) -> dict:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return {r["id"]: dict(r) for r in db.execute("SELECT * FROM t")}


def test_sqlite_source_snapshot_is_bounded(shell, topic_name, tmp_path):
    path = tmp_path / "s.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE prices (symbol TEXT, price REAL)")
        db.executemany("INSERT INTO prices VALUES (?, ?)", [("AAPL", 1.5), ("MSFT", 2.5), ("GOOG", None)])
    shell.run_line_magic(
        "kafka_source", f"snap connector.class=sqlite db={path} table=prices topic={topic_name} key=symbol"
    )
    c = finished("snap")
    assert (c.records, c.total) == (3, 3)
    import streamframe as sf

    got = sf.stream(topic_name).run(metadata=True)
    assert got["_key"].tolist() == ["AAPL", "MSFT", "GOOG"] and got["price"].isna().tolist() == [
        False,
        False,
        True,
    ]
    with pytest.raises(UsageError, match="no such table"):
        shell.run_line_magic("kafka_source", f"nope connector.class=sqlite db={path} table=missing topic=x")


def test_pandas_source_to_topic_to_pandas_sink_variable(shell, topic_name):
    df = pd.DataFrame({"order_id": range(6), "customer": list("abcabc"), "amount": [1.0, 2, 3, 4, 5, 6.5]})
    shell.user_ns["orders_df"] = df
    shell.run_line_magic(
        "kafka_source", f"orders-in connector.class=pandas df=orders_df topic={topic_name} key=customer"
    )
    assert finished("orders-in").records == 6
    shell.run_line_magic("kafka_sink", f"orders-live connector.class=pandas topics={topic_name} var=live")
    shell.run_line_magic(
        "kafka_sink",
        f"orders-last connector.class=pandas topics={topic_name} var=last pk=customer metadata=true",
    )
    wait_for(
        lambda: len(shell.user_ns["live"]) == 6 and len(shell.user_ns["last"]) == 3, what="the variables"
    )
    pd.testing.assert_frame_equal(shell.user_ns["live"], df)
    last = shell.user_ns["last"].sort_values("customer")
    assert last["order_id"].tolist() == [3, 4, 5] and last["_key"].tolist() == ["a", "b", "c"]
    # more records arrive: the variable is refreshed
    shell.user_ns["more"] = pd.DataFrame({"order_id": [6], "customer": ["a"], "amount": [7.0]})
    shell.run_line_magic("kafka_source", f"more-in connector.class=pandas df=more topic={topic_name}")
    wait_for(lambda: len(shell.user_ns["live"]) == 7, what="the refresh")
    with pytest.raises(UsageError, match="df=nothing_here: expected a DataFrame"):
        shell.run_line_magic("kafka_source", f"x connector.class=pandas df=nothing_here topic={topic_name}")


def test_topic_copy_keeps_keys_values_timestamps_and_headers(shell, bootstrap, topic_name):
    source, target = topic_name, f"{topic_name}-copy"
    create_topic(bootstrap, source, partitions=2)
    produce(
        bootstrap,
        source,
        [b'{"n": 1}', b'{"n": 2}', None],
        keys=[b"a", b"b", b"a"],
        timestamps=[START_MS, START_MS + 1, START_MS + 2],
        headers=[[("h", b"1")], None, None],
    )
    shell.run_line_magic("kafka_source", f"mirror connector.class=topic topics={source} topic={target}")
    c = default_registry().get("mirror")
    wait_for(lambda: c.records == 3, what="the copy")
    copied = sorted(consume_all(bootstrap, target, expect=3), key=lambda m: m.timestamp()[1])
    assert [(m.key(), m.value(), m.timestamp()[1]) for m in copied] == [
        (b"a", b'{"n": 1}', START_MS),
        (b"b", b'{"n": 2}', START_MS + 1),
        (b"a", None, START_MS + 2),
    ]
    assert copied[0].headers() == [("h", b"1")]
    assert (
        len(default_registry().get("mirror").connection.topics())
        and default_registry().get("mirror").connection.topics()[target] == 2
    )  # created like its source


def test_registering_a_name_twice_fails_like_kafka_connect(shell, topic_name):
    line = f"dup connector.class=generator topic={topic_name} rate=10"
    shell.run_line_magic("kafka_source", line)
    with pytest.raises(UsageError) as err:
        shell.run_line_magic("kafka_source", line)
    assert "Connector dup already exists" in str(err.value) and "\n" not in str(err.value)
    shell.run_line_magic("connector_stop", "dup")
    with pytest.raises(UsageError, match="already exists"):  # stopped, it still holds its name
        shell.run_line_magic("kafka_source", line)
    shell.run_line_magic("connector_stop", "dup --delete")
    shell.run_line_magic("kafka_source", line)  # deleted, the name is free
    assert default_registry().get("dup").state == "RUNNING"


def test_connector_stop_stops_an_unbounded_connector(shell, topic_name, capsys):
    shell.run_line_magic("kafka_source", f"endless connector.class=generator topic={topic_name} rate=500")
    c = default_registry().get("endless")
    wait_for(lambda: c.records > 0, what="records")
    shell.run_line_magic("connector_stop", "endless")
    assert c.state == "STOPPED" and not c.alive
    moved = c.records
    time.sleep(0.3)
    assert c.records == moved
    assert "connector 'endless' STOPPED" in capsys.readouterr().out
    row = shell.run_line_magic("connectors", "").set_index("name").loc["endless"]
    assert row["state"] == "STOPPED" and row["records"] == moved and row["class"] == "generator"


def test_bounded_sink_reports_progress_and_wait(shell, bootstrap, topic_name, tmp_path):
    create_topic(bootstrap, topic_name)
    produce(bootstrap, topic_name, [orjson.dumps({"i": i}) for i in range(50)])
    shell.run_line_magic(
        "kafka_sink", f"load connector.class=file topics={topic_name} file={tmp_path / 'o.jsonl'} until=end"
    )
    status = shell.run_line_magic("connectors", "--wait --timeout 30").set_index("name").loc["load"]
    assert (status["state"], status["records"], status["total"], status["progress"]) == (
        "FINISHED",
        50,
        50,
        1.0,
    )
    detail = shell.run_line_magic("connectors", "load")["value"]
    assert detail["config file"] == str(tmp_path / "o.jsonl") and detail["state"] == "FINISHED"
    with pytest.raises(UsageError, match=r"^%kafka_sink: topic '.*-nope' does not exist .*similar topics"):
        shell.run_line_magic("kafka_sink", f"x connector.class=file topics={topic_name}-nope file=y.jsonl")
    assert "x" not in default_registry()


def test_sink_on_undecodable_record_fails_and_secrets_never_show(shell, bootstrap, topic_name, tmp_path):
    create_topic(bootstrap, topic_name)
    produce(bootstrap, topic_name, [b'{"ok": 1}', b"not json"])
    shell.run_line_magic(
        "kafka_sink",
        f"fragile connector.class=file topics={topic_name} file={tmp_path / 'x.csv'} "
        "consumer.override.sasl.password=hunter22",
    )
    c = default_registry().get("fragile")
    wait_for(lambda: c.state == "FAILED", what="the failure")
    assert f"{topic_name}[0]@1" in c.last_error and "not json" in c.last_error
    detail = shell.run_line_magic("connectors", "fragile")["value"]
    assert detail["config consumer.override.sasl.password"] == "********"
    assert "hunter22" not in repr(c) + str(shell.run_line_magic("connectors", "").to_dict())
    assert c.scrub("auth failed for hunter22") == "auth failed for ********"


def test_rate_producer_of_the_demo_still_works(conn, topic_name):
    from streamframe.connectors.generator import RateProducer

    conn.ensure_topic(topic_name, partitions=2)
    producer = RateProducer(conn, topic_name, rate=300, duration=1.0, jitter_ms=100).start()
    producer.join(10)
    assert not producer._thread.is_alive() and producer.error is None and producer.produced == 300
    import streamframe as sf

    got = sf.stream(topic_name, timestamp="ts").run(metadata=True)
    assert len(got) == 300 and (got["_key"] == got["symbol"]).all()
    assert list(got.columns[:6]) == ["trade_id", "symbol", "side", "qty", "price", "ts"]
