"""Avro topics against the real broker (issue 15): records written by confluent-kafka's own
AvroSerializer through its in-memory registry (mock://) read into a frame equal to pandas over what
confluent-kafka's AvroDeserializer reads; schema versions merged; raw bodies of a given schema; bad
records dead-lettered with their reason; a registry that is down or refuses the credentials failing
within seconds in one line without the password; and what streamframe writes read back by
confluent-kafka's deserializer.
"""

from __future__ import annotations

import io
import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import fastavro
import pandas as pd
import pytest
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import streamframe as sf
from streamframe.errors import IncompatibleSchemaError, SchemaRegistryError
from tests.integration.helpers import consume_all, create_topic, produce

pytestmark = pytest.mark.integration

V1 = {"type": "record", "name": "Trade", "namespace": "test", "fields": [
    {"name": "id", "type": "long"}, {"name": "sym", "type": "string"}, {"name": "qty", "type": "int"}]}
# v2 adds a nullable price and a time; v3 drops sym: three versions in one topic
V2 = {**V1, "fields": V1["fields"] + [
    {"name": "price", "type": ["null", "double"], "default": None},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}, "default": 0}]}
V3 = {**V1, "fields": [f for f in V2["fields"] if f["name"] != "sym"]}


def _rows(n: int, version: int, start: int = 0) -> list[dict]:
    rng = random.Random(version)
    rows = []
    for i in range(start, start + n):
        row = {"id": i, "sym": rng.choice("ABC"), "qty": rng.randint(1, 200)}
        if version >= 2:
            row["price"] = None if i % 7 == 0 else round(rng.uniform(1, 500), 2)
            row["ts"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(seconds=i)
        if version == 3:
            del row["sym"]
        rows.append(row)
    return rows


def _serialize(client, topic: str, schema: dict, rows: list[dict]) -> list[bytes]:
    ser = AvroSerializer(client, json.dumps(schema))
    ctx = SerializationContext(topic, MessageField.VALUE)
    return [ser(r, ctx) for r in rows]


def _oracle(client, topic: str, messages) -> pd.DataFrame:
    """pandas over the records as confluent-kafka's own AvroDeserializer reads them."""
    de = AvroDeserializer(client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    return pd.DataFrame([de(m.value(), ctx) for m in messages])


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("id").reset_index(drop=True)


@pytest.fixture
def registry_conn(bootstrap, request):
    conn = sf.connect(bootstrap, app_id=f"avro-{request.node.name[:20]}",
                      schema_registry=f"mock://{request.node.name}")
    yield conn
    from streamframe import session

    session.stop_all()
    session.disconnect()


def test_three_schema_versions_read_into_one_frame_as_pandas_reads_them(registry_conn, bootstrap, topic_name):
    client = registry_conn.schema_registry.client
    create_topic(bootstrap, topic_name, partitions=2)
    rows = _rows(300, 1) + _rows(300, 2, 300) + _rows(300, 3, 600)
    values = (_serialize(client, topic_name, V1, rows[:300])
              + _serialize(client, topic_name, V2, rows[300:600])
              + _serialize(client, topic_name, V3, rows[600:]))
    produce(bootstrap, topic_name, values, partitions=[i % 2 for i in range(len(values))])

    got = sf.stream(topic_name, value="avro").run(until="end", timeout=60)

    oracle = _oracle(client, topic_name, consume_all(bootstrap, topic_name))
    assert len(got) == 900
    pd.testing.assert_frame_equal(_sorted(got), _sorted(oracle[list(got.columns)]))
    assert list(got.columns) == ["id", "sym", "qty", "price", "ts"]  # oldest version's fields first
    assert got["sym"].isna().sum() == 300 and got["price"].isna().sum() > 300  # v1's and v3's gaps


def test_a_reader_schema_resolves_every_version_to_its_fields(registry_conn, bootstrap, topic_name):
    client = registry_conn.schema_registry.client
    create_topic(bootstrap, topic_name)
    rows = _rows(50, 1) + _rows(50, 2, 50)
    produce(bootstrap, topic_name, _serialize(client, topic_name, V1, rows[:50])
            + _serialize(client, topic_name, V2, rows[50:]))
    reader = {**V1, "fields": V1["fields"] + [V2["fields"][3]]}  # id, sym, qty, price (default null)

    got = sf.stream(topic_name, value="avro", schema=reader).run(until="end", timeout=60)

    de = AvroDeserializer(client, json.dumps(reader))
    ctx = SerializationContext(topic_name, MessageField.VALUE)
    oracle = pd.DataFrame([de(m.value(), ctx) for m in consume_all(bootstrap, topic_name)])
    assert list(got.columns) == ["id", "sym", "qty", "price"]
    pd.testing.assert_frame_equal(_sorted(got), _sorted(oracle))


def test_raw_avro_bodies_of_a_given_schema_with_no_registry(conn, bootstrap, topic_name, tmp_path):
    create_topic(bootstrap, topic_name)
    rows = _rows(200, 2)
    parsed = fastavro.parse_schema(V2)
    bodies = []
    for r in rows:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, r)
        bodies.append(buf.getvalue())
    produce(bootstrap, topic_name, bodies)
    avsc = tmp_path / "trade.avsc"
    avsc.write_text(json.dumps(V2))

    from_dict = sf.stream(topic_name, value="avro", schema=V2).run(until="end", timeout=60)
    from_file = sf.stream(topic_name, value="avro", schema=str(avsc)).run(until="end", timeout=60)

    oracle = pd.DataFrame([fastavro.schemaless_reader(io.BytesIO(b), parsed) for b in bodies])
    pd.testing.assert_frame_equal(from_dict, oracle)
    pd.testing.assert_frame_equal(from_file, oracle)


def test_bad_records_are_dead_lettered_with_their_reason_and_good_ones_kept(registry_conn, bootstrap,
                                                                            topic_name):
    client = registry_conn.schema_registry.client
    create_topic(bootstrap, topic_name)
    rows = _rows(100, 1)
    good = _serialize(client, topic_name, V1, rows)
    bad = {
        3: b"\x00\x00\x00\x27\x0f" + good[3][5:],  # schema id 9999: the registry has none
        10: good[10][:6],  # cut short: the body does not match its schema
        20: good[20] + b"\x02\x04",  # bytes after the record
        30: b'{"id": 30}',  # JSON, not the wire format
    }
    values = [bad.get(i, v) for i, v in enumerate(good)]
    produce(bootstrap, topic_name, values)

    with pytest.warns(sf.DroppedRecordsWarning, match="4 of 100 records went to"):
        got = sf.stream(topic_name, value="avro").run(until="end", timeout=60)

    keep = [r for i, r in enumerate(rows) if i not in bad]
    pd.testing.assert_frame_equal(got, pd.DataFrame(keep))
    letters = {int(dict(m.headers())["streamframe.offset"]): m
               for m in consume_all(bootstrap, f"{topic_name}.dlq", expect=len(bad))}
    assert sorted(letters) == sorted(bad)
    reasons = {o: dict(m.headers())["streamframe.error"].decode() for o, m in letters.items()}
    assert reasons[3].startswith("unknown schema id 9999")
    assert reasons[10].startswith("Avro body does not match schema id ")
    assert reasons[20].endswith("bytes left over")
    assert reasons[30].startswith("not in the Schema Registry wire format")
    assert all(letters[o].value() == values[o] for o in bad)  # the records as they were


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_registry_that_is_down_fails_the_query_in_seconds_in_one_line(bootstrap, topic_name):
    create_topic(bootstrap, topic_name)
    produce(bootstrap, topic_name, [b"\x00\x00\x00\x00\x01\x02"])
    url = f"http://ana:pa55word@127.0.0.1:{_closed_port()}"
    sf.connect(bootstrap, schema_registry=url)
    try:
        frame = sf.stream(topic_name, value="avro")
        assert frame.columns is None  # the sample cannot be read: its columns are not known
        again = time.monotonic()
        assert frame.columns is None and time.monotonic() - again < 0.5  # asked once per sample
        started = time.monotonic()
        with pytest.raises(SchemaRegistryError) as err:
            sf.stream(topic_name, value="avro").run(until="end", timeout=60)
        took = time.monotonic() - started
    finally:
        from streamframe import session

        session.disconnect()
    message = str(err.value)
    assert took < 15, took
    assert "cannot reach the Schema Registry at http://127.0.0.1:" in message
    assert "\n" not in message and "pa55word" not in message


class _Refusing(BaseHTTPRequestHandler):
    """A registry that answers every request with one status and Confluent's error body."""

    status, message = 401, "Unauthorized"

    def _answer(self):
        body = json.dumps({"error_code": self.status, "message": self.message}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def refusing_registry():
    def start(status: int, message: str) -> str:
        handler = type("Handler", (_Refusing,), {"status": status, "message": message})
        server = HTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    servers = []
    yield start
    for s in servers:
        s.shutdown()
    from streamframe import session

    session.stop_all()
    session.disconnect()


def test_a_registry_refusing_the_credentials_is_one_line_without_them(bootstrap, topic_name,
                                                                       refusing_registry):
    create_topic(bootstrap, topic_name)
    produce(bootstrap, topic_name, [b"\x00\x00\x00\x00\x01\x02"])
    url = refusing_registry(401, "Unauthorized")
    conn = sf.connect(bootstrap, schema_registry={"url": url, "basic.auth.user.info": "ana:pa55word"})
    assert "pa55word" not in repr(conn) and "pa55word" not in repr(conn.schema_registry.config)
    started = time.monotonic()
    with pytest.raises(SchemaRegistryError) as err:
        sf.stream(topic_name, value="avro").run(until="end", timeout=60)
    assert time.monotonic() - started < 15
    message = str(err.value)
    assert "refused the credentials (HTTP 401" in message, message
    assert "\n" not in message and "pa55word" not in message


def test_an_incompatible_schema_is_one_error_naming_the_subject(bootstrap, topic_name, refusing_registry):
    url = refusing_registry(409, "Schema being registered is incompatible with an earlier schema")
    sf.connect(bootstrap, schema_registry=url)
    frame = sf.from_pandas(pd.DataFrame({"id": [1, 2], "qty": [3, 4]}))
    with pytest.raises(IncompatibleSchemaError) as err:
        frame.to_topic(topic_name, format="avro", until="end", timeout=60)
    assert err.value.subject == f"{topic_name}-value"
    assert f"subject '{topic_name}-value'" in str(err.value) and "\n" not in str(err.value)


def test_what_streamframe_writes_confluent_kafka_deserializes(registry_conn, bootstrap, topic_name):
    client = registry_conn.schema_registry.client
    df = pd.DataFrame({
        "id": [1, 2, 3, 4],
        "sym": ["A", None, "C", "D"],
        "qty": [10, 20, 30, 40],
        "price": [1.5, None, 3.25, 4.0],
        "ok": [True, False, True, True],
        "ts": pd.to_datetime([1_700_000_000_000, 1_700_000_001_000, 1_700_000_002_500, 1_700_000_003_000],
                             unit="ms", utc=True),
    })
    sf.from_pandas(df).to_topic(topic_name, format="avro", until="end", timeout=60)

    de = AvroDeserializer(client)
    ctx = SerializationContext(topic_name, MessageField.VALUE)
    read = pd.DataFrame([de(m.value(), ctx) for m in consume_all(bootstrap, topic_name, expect=4)])
    pd.testing.assert_frame_equal(_sorted(read), df, check_dtype=False)
    latest = client.get_latest_version(f"{topic_name}-value")
    fields = {f["name"]: f["type"] for f in json.loads(latest.schema.schema_str)["fields"]}
    assert fields["sym"] == ["null", "string"] and fields["qty"] == "long" and fields["ok"] == "boolean"
    assert fields["price"] == ["null", "double"]
    assert fields["ts"] == {"type": "long", "logicalType": "timestamp-millis"}

    # and back: streamframe reads what it wrote as pandas would
    again = sf.stream(topic_name, value="avro").run(until="end", timeout=60)
    pd.testing.assert_frame_equal(_sorted(again), _sorted(read))


def test_a_windowed_table_writes_avro_keys_and_values_confluent_kafka_reads(registry_conn, bootstrap,
                                                                           topic_name):
    client = registry_conn.schema_registry.client
    rows = pd.DataFrame(_rows(120, 2)).drop(columns="price")
    table = (sf.from_pandas(rows, timestamp="ts").groupby("sym").window(tumbling="1min")
             .agg(qty=("qty", "sum"), n=("qty", "count")))
    table.to_topic(topic_name, format="avro", until="end", timeout=60)

    keys = AvroDeserializer(client)
    values = AvroDeserializer(client)
    kctx = SerializationContext(topic_name, MessageField.KEY)
    vctx = SerializationContext(topic_name, MessageField.VALUE)
    latest = {}
    for m in consume_all(bootstrap, topic_name):
        k = keys(m.key(), kctx)
        latest[(k["sym"], k["window_start"])] = values(m.value(), vctx)
    got = pd.DataFrame(latest.values()).sort_values(["sym", "window_start"]).reset_index(drop=True)

    minute = rows["ts"].dt.floor("1min")
    oracle = (rows.assign(window_start=minute).groupby(["sym", "window_start"])
              .agg(qty=("qty", "sum"), n=("qty", "count")).reset_index())
    pd.testing.assert_frame_equal(got[["sym", "window_start", "qty", "n"]], oracle, check_dtype=False)
    assert (got["window_end"] - got["window_start"] == pd.Timedelta("1min")).all()
    key_fields = json.loads(client.get_latest_version(f"{topic_name}-key").schema.schema_str)["fields"]
    assert [(f["name"], f["type"]) for f in key_fields] == [
        ("sym", "string"), ("window_start", {"type": "long", "logicalType": "timestamp-millis"})]


def test_an_avro_table_deletes_on_tombstones_and_a_frame_tells_its_columns(registry_conn, bootstrap,
                                                                          topic_name):
    client = registry_conn.schema_registry.client
    create_topic(bootstrap, topic_name)
    rows = _rows(6, 1)
    values = _serialize(client, topic_name, V1, rows) + [None]  # the last: a delete of key "0"
    keys = [str(r["id"] % 3).encode() for r in rows] + [b"0"]
    produce(bootstrap, topic_name, values, keys=keys)

    t = sf.table(topic_name, value="avro")
    assert list(sf.stream(topic_name, value="avro").columns) == ["id", "sym", "qty"]  # from a sample
    got = t.run(until="end", timeout=60)

    last = {k: r for k, r in zip(keys, rows)}
    del last[b"0"]
    oracle = pd.DataFrame([{"_key": k.decode(), **r} for k, r in sorted(last.items())]).set_index("_key")
    # the delete's batch held a row with no fields, so ints came out as floats there, as value="json" does
    pd.testing.assert_frame_equal(got, oracle, check_index_type=False, check_dtype=False)


def test_avro_keys_read_as_their_values_and_pass_through_to_an_output(registry_conn, bootstrap, topic_name):
    client = registry_conn.schema_registry.client
    create_topic(bootstrap, topic_name)
    rows = _rows(30, 1)
    key_ser = AvroSerializer(client, '"string"')
    kctx = SerializationContext(topic_name, MessageField.KEY)
    keys = [key_ser(f"acct-{r['id'] % 4}", kctx) for r in rows]
    produce(bootstrap, topic_name, _serialize(client, topic_name, V1, rows), keys=keys)

    s = sf.stream(topic_name, key="avro", value="avro")
    got = s.run(until="end", timeout=60, metadata=True)
    assert got["_key"].tolist() == [f"acct-{r['id'] % 4}" for r in rows]

    table = sf.table(topic_name, key_format="avro", value="avro").run(until="end", timeout=60)
    last = {f"acct-{r['id'] % 4}": r for r in rows}
    oracle = pd.DataFrame([{"_key": k, **r} for k, r in sorted(last.items())]).set_index("_key")
    pd.testing.assert_frame_equal(table, oracle, check_index_type=False)

    out = f"{topic_name}-big"
    s[s.qty > 100].to_topic(out, until="end", timeout=60)  # keys as consumed, values as JSON
    de = AvroDeserializer(client)
    written = consume_all(bootstrap, out, expect=int((pd.DataFrame(rows)["qty"] > 100).sum()))
    assert [de(m.key(), SerializationContext(out, MessageField.KEY)) for m in written] == \
        [f"acct-{r['id'] % 4}" for r in rows if r["qty"] > 100]


def test_credentials_in_the_registry_url_stay_out_of_the_logs(bootstrap, topic_name, refusing_registry,
                                                              caplog):
    import logging

    create_topic(bootstrap, topic_name)
    produce(bootstrap, topic_name, [b"\x00\x00\x00\x00\x01\x02"])
    url = refusing_registry(403, "Forbidden").replace("http://", "http://ana:pa55word@")
    sf.connect(bootstrap, schema_registry=url)
    with caplog.at_level(logging.DEBUG), pytest.raises(SchemaRegistryError) as err:
        sf.stream(topic_name, value="avro").run(until="end", timeout=60)
    assert "refused the credentials (HTTP 403" in str(err.value)
    assert "HTTP Request" in caplog.text  # httpx logged the request ...
    assert "pa55word" not in caplog.text and "pa55word" not in str(err.value)  # ... without the password
