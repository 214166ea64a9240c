"""The magics over Avro topics (issue 15 item 3), in a real InteractiveShell against the real broker,
with confluent-kafka's in-memory registry: what %%kafka_produce --format avro writes, confluent-kafka's
AvroDeserializer reads; %kafka_tail decodes it; %kafka_topics describe and %schemas show the subject."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import streamframe as sf
from tests.integration.helpers import consume_all

pytestmark = pytest.mark.integration

PAYMENT = {"type": "record", "name": "Payment", "fields": [
    {"name": "id", "type": "long"}, {"name": "amount", "type": "double"},
    {"name": "note", "type": ["null", "string"], "default": None}]}
CELL = """
{"id": 1, "amount": 9.5, "note": "coffee"}
{"id": 2, "amount": 3.0, "note": null}
"""


@pytest.fixture
def shell(bootstrap, request):
    from IPython.core.interactiveshell import InteractiveShell

    from streamframe import session

    conn = sf.connect(bootstrap, schema_registry=f"mock://{request.node.name}")
    sh = InteractiveShell.instance()
    if "schemas" not in sh.magics_manager.magics["line"]:
        sh.run_line_magic("load_ext", "streamframe")
    yield sh, conn.schema_registry.client
    session.stop_all()
    session.disconnect()


def test_produce_avro_with_the_latest_schema_and_tail_it(shell, topic_name, bootstrap):
    sh, client = shell
    client.register_schema(f"{topic_name}-value", Schema(json.dumps(PAYMENT), "AVRO"))
    with capture_output() as out:
        sh.run_cell_magic("kafka_produce", f"{topic_name} --format avro --key id", CELL)
    assert out.stdout.strip().startswith(f"wrote 2 records to {topic_name!r}")

    de = AvroDeserializer(client)
    ctx = SerializationContext(topic_name, MessageField.VALUE)
    read = [de(m.value(), ctx) for m in consume_all(bootstrap, topic_name, expect=2)]
    assert read == [json.loads(line) for line in CELL.strip().splitlines()]

    tail = sh.run_line_magic("kafka_tail", f"{topic_name} --format avro")
    expected = pd.DataFrame(read)
    pd.testing.assert_frame_equal(tail[list(expected.columns)], expected)
    assert tail["_key"].tolist() == ["1", "2"]
    auto = sh.run_line_magic("kafka_tail", topic_name)  # every record in the wire format: Avro
    pd.testing.assert_frame_equal(auto[list(expected.columns)], expected)


def test_a_record_that_does_not_fit_or_no_subject_is_one_line(shell, topic_name):
    sh, client = shell
    with pytest.raises(UsageError, match=f"no subject '{topic_name}-value'"):
        sh.run_cell_magic("kafka_produce", f"{topic_name} --format avro", CELL)
    client.register_schema(f"{topic_name}-value", Schema(json.dumps(PAYMENT), "AVRO"))
    with pytest.raises(UsageError) as err:
        sh.run_cell_magic("kafka_produce", f"{topic_name} --format avro",
                          '{"id": 1, "amount": 2.0}\n{"id": "x", "amount": 1.0}\n')
    assert f"line 2 does not fit the latest schema of '{topic_name}-value' (id 1)" in str(err.value)
    assert "\n" not in str(err.value)


def test_describe_and_schemas_show_the_subject_and_its_versions(shell, topic_name):
    sh, client = shell
    subject = f"{topic_name}-value"
    first = client.register_schema(subject, Schema(json.dumps(PAYMENT), "AVRO"))
    v2 = {**PAYMENT, "fields": PAYMENT["fields"] + [{"name": "ccy", "type": "string", "default": "EUR"}]}
    second = client.register_schema(subject, Schema(json.dumps(v2), "AVRO"))
    sh.run_cell_magic("kafka_produce", f"{topic_name} --format avro", CELL.replace("}", ', "ccy": "USD"}'))

    with capture_output() as out:
        parts = sh.run_line_magic("kafka_topics", f"describe {topic_name}")
    assert parts.attrs["subjects"][subject]["id"] == second
    assert parts.attrs["subjects"][subject]["version"] == 2
    assert any(subject in str(o.data) for o in out.outputs)  # the subjects' table is displayed

    listed = sh.run_line_magic("schemas", "")
    row = listed[listed["subject"] == subject].iloc[0]
    assert (row["versions"], row["latest"], row["id"], row["type"]) == (2, 2, second, "AVRO")
    versions = sh.run_line_magic("schemas", subject)
    assert versions["id"].tolist() == [first, second]
    assert json.loads(versions.loc[2, "schema"])["fields"][-1]["name"] == "ccy"
    with pytest.raises(UsageError, match="has no subject 'nope-value'"):
        sh.run_line_magic("schemas", "nope-value")


def test_produce_and_tail_json_schema(shell, topic_name, bootstrap):
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer

    sh, client = shell
    person = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
              "required": ["id"]}
    client.register_schema(f"{topic_name}-value", Schema(json.dumps(person), "JSON"))
    sh.run_cell_magic("kafka_produce", f"{topic_name} --format jsonschema",
                      '{"id": 1, "name": "ann"}\n{"id": 2, "name": "bob"}\n')
    de = JSONDeserializer(None, schema_registry_client=client)
    ctx = SerializationContext(topic_name, MessageField.VALUE)
    read = [de(m.value(), ctx) for m in consume_all(bootstrap, topic_name, expect=2)]
    assert read == [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}]
    tail = sh.run_line_magic("kafka_tail", topic_name)  # auto: the first record's schema is JSON
    pd.testing.assert_frame_equal(tail[["id", "name"]], pd.DataFrame(read))
    with pytest.raises(UsageError, match="line 1 does not fit the latest schema"):
        sh.run_cell_magic("kafka_produce", f"{topic_name} --format jsonschema", '{"name": "no id"}\n')
