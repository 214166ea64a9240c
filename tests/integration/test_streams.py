"""StreamFrames against the real broker: sources in every format, metadata, bounded and live runs, sinks."""

from __future__ import annotations

import time

import orjson
import pandas as pd
import pytest

import streamframe as sf
from tests.integration.helpers import consume_all, create_topic, produce, wait_until

pytestmark = pytest.mark.integration



@pytest.fixture
def trades_topic(bootstrap, conn, topic_name):
    from streamframe.connectors.generator import trades

    df = trades(500, seed=3, start_ms=1_700_000_000_000)
    create_topic(bootstrap, topic_name, partitions=4)
    produce(bootstrap, topic_name, [orjson.dumps(r) for r in df.to_dict("records")],
            keys=df["symbol"].tolist(), timestamps=df["ts"].tolist())
    return topic_name, df


def test_json_stream_bounded_run_equals_pandas(trades_topic):
    topic, df = trades_topic
    s = sf.stream(topic, value="json", timestamp="ts")
    got = s[s.qty > 100].assign(notional=s.qty * s.price).run()
    expected = df[df.qty > 100].assign(notional=df.qty * df.price)
    # Partitions interleave; within the whole input the set of rows must be exactly pandas' answer.
    key = ["trade_id"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  expected.sort_values(key).reset_index(drop=True), check_dtype=False)


def test_metadata_columns_come_from_the_records(trades_topic, bootstrap):
    topic, df = trades_topic
    got = sf.stream(topic).run(metadata=True)
    assert len(got) == len(df)
    assert (got["_key"] == got["symbol"]).all()
    assert (got["_timestamp"].astype("datetime64[ms, UTC]").astype("int64") == got["ts"]).all()
    assert set(got["_partition"]) <= {0, 1, 2, 3} and len(set(got["_partition"])) > 1
    for _, part in got.groupby("_partition"):
        assert part["_offset"].tolist() == list(range(len(part)))  # offset order kept per partition


def test_metadata_filled_in_late_equals_metadata_built_while_decoding(trades_topic):
    """A filter by expression leaves the metadata out of the decoded batch and fills it in for the
    rows that pass, from the consumed messages (plan/metadata.py); a filter by function (which could
    read anything) builds every column while decoding. Both must give the same rows."""
    topic, _ = trades_topic
    s = sf.stream(topic, value="json")
    late = s[s.qty > 100].assign(notional=s.qty * s.price)
    eager = s[lambda b: b.qty > 100].assign(notional=lambda b: b.qty * b.price)
    order = ["_partition", "_offset"]
    got, expected = (f.run(metadata=True).sort_values(order).reset_index(drop=True) for f in (late, eager))
    assert len(got) > 100
    pd.testing.assert_frame_equal(got, expected)


def test_records_written_with_appended_fields_read_as_records_decoded_and_encoded_whole(
    bootstrap, conn, topic_name
):
    """Filters and new columns from JSON to JSON decode only the fields they read and write each record's
    own bytes with the new fields appended (plan/values.py); a function filter decodes and encodes whole
    records. Read back, both outputs must hold the same records — except that the whole path writes a
    null for a field other records of its batch have — and the same dead letters."""
    create_topic(bootstrap, topic_name)
    values = []
    for i in range(400):
        record = {
            "id": i,
            "qty": i % 250,
            "price": round(1.1 * i + 0.25, 2),
            "sym": ["A", 'B"q', "\u00e9"][i % 3],
        }
        if i % 7 == 0:
            record["nested"] = {"a": [i, i + 1], "b": {"c": None}}
        if i % 11 == 0:
            del record["sym"]
        values.append(orjson.dumps(record))
    values[130] = b'{"id": 130, "qty": 150, "price": 1.50}'  # spaces and a trailing zero, kept as written
    values[60] = b'{"id":60,"qty":'  # malformed: a dead letter either way (its batch decoded whole)
    values[170] = b'{"id":170,"qty":170,"price":3.5,"notional":1}'  # has the new field: decoded whole
    produce(bootstrap, topic_name, values)
    s = sf.stream(topic_name, value="json")
    frames = {
        "projected": s[s.qty > 100].assign(notional=s.qty * s.price),
        "whole": s[lambda b: b.qty > 100].assign(notional=lambda b: b.qty * b.price),
    }
    written = {}
    for name, frame in frames.items():
        q = frame.to_topic(f"{topic_name}-{name}", until="end", batch_size=25)
        assert q.metrics["dead_letters"] == 1
        written[name] = [
            m.value() for m in consume_all(bootstrap, f"{topic_name}-{name}", expect=q.metrics["records_out"])
        ]
    assert b'{"id": 130, "qty": 150, "price": 1.50,"notional":225.0}' in written["projected"]
    assert written["projected"] != written["whole"]  # the projection was used

    def without_nulls(raw):
        return {k: v for k, v in orjson.loads(raw).items() if v is not None}

    assert len(written["projected"]) == len(written["whole"]) > 100
    assert [without_nulls(r) for r in written["projected"]] == [without_nulls(r) for r in written["whole"]]


@pytest.mark.parametrize("key_format", ["text", "bytes"])
def test_record_keys_reach_the_output_topic_as_they_were(bootstrap, conn, topic_name, key_format):
    """Where no operator reads `_key`, a topic sink takes the consumed key bytes as they are; where a
    function could read it, keys are decoded and encoded back. Both must write the input's keys."""
    create_topic(bootstrap, topic_name)
    keys = [b"plain", "caf\u00e9".encode(), b"\xff\xfe not utf-8", None, b""]
    produce(bootstrap, topic_name, [orjson.dumps({"qty": q}) for q in range(1, 6)], keys=keys)
    s = sf.stream(topic_name, key=key_format)
    assert sf.runtime.sinks.TopicSink("t", None, key_format=key_format).metadata > {"_key"}
    written = {}
    for name, frame in {"late": s[s.qty > 0], "eager": s[lambda b: b.qty > 0]}.items():
        frame.to_topic(f"{topic_name}-{name}", until="end")
        written[name] = [m.key() for m in consume_all(bootstrap, f"{topic_name}-{name}", expect=5)]
    assert written["late"] == written["eager"] == keys


def test_csv_text_bytes_and_headers(bootstrap, conn, topic_name):
    create_topic(bootstrap, topic_name)
    produce(
        bootstrap,
        topic_name,
        [b"AAPL,10,1.5", b"MSFT,20,2.5"],
        keys=[b"a", b"b"],
        headers=[[("src", b"x")], [("src", b"y")]],
    )
    csv = sf.stream(
        topic_name, value="csv", schema={"symbol": "str", "qty": "int64", "price": "float64"}
    ).run(metadata=True)
    assert csv[["symbol", "qty", "price"]].values.tolist() == [["AAPL", 10, 1.5], ["MSFT", 20, 2.5]]
    assert [h[0] for h in csv["_headers"]] == [("src", b"x"), ("src", b"y")]
    s = sf.stream(topic_name, value="text")
    assert s[s._headers.map(lambda h: h[0][1] == b"y")].run()["value"].tolist() == ["MSFT,20,2.5"]
    raw = sf.stream(topic_name, key="bytes", value="bytes").run(metadata=True)
    assert raw["value"].tolist() == [b"AAPL,10,1.5", b"MSFT,20,2.5"]
    assert raw["_key"].tolist() == [b"a", b"b"]


def test_run_until_count_and_time(bootstrap, conn, topic_name):
    create_topic(bootstrap, topic_name)
    produce(bootstrap, topic_name, [orjson.dumps({"i": i, "ts": 1000 * i}) for i in range(50)])
    s = sf.stream(topic_name, timestamp="ts")
    assert s.run(until=7)["i"].tolist() == list(range(7))
    assert s.run(until=pd.Timestamp(20_000, unit="ms", tz="UTC"))["i"].tolist() == list(range(21))
    assert len(s.run(until=10_000)) == 50  # a count larger than the input: everything, like head()


def test_to_topic_bounded_keeps_keys_timestamps_and_partitions(trades_topic, bootstrap, conn):
    topic, df = trades_topic
    out = f"{topic}-out"
    s = sf.stream(topic, timestamp="ts")
    q = s[s.side == "buy"].assign(notional=s.qty * s.price).to_topic(out, until="end")
    assert q.status == "finished"
    expected = df[df.side == "buy"]
    assert q.metrics["records_out"] == len(expected)
    records = consume_all(bootstrap, out, expect=len(expected))
    assert len(records) == len(expected)
    assert conn.topics()[out] == 4  # created with the input's partition count
    by_id = df.set_index("trade_id")
    for m in records:
        value = orjson.loads(m.value())
        row = by_id.loc[value["trade_id"]]
        assert m.key().decode() == row.symbol
        assert m.timestamp()[1] == row.ts
        assert value["notional"] == pytest.approx(row.qty * row.price)
        assert not any(k.startswith("_") for k in value)


def test_live_query_commits_and_resumes(bootstrap, conn, topic_name):
    create_topic(bootstrap, topic_name, partitions=2)
    produce(bootstrap, topic_name, [orjson.dumps({"n": i}) for i in range(100)])
    s = sf.stream(topic_name)
    out = f"{topic_name}-out"
    q = s.assign(double=s.n * 2).to_topic(out, name="live-resume", commit_interval=0.5)
    assert q.status == "running"
    assert s.assign(double=s.n * 2).to_topic(out, name="live-resume") is q  # never a second consumer
    wait_until(lambda: q.metrics["records_in"] == 100)
    produce(bootstrap, topic_name, [orjson.dumps({"n": i}) for i in range(100, 150)])
    wait_until(lambda: q.metrics["records_in"] == 150)
    assert q.metrics["lag"] >= 0
    q.stop()
    assert q.status == "stopped"
    produce(bootstrap, topic_name, [orjson.dumps({"n": i}) for i in range(150, 160)])
    q2 = s.assign(double=s.n * 2).to_topic(out, name="live-resume", commit_interval=0.5)
    assert q2 is not q
    wait_until(lambda: q2.metrics["records_in"] >= 10)
    time.sleep(1.0)
    q2.stop()
    assert q2.metrics["records_in"] == 10  # resumed from the committed offsets: nothing read twice
    values = sorted(orjson.loads(m.value())["n"] for m in consume_all(bootstrap, out, expect=160))
    assert values == list(range(160))


def test_start_collects_rows_and_reports_metrics(bootstrap, conn, topic_name):
    create_topic(bootstrap, topic_name)
    produce(bootstrap, topic_name, [orjson.dumps({"x": i}) for i in range(30)])
    s = sf.stream(topic_name)
    q = s[s.x % 3 == 0].start(name="collect")
    assert q in sf.queries()
    wait_until(lambda: q.metrics["records_out"] == 10)
    m = q.metrics
    assert m["status"] == "running" and m["records_in"] == 30 and m["errors"] == 0
    assert q.sink.result()["x"].tolist() == list(range(0, 30, 3))
    q.stop()
