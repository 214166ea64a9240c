"""JSON Schema and Protobuf values through a frame (no broker), against confluent-kafka's own
JSONSerializer/JSONDeserializer and ProtobufSerializer/ProtobufDeserializer and its mock:// registry."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from pandas.testing import assert_frame_equal

import streamframe as sf
from streamframe.errors import ConfigError
from streamframe.kafka.registry import Registry
from streamframe.serde import value_format
from streamframe.testing import TestDriver
from tests.protos import Order, order_row

CTX = SerializationContext("orders", MessageField.VALUE)
PERSON = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
          "required": ["id"]}
PERSON2 = {**PERSON, "properties": {**PERSON["properties"], "age": {"type": ["integer", "null"]}}}


@pytest.fixture
def registry(request):
    return Registry(f"mock://{request.node.name}")


def _drive(fmt, values):
    driver = TestDriver(sf.stream("orders", value=fmt))
    driver.pipe("orders", values)
    return driver


# --- JSON Schema -------------------------------------------------------------------------------------

def test_json_schema_versions_decode_as_pandas_over_the_deserializers_objects(registry):
    rows1 = [{"id": i, "name": f"n{i}"} for i in range(4)]
    rows2 = [{"id": 10 + i, "name": f"m{i}", "age": 30 + i} for i in range(4)]
    values = [JSONSerializer(json.dumps(PERSON), registry.client)(r, CTX) for r in rows1] + \
        [JSONSerializer(json.dumps(PERSON2), registry.client)(r, CTX) for r in rows2]
    out = _drive(value_format("jsonschema").attach(registry), values).output()
    de = JSONDeserializer(None, schema_registry_client=registry.client)
    assert_frame_equal(out, pd.DataFrame([de(v, CTX) for v in values]))


def test_a_json_record_that_does_not_validate_is_dead_lettered_with_where(registry):
    good = JSONSerializer(json.dumps(PERSON), registry.client)({"id": 1, "name": "a"}, CTX)
    driver = _drive(value_format("jsonschema").attach(registry),
                    [good, good[:5] + b'{"id": "x"}', good[:5] + b"{nope", good[:5] + b'{"name": "b"}'])
    assert driver.output()["id"].tolist() == [1]
    reasons = [d["reason"] for d in driver.dead_letters]
    assert reasons[0] == "JSON body does not match schema id 1: 'x' is not of type 'integer' (at id)"
    assert reasons[1].startswith("invalid JSON")
    assert reasons[2] == "JSON body does not match schema id 1: 'id' is a required property"


def test_json_schema_written_is_read_by_confluent_kafka(registry):
    frame = pd.DataFrame({"id": [1, 2], "name": ["a", None], "score": [0.5, 1.5], "vip": [True, False]})
    values = value_format("jsonschema").attach(registry, "orders-value").encode(frame)
    de = JSONDeserializer(None, schema_registry_client=registry.client)
    assert pd.DataFrame([de(v, CTX) for v in values]).equals(frame)
    props = json.loads(registry.latest("orders-value")[2])["properties"]
    assert props == {"id": {"type": "integer"}, "name": {"type": ["string", "null"]},
                     "score": {"type": "number"}, "vip": {"type": "boolean"}}


def test_plain_json_checked_against_a_given_schema_without_a_registry():
    driver = _drive(value_format("jsonschema", PERSON), [b'{"id": 1, "name": "a"}', b'{"id": []}'])
    assert driver.output().to_dict("records") == [{"id": 1, "name": "a"}]
    assert driver.dead_letters[0]["reason"].startswith("JSON body does not match the schema= given")
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        value_format("jsonschema", {"type": 12})


# --- Protobuf ----------------------------------------------------------------------------------------

ORDERS = [Order(id=1, customer="ann", amount=9.5, kind="ONLINE", tags=["a", "b"], note="gift",
                first={"sku": "s1", "count": 2}),
          Order(id=2, customer="bob", amount=3.0, kind="STORE"),
          Order(id=3, customer="cy", amount=0.0, tags=["c"], first={"sku": "s2", "count": 1})]


def test_protobuf_written_by_confluent_kafka_decodes_as_its_deserializer_reads(registry):
    values = [ProtobufSerializer(Order, registry.client)(m, CTX) for m in ORDERS]
    out = _drive(value_format("protobuf", Order).attach(registry), values).output()
    de = ProtobufDeserializer(Order, schema_registry_client=registry.client)
    assert_frame_equal(out, pd.DataFrame([order_row(de(v, CTX)) for v in values]))


def test_raw_protobuf_messages_without_a_registry_and_bad_ones():
    values = [m.SerializeToString() for m in ORDERS] + [b"\xff\xff\xff"]
    driver = _drive(value_format("protobuf", Order), values)
    assert_frame_equal(driver.output(), pd.DataFrame([order_row(m) for m in ORDERS]))
    assert driver.dead_letters[0]["reason"].startswith("Protobuf body is not a test.shop.Order")


def test_protobuf_written_is_read_by_confluent_kafka(registry):
    rows = pd.DataFrame([order_row(m) for m in ORDERS])
    values = value_format("protobuf", Order).attach(registry, "orders-value").encode(rows)
    de = ProtobufDeserializer(Order, schema_registry_client=registry.client)
    assert [de(v, CTX) for v in values] == ORDERS
    assert registry.latest("orders-value")[1] == "PROTOBUF"


def test_protobuf_needs_a_message_class_and_known_columns(registry):
    with pytest.raises(ConfigError, match="needs schema= a generated message class"):
        value_format("protobuf")
    with pytest.raises(ConfigError, match="column 'extra' is not a field of test.shop.Order"):
        value_format("protobuf", Order).encode(pd.DataFrame({"id": [1], "extra": [2]}))
