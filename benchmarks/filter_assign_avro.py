"""Workload 4: workload 1 (filter + assign + write) over Avro input in Confluent's wire format.

The same trades as workload 1, written by confluent-kafka's own AvroSerializer through a Schema
Registry; the output is JSON, as in workload 1, and checked the same way. No Schema Registry server can
be installed here, so the registry is confluent-kafka's in-memory one (MockSchemaRegistryClient), one
instance shared by the producer and every contestant: each looks a schema id up once and caches it, as
it would against a real registry.

Contestants, each into its own fresh output topic:
  * `run_hand_written`: workload 1's loop with `AvroDeserializer(registry)(value, ctx)` in place of
    `orjson.loads` — what the confluent-kafka documentation shows for reading Avro;
  * `run_streamframe`: `sf.connect(bootstrap, schema_registry=registry)`, then
    `s = sf.stream(topic, value="avro")`,
    `s[s.qty > 100].assign(notional=s.qty * s.price).to_topic(out, until="end")`.
"""

from __future__ import annotations

import json
import time

import numpy as np
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import streamframe as sf
import streamframe.kafka.reader
import streamframe.kafka.writer
import streamframe.runtime.query  # noqa: F401 - imported before timing, as the loop's modules are
import streamframe.serde.avro  # noqa: F401
from benchmarks import common, filter_assign

TITLE = "filter+assign+write, Avro input"
RECORDS = 1_000_000
BATCH = filter_assign.BATCH
QTY_ABOVE = filter_assign.QTY_ABOVE
SCHEMA = {"type": "record", "name": "Trade", "namespace": "bench", "fields": [
    {"name": "trade_id", "type": "long"}, {"name": "symbol", "type": "string"},
    {"name": "side", "type": "string"}, {"name": "qty", "type": "long"}, {"name": "price", "type": "double"},
    {"name": "ts", "type": "long"}]}
REGISTRY = SchemaRegistryClient.new_client({"url": "mock://bench"})


class AvroInput(common.InputInfo):
    def describe(self) -> str:
        return (f"{self.records:,} Avro records (wire format) of {self.bytes_per_record:.0f} B in "
                f"{self.partitions} partitions")


def prepare(bootstrap: str, records: int, partitions: int, chunk: int = 100_000) -> AvroInput:
    """Workload 1's trades, serialized by confluent-kafka's AvroSerializer (schema registered under
    `<topic>-value`)."""
    from streamframe.connectors.generator import trades

    topic = common.create_topic(bootstrap, common.unique_topic("bench-avro-trades"), partitions)
    serialize = AvroSerializer(REGISTRY, json.dumps(SCHEMA))
    ctx = SerializationContext(topic, MessageField.VALUE)
    start_ms = int(time.time() * 1000) - records
    total, kept, t0 = 0, 0, time.perf_counter()
    for first in range(0, records, chunk):
        n = min(chunk, records - first)
        df = trades(n, seed=42 + first, start_ms=start_ms + first, first_id=first)
        kept += int((df["qty"] > QTY_ABOVE).sum())
        values = [serialize(row, ctx) for row in df.astype(object).to_dict("records")]
        parts = (np.arange(first, first + n) % partitions).tolist()
        total += common.produce_records(bootstrap, topic, values, df["symbol"].tolist(), df["ts"].tolist(),
                                        parts)
    return AvroInput(topic, records, partitions, total, time.perf_counter() - t0, kept)


def run_hand_written(bootstrap: str, topic: str, out: str) -> float:
    deserialize = AvroDeserializer(REGISTRY)
    ctx = SerializationContext(topic, MessageField.VALUE)
    return filter_assign.run_hand_written(bootstrap, topic, out, decode=lambda value: deserialize(value, ctx))


def run_streamframe(bootstrap: str, topic: str, out: str) -> float:
    t0 = time.perf_counter()
    sf.connect(bootstrap, schema_registry=REGISTRY)
    s = sf.stream(topic, value="avro")
    query = s[s.qty > QTY_ABOVE].assign(notional=s.qty * s.price).to_topic(out, until="end")
    elapsed = time.perf_counter() - t0
    m = query.metrics
    if m["errors"] or m["status"] != "finished":
        raise RuntimeError(f"streamframe run did not finish cleanly: {m}")
    return elapsed


CONTESTANTS = {
    "hand-written loop": lambda bootstrap, inp, out: run_hand_written(bootstrap, inp.topic, out),
    "streamframe": lambda bootstrap, inp, out: run_streamframe(bootstrap, inp.topic, out),
}

check = filter_assign.check
