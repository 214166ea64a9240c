"""Avro values through a frame (no broker): confluent-kafka's own serializers and in-memory registry
(mock://) write the records, its deserializer and pandas are the oracle; raw bodies of a given schema;
bad records dead-lettered alone; the inferred schema of a frame; the registry's errors and secrets.
"""

from __future__ import annotations

import io
import json

import fastavro
import pandas as pd
import pytest
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from pandas.testing import assert_frame_equal

import streamframe as sf
from streamframe.errors import ConfigError, SchemaRegistryError
from streamframe.kafka.registry import Registry
from streamframe.serde import value_format
from streamframe.testing import TestDriver

V1 = {"type": "record", "name": "Click", "fields": [{"name": "user", "type": "string"},
                                                    {"name": "n", "type": "long"}]}
V2 = {**V1, "fields": V1["fields"] + [{"name": "score", "type": ["null", "double"], "default": None}]}
CTX = SerializationContext("clicks", MessageField.VALUE)


@pytest.fixture
def registry(request):
    return Registry(f"mock://{request.node.name}")


def _serialize(registry, schema, rows):
    ser = AvroSerializer(registry.client, json.dumps(schema))
    return [ser(r, CTX) for r in rows]


def _drive(fmt, values):
    driver = TestDriver(sf.stream("clicks", value=fmt))
    driver.pipe("clicks", values)
    return driver


def test_two_versions_decode_to_the_frame_pandas_makes_of_the_deserializers_records(registry):
    rows1 = [{"user": f"u{i}", "n": i} for i in range(5)]
    rows2 = [{"user": f"v{i}", "n": 10 + i, "score": None if i == 2 else i / 2} for i in range(5)]
    values = _serialize(registry, V1, rows1) + _serialize(registry, V2, rows2)
    values = values[::2] + values[1::2]  # versions interleaved
    out = _drive(value_format("avro").attach(registry), values).output()
    de = AvroDeserializer(registry.client)
    assert_frame_equal(out, pd.DataFrame([de(v, CTX) for v in values]))


def test_a_bad_record_is_dead_lettered_alone_with_its_reason(registry):
    values = _serialize(registry, V1, [{"user": "a", "n": 1}, {"user": "b", "n": 2}, {"user": "c", "n": 3}])
    values[1] = values[1][:-1]
    driver = _drive(value_format("avro").attach(registry), values + [b"\x00\x00\x00\x00\x63\x00", b"x"])
    assert driver.output()["user"].tolist() == ["a", "c"]
    reasons = [d["reason"] for d in driver.dead_letters]
    assert reasons[0].startswith("Avro body does not match schema id 1: EOFError")
    assert reasons[1].startswith("unknown schema id 99")
    assert reasons[2].startswith("not in the Schema Registry wire format")


def test_a_schema_of_another_type_is_named(registry):
    sid = registry.register("other", '{"type": "object"}', "JSON")
    driver = _drive(value_format("avro").attach(registry), [b"\x00" + sid.to_bytes(4, "big") + b"{}"])
    assert driver.dead_letters[0]["reason"] == f"schema id {sid} is a JSON schema, not AVRO"


def test_raw_bodies_of_a_given_schema_decode_as_fastavro_reads_them(tmp_path):
    rows = [{"user": "a", "n": 1, "score": 0.5}, {"user": "b", "n": 2, "score": None}]
    parsed = fastavro.parse_schema(V2)
    bodies = []
    for r in rows:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, r)
        bodies.append(buf.getvalue())
    path = tmp_path / "click.avsc"
    path.write_text(json.dumps(V2))
    for schema in (V2, str(path), json.dumps(V2), path):
        assert_frame_equal(_drive(value_format("avro", schema), bodies).output(), pd.DataFrame(rows))


def test_a_schema_that_is_not_one_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="neither an Avro schema nor a file holding one"):
        value_format("avro", str(tmp_path / "missing.avsc"))
    with pytest.raises(ConfigError, match="not a valid Avro schema"):
        value_format("avro", {"type": "record", "name": "X", "fields": [{"name": "a", "type": "nosuch"}]})
    with pytest.raises(ConfigError, match="needs a Schema Registry"):
        value_format("avro").decode([b"\x00\x00\x00\x00\x01"])


def test_the_inferred_schema_follows_the_dtypes_and_only_widens(registry):
    fmt = value_format("avro").attach(registry, "out-value")
    frame = pd.DataFrame({"user": ["a", "b"], "n": [1, 2], "score": [0.5, 1.5], "vip": [True, False],
                          "at": pd.to_datetime([1, 2], unit="s", utc=True)})
    first = fmt.encode(frame)
    schema = json.loads(registry.latest("out-value")[2])
    assert [(f["name"], f["type"]) for f in schema["fields"]] == [
        ("user", "string"), ("n", "long"), ("score", "double"), ("vip", "boolean"),
        ("at", {"type": "long", "logicalType": "timestamp-millis"})]
    fmt.encode(frame.assign(score=[None, 2.0]))
    fmt.encode(frame)  # score stays nullable: no third version
    assert registry.versions("out-value") == [1, 2]
    de = AvroDeserializer(registry.client)
    assert de(first[0], CTX) == {"user": "a", "n": 1, "score": 0.5, "vip": True,
                                 "at": pd.Timestamp(1, unit="s", tz="UTC").to_pydatetime()}


def test_a_column_avro_cannot_name_is_a_config_error(registry):
    with pytest.raises(ConfigError, match="'a b' cannot be an Avro field name"):
        value_format("avro").attach(registry, "s").encode(pd.DataFrame({"a b": [1]}))


def test_the_registry_masks_its_credentials_everywhere():
    r = Registry({"url": "mock://secrets", "basic.auth.user.info": "ana:pa55word"})
    assert "pa55word" not in repr(r)
    assert r.scrub("failed for ana:pa55word and pa55word") == "failed for ******** and ********"
    in_url = Registry("mock://ana:pa55word@host")
    assert in_url.url == "mock://host" and in_url.scrub("pa55word") == "********"
    conn = sf.Connection("127.0.0.1:9", schema_registry=r)
    assert "pa55word" not in repr(conn) and "pa55word" not in conn.scrub("x pa55word")


def test_a_registry_setting_of_the_wrong_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="takes a URL"):
        Registry(8081)
    with pytest.raises(ConfigError, match="bad Schema Registry setting"):
        Registry({"url": "mock://x", "no.such.setting": 1})


def test_an_unreachable_registry_is_one_line_of_ours():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = Registry({"url": f"http://127.0.0.1:{port}", "max.retries": 0})
    with pytest.raises(SchemaRegistryError, match=r"cannot reach the Schema Registry at http://127.0.0.1:\d+ "
                                                  r"looking up schema id 1 \("):
        r.schema(1)


def test_a_key_schema_is_for_the_key_formats_of_a_registry_only():
    with pytest.raises(ConfigError, match="key_schema= is for key formats avro, jsonschema, protobuf, "
                                          "not 'text'"):
        sf.stream("t", key="text", key_schema={"type": "string"})
    with pytest.raises(ConfigError, match="unknown key format 'proto'"):
        sf.stream("t", key="proto")


def test_avro_keys_decode_to_their_value_or_a_dict_and_a_bad_one_is_dead_lettered(registry):
    key_ser = AvroSerializer(registry.client, '"string"')
    kctx = SerializationContext("clicks", MessageField.KEY)
    values = _serialize(registry, V1, [{"user": "a", "n": 1}, {"user": "b", "n": 2}, {"user": "c", "n": 3}])
    keys = [key_ser("k1", kctx), b"\x00\x00\x00\x00\x63\x00", None]
    frame = sf.stream("clicks", key="avro", value="avro")
    frame._node.key_decoder.attach(registry)
    frame._node.value_format.attach(registry)
    driver = TestDriver(frame)
    driver.pipe("clicks", values, keys=keys)
    out = driver.output(metadata=True)
    assert out["user"].tolist() == ["a", "c"] and out["_key"].tolist() == ["k1", None]
    assert driver.dead_letters[0]["reason"].startswith("key: unknown schema id 99")

    record = AvroSerializer(registry.client, json.dumps(
        {"type": "record", "name": "K", "fields": [{"name": "region", "type": "string"},
                                                   {"name": "shard", "type": "int"}]}))
    rows = _drive_keys(registry, values[:1], [record({"region": "eu", "shard": 3}, kctx)])
    assert rows == [{"region": "eu", "shard": 3}]


def _drive_keys(registry, values, keys):
    frame = sf.stream("clicks", key="avro", value="avro")
    frame._node.key_decoder.attach(registry)
    frame._node.value_format.attach(registry)
    driver = TestDriver(frame)
    driver.pipe("clicks", values, keys=keys)
    return driver.output(metadata=True)["_key"].tolist()
