"""JSON Schema and Protobuf values through a frame (no broker), against confluent-kafka's own
JSONSerializer/JSONDeserializer and ProtobufSerializer/ProtobufDeserializer and its mock:// registry."""

from __future__ import annotations

import json

import attrs
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
from tests.protos import Order, OrderKey, Payment, key_row, order_row, payment_row

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
    with pytest.raises(ConfigError, match="takes schema= a generated message class"):
        value_format("protobuf", "orders.proto")
    with pytest.raises(ConfigError, match="reading Protobuf needs schema= the generated message class .* "
                                          "or a Schema Registry"):
        value_format("protobuf").decode([b"\x08\x01"])  # no registry: nothing names the message
    with pytest.raises(ConfigError, match="writing Protobuf needs schema= the generated message class"):
        value_format("protobuf").attach(registry, "orders-value").encode(pd.DataFrame({"id": [1]}))
    with pytest.raises(ConfigError, match="column 'extra' is not a field of test.shop.Order"):
        value_format("protobuf", Order).encode(pd.DataFrame({"id": [1], "extra": [2]}))


# --- Protobuf imports (schema references) -----------------------------------------------------------

PAYMENTS = [Payment(id=1, amount={"currency": "EUR", "units": 12}, at={"seconds": 1_700_000_000, "nanos": 5}),
            Payment(id=2, at={"seconds": 1_700_000_060}),
            Payment(id=3, amount={"currency": "USD", "units": 7})]


def test_protobuf_importing_other_files_is_read_by_schema_id_with_its_references(registry):
    values = [ProtobufSerializer(Payment, registry.client)(m, CTX) for m in PAYMENTS]
    assert sorted(registry.client.get_subjects()) == ["orders-value", "test_shop_money.proto"]
    de = ProtobufDeserializer(Payment, schema_registry_client=registry.client)
    oracle = pd.DataFrame([payment_row(de(v, CTX)) for v in values])
    by_id = _drive(value_format("protobuf").attach(registry), values).output()  # no class: the registry's
    assert_frame_equal(by_id, oracle)
    assert_frame_equal(_drive(value_format("protobuf", Payment).attach(registry), values).output(), oracle)


def test_protobuf_written_registers_its_imports_as_references(registry):
    rows = pd.DataFrame([payment_row(m) for m in PAYMENTS])
    values = value_format("protobuf", Payment).attach(registry, "orders-value").encode(rows)
    de = ProtobufDeserializer(Payment, schema_registry_client=registry.client)
    assert [de(v, CTX) for v in values] == PAYMENTS
    refs = registry.client.get_latest_version("orders-value").schema.references
    money = "test_shop_money.proto"
    assert [(r.name, r.subject, r.version) for r in refs] == [(money, money, 1)]
    assert_frame_equal(_drive(value_format("protobuf").attach(registry), values).output(), rows)


def test_a_protobuf_schema_whose_reference_is_missing_is_dead_lettered_with_why(registry):
    from confluent_kafka.schema_registry import Schema, SchemaReference

    from streamframe.serde.protobuf_schema import file_text

    refs = [SchemaReference("test_shop_money.proto", "nowhere.proto", 1)]
    schema = Schema(file_text(Payment.DESCRIPTOR.file), "PROTOBUF", refs)
    sid = registry.client.register_schema("orders-value", schema)
    driver = _drive(value_format("protobuf").attach(registry), [b"\x00" + sid.to_bytes(4, "big") + b"\x00"])
    assert driver.output().empty
    assert driver.dead_letters[0]["reason"] == (
        f"schema id {sid} cannot be used: it references test_shop_money.proto ('nowhere.proto' version 1), "
        "which the Schema Registry does not have")



def test_protobuf_schemas_are_asked_for_as_file_descriptors_not_proto_text():
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry._sync.mock_schema_registry_client import MockSchemaRegistryClient

    class ProtoTextByDefault(MockSchemaRegistryClient):
        """As Confluent Schema Registry answers: a Protobuf schema is .proto text unless asked for in
        the "serialized" form (confluent-kafka's mock holds only what was registered)."""

        def get_schema(self, schema_id, subject_name=None, fmt=None, reference_format=None):
            return self._text(super().get_schema(schema_id, subject_name, fmt), fmt)

        def get_version(self, subject_name, version="latest", deleted=False, fmt=None):
            found = super().get_version(subject_name, version, deleted, fmt)
            return attrs.evolve(found, schema=self._text(found.schema, fmt))

        @staticmethod
        def _text(schema, fmt):
            if schema.schema_type != "PROTOBUF" or fmt == "serialized":
                return schema
            return Schema('syntax = "proto3";', "PROTOBUF", schema.references)

    client = ProtoTextByDefault({"url": "mock://proto-text"})
    values = [ProtobufSerializer(Payment, client)(m, CTX) for m in PAYMENTS]
    out = _drive(value_format("protobuf").attach(Registry(client)), values).output()
    assert_frame_equal(out, pd.DataFrame([payment_row(m) for m in PAYMENTS]))

# --- Protobuf keys -----------------------------------------------------------------------------------

def test_protobuf_keys_decode_to_dicts_with_a_registry_or_a_key_schema(registry):
    kctx = SerializationContext("orders", MessageField.KEY)
    keys = [OrderKey(region="eu", id=i) for i in range(3)]
    values = [m.SerializeToString() for m in ORDERS]
    wire = [ProtobufSerializer(OrderKey, registry.client)(k, kctx) for k in keys]
    frame = sf.stream("orders", key="protobuf", value="protobuf", schema=Order)
    frame._node.key_decoder.attach(registry)
    driver = TestDriver(frame)
    driver.pipe("orders", values, keys=[wire[0], b"\x00\x00\x00\x00\x63\x00", wire[2]])
    de = ProtobufDeserializer(OrderKey, schema_registry_client=registry.client)
    assert driver.output(metadata=True)["_key"].tolist() == [key_row(de(wire[i], kctx)) for i in (0, 2)]
    assert driver.dead_letters[0]["reason"] == \
        "key: unknown schema id 99 (the Schema Registry has no schema with this id)"

    raw = TestDriver(sf.stream("orders", key="protobuf", value="protobuf", schema=Order, key_schema=OrderKey))
    raw.pipe("orders", values, keys=[k.SerializeToString() for k in keys])
    assert raw.output(metadata=True)["_key"].tolist() == [key_row(k) for k in keys]


def test_keys_encode_as_messages_of_a_key_class(registry):
    from streamframe.serde import encode_registry_keys

    fmt = value_format("protobuf", OrderKey).attach(registry, "orders-key")
    encoded = encode_registry_keys([{"region": "eu", "id": 4}, None, {"region": "us", "id": 5}], fmt)
    de = ProtobufDeserializer(OrderKey, schema_registry_client=registry.client)
    kctx = SerializationContext("orders", MessageField.KEY)
    assert encoded[1] is None
    assert [de(encoded[i], kctx) for i in (0, 2)] == [OrderKey(region="eu", id=4),
                                                      OrderKey(region="us", id=5)]
    assert registry.latest("orders-key")[1] == "PROTOBUF"
    one = value_format("protobuf", Order.Line)  # a message of two fields: the key names its field
    assert one.cls.FromString(encode_registry_keys(["s9"], one, "sku")[0]).sku == "s9"
    with pytest.raises(ConfigError, match="a key of one value does not say which field of the key schema"):
        encode_registry_keys(["eu"], fmt)


def test_a_table_keyed_by_message_keys_dead_letters_them_with_why():
    table = sf.table("orders", key_format="protobuf", value="protobuf", schema=Order, key_schema=OrderKey)
    driver = TestDriver(table)
    driver.pipe("orders", [m.SerializeToString() for m in ORDERS],
                keys=[OrderKey(region="eu", id=i).SerializeToString() for i in range(3)])
    assert driver.output().empty and len(driver.dead_letters) == 3
    assert "a table keyed by its record keys needs keys of one value" in driver.dead_letters[0]["reason"]
    by_column = TestDriver(sf.table("orders", key="id", key_format="protobuf", value="protobuf", schema=Order,
                                    key_schema=OrderKey))
    by_column.pipe("orders", [m.SerializeToString() for m in ORDERS],
                   keys=[OrderKey(region="eu", id=i).SerializeToString() for i in range(3)])
    assert by_column.output()["id"].tolist() == [1, 2, 3] and not by_column.dead_letters
