"""JSON Schema and Protobuf topics against the real broker (issue 15): records written by
confluent-kafka's own serializers read into the frame pandas makes of what its deserializers read, and
what streamframe writes read back by those deserializers — both ways through its mock:// registry."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import streamframe as sf
from tests.integration.helpers import consume_all, create_topic, produce
from tests.protos import Order, OrderKey, Payment, key_row, order_row, payment_row

pytestmark = pytest.mark.integration

PERSON = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                                           "score": {"type": "number"}}, "required": ["id"]}


@pytest.fixture
def registry_conn(bootstrap, request):
    conn = sf.connect(bootstrap, app_id=f"fmt-{request.node.name[:20]}",
                      schema_registry=f"mock://{request.node.name}")
    yield conn
    from streamframe import session

    session.stop_all()
    session.disconnect()


def _ctx(topic):
    return SerializationContext(topic, MessageField.VALUE)


def _read_as_confluent_kafka_reads(client, bootstrap, topic, messages, row, **stream):
    """Produces `messages` with confluent-kafka's ProtobufSerializer, reads them with
    sf.stream(topic, value="protobuf", **stream) and checks the frame is the rows (`row`) of what its
    ProtobufDeserializer reads of them. Returns the stream and the deserializer."""
    create_topic(bootstrap, topic)
    cls = type(messages[0])
    ser = ProtobufSerializer(cls, client)
    produce(bootstrap, topic, [ser(m, _ctx(topic)) for m in messages])
    s = sf.stream(topic, value="protobuf", **stream)
    de = ProtobufDeserializer(cls, schema_registry_client=client)
    oracle = pd.DataFrame([row(de(m.value(), _ctx(topic))) for m in consume_all(bootstrap, topic)])
    pd.testing.assert_frame_equal(s.run(until="end", timeout=60), oracle)
    return s, de


def test_json_schema_both_ways(registry_conn, bootstrap, topic_name):
    client = registry_conn.schema_registry.client
    create_topic(bootstrap, topic_name, partitions=2)
    ser = JSONSerializer(json.dumps(PERSON), client)
    rows = [{"id": i, "name": f"p{i}", "score": i / 4} for i in range(200)]
    produce(bootstrap, topic_name, [ser(r, _ctx(topic_name)) for r in rows],
            partitions=[i % 2 for i in range(200)])

    s = sf.stream(topic_name, value="jsonschema")
    got = s.run(until="end", timeout=60).sort_values("id").reset_index(drop=True)
    de = JSONDeserializer(None, schema_registry_client=client)
    oracle = pd.DataFrame([de(m.value(), _ctx(topic_name)) for m in consume_all(bootstrap, topic_name)])
    pd.testing.assert_frame_equal(got, oracle.sort_values("id").reset_index(drop=True))

    out = f"{topic_name}-out"
    s[s.score >= 25].to_topic(out, format="jsonschema", until="end", timeout=60)
    read = pd.DataFrame([de(m.value(), _ctx(out)) for m in consume_all(bootstrap, out, expect=100)])
    expected = got[got.score >= 25]
    pd.testing.assert_frame_equal(read.sort_values("id").reset_index(drop=True),
                                  expected.reset_index(drop=True))


def test_protobuf_both_ways(registry_conn, bootstrap, topic_name):
    client = registry_conn.schema_registry.client
    messages = [Order(id=i, customer=f"c{i % 3}", amount=i * 1.5, kind=("ONLINE", "STORE")[i % 2],
                      tags=[f"t{i}"] * (i % 3), first={"sku": f"s{i}", "count": i} if i % 4 else None)
                for i in range(60)]
    s, de = _read_as_confluent_kafka_reads(client, bootstrap, topic_name, messages, order_row, schema=Order)

    out = f"{topic_name}-out"
    s[s.kind == "STORE"].to_topic(out, format="protobuf", schema=Order, until="end", timeout=60)
    read = [de(m.value(), _ctx(out)) for m in consume_all(bootstrap, out, expect=30)]
    assert read == [m for m in messages if m.kind == Order.STORE]


def _key_ctx(topic):
    return SerializationContext(topic, MessageField.KEY)


def test_protobuf_keys_both_ways(registry_conn, bootstrap, topic_name):
    client = registry_conn.schema_registry.client
    create_topic(bootstrap, topic_name)
    keys = [OrderKey(region=("eu", "us")[i % 2], id=i % 5) for i in range(40)]
    orders = [Order(id=i, customer=f"c{i % 3}", amount=i * 0.5) for i in range(40)]
    key_ser, ser = ProtobufSerializer(OrderKey, client), ProtobufSerializer(Order, client)
    produce(bootstrap, topic_name, [ser(m, _ctx(topic_name)) for m in orders],
            keys=[key_ser(k, _key_ctx(topic_name)) for k in keys])

    s = sf.stream(topic_name, key="protobuf", value="protobuf")  # no classes: both read by schema id
    got = s.run(until="end", timeout=60, metadata=True)
    key_de = ProtobufDeserializer(OrderKey, schema_registry_client=client)
    records = consume_all(bootstrap, topic_name)
    assert got["_key"].tolist() == [key_row(key_de(m.key(), _key_ctx(topic_name))) for m in records]
    assert got["id"].tolist() == list(range(40))

    out = f"{topic_name}-out"  # keys written as messages of the class given, values of Order
    s[s.id % 2 == 0].to_topic(out, format="protobuf", schema=Order, key_schema=OrderKey, until="end",
                              timeout=60)
    written = consume_all(bootstrap, out, expect=20)
    assert [key_de(m.key(), _key_ctx(out)) for m in written] == keys[::2]
    assert client.get_latest_version(f"{out}-key").schema.schema_type == "PROTOBUF"

    passed = f"{topic_name}-as-read"  # no key_schema: the keys pass through as consumed
    s[s.id < 3].to_topic(passed, until="end", timeout=60)
    assert [key_de(m.key(), _key_ctx(passed)) for m in consume_all(bootstrap, passed, expect=3)] == keys[:3]

    table = f"{topic_name}-counts"  # a table's keys of two columns: a message with those fields
    rows = pd.DataFrame([{**key_row(k), "n": 1} for k in keys])
    sf.from_pandas(rows).groupby(["region", "id"]).count().to_topic(table, key_schema=OrderKey, until="end",
                                                                    timeout=60)
    read = [key_de(m.key(), _key_ctx(table)) for m in consume_all(bootstrap, table)]
    assert {(k.region, k.id) for k in read} == {(k.region, k.id) for k in keys}


def test_protobuf_keys_without_a_registry(bootstrap, topic_name):
    sf.connect(bootstrap, app_id=f"fmt-raw-{topic_name[-6:]}")
    try:
        create_topic(bootstrap, topic_name)
        keys = [OrderKey(region="eu", id=i) for i in range(5)]
        produce(bootstrap, topic_name, [json.dumps({"n": i}).encode() for i in range(5)],
                keys=[k.SerializeToString() for k in keys])
        s = sf.stream(topic_name, key="protobuf", key_schema=OrderKey)
        got = s.run(until="end", timeout=60, metadata=True)
        assert got["_key"].tolist() == [key_row(k) for k in keys]
        out = f"{topic_name}-out"
        s.to_topic(out, key_schema=OrderKey, until="end", timeout=60)
        assert [OrderKey.FromString(m.key()) for m in consume_all(bootstrap, out, expect=5)] == keys
    finally:
        from streamframe import session

        session.stop_all()
        session.disconnect()


def test_protobuf_imports_both_ways(registry_conn, bootstrap, topic_name):
    client = registry_conn.schema_registry.client
    payments = [Payment(id=i, amount={"currency": "EUR", "units": 10 * i} if i % 3 else None,
                        at={"seconds": 1_700_000_000 + i, "nanos": i} if i % 2 else None) for i in range(30)]
    # the serializer registers test_shop_money.proto as a reference; no class: read by schema id
    s, de = _read_as_confluent_kafka_reads(client, bootstrap, topic_name, payments, payment_row)

    out = f"{topic_name}-out"
    client.delete_subject("test_shop_money.proto")  # so that writing has to register the import itself
    s[s.id >= 10].to_topic(out, format="protobuf", schema=Payment, until="end", timeout=60)
    assert [de(m.value(), _ctx(out)) for m in consume_all(bootstrap, out, expect=20)] == payments[10:]
    refs = client.get_latest_version(f"{out}-value").schema.references
    assert [(r.name, r.subject) for r in refs] == [("test_shop_money.proto", "test_shop_money.proto")]
