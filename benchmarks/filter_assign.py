"""Workload 1: filter + assign + write. Keep trades with qty > 100, add notional = qty * price, write them
(same key, same record timestamp) to another topic, reading the input from the beginning to its end offsets.

Contestants over the same input topic, each into its own fresh output topic:
  * `run_hand_written`: the confluent-kafka loop a good engineer writes by hand (batch consume, orjson per
    record, produce with key and timestamp, flush), with streamframe's consumer and producer settings;
  * `run_streamframe`: `s[s.qty > 100].assign(notional=s.qty * s.price).to_topic(out, until="end")`;
  * Kafka Streams (Java, `kstreams_bench/.../FilterAssign.java`): the same topology with Jackson, on one
    and on two stream threads (this machine has two cores), with the loop's producer batching;
  * Quix Streams (`quix_apps.py`): `sdf[sdf["qty"] > 100]`, `sdf["notional"] = ...`, `to_topic`.
Each returns the seconds it took, from creating its clients to the last output record being delivered.
"""

from __future__ import annotations

import time

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

import streamframe as sf
import streamframe.kafka.reader
import streamframe.kafka.writer
import streamframe.runtime.query  # noqa: F401 - imported before timing, as the loop's modules are
from benchmarks import common, kstreams, quix
from benchmarks.common import consumer_config, producer_config

TITLE = "filter+assign+write"
RECORDS = 1_000_000
BATCH = 10_000
QTY_ABOVE = 100


def prepare(bootstrap: str, records: int, partitions: int) -> common.InputInfo:
    topic = common.create_topic(bootstrap, common.unique_topic("bench-trades"), partitions)
    return common.produce_trades(bootstrap, topic, records, partitions, keep=lambda df: df["qty"] > QTY_ABOVE)


def run_hand_written(bootstrap: str, topic: str, out: str, decode=None) -> float:
    """`decode`: a record value's bytes to a dict (orjson.loads unless given: workload 4 gives Avro's)."""
    t0 = time.perf_counter()
    failed = []
    consumer = Consumer(consumer_config(bootstrap))
    producer = Producer(producer_config(bootstrap, on_delivery=lambda err, msg: failed.append(err)))
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    end = {}
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            end[p] = high
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in end])
    remaining = set(end)
    consume, produce, poll = consumer.consume, producer.produce, producer.poll
    loads, dumps = decode or orjson.loads, orjson.dumps
    while remaining:
        for m in consume(num_messages=BATCH, timeout=0.1):
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"consuming {topic}: {m.error()}")
            p, offset = m.partition(), m.offset()
            last = end[p] - 1
            if offset >= last:
                if offset > last:  # produced after we started: not part of this run
                    continue
                remaining.discard(p)
            rec = loads(m.value())
            if rec["qty"] > QTY_ABOVE:
                rec["notional"] = rec["qty"] * rec["price"]
                value, key, ts = dumps(rec), m.key(), m.timestamp()[1]
                try:
                    produce(out, value, key, timestamp=ts)
                except BufferError:
                    poll(0.1)
                    produce(out, value, key, timestamp=ts)
        poll(0)
    if producer.flush(120) or failed:
        raise RuntimeError(f"hand-written loop: records to {out} not delivered ({failed[:1]})")
    consumer.close()
    return time.perf_counter() - t0


def run_streamframe(bootstrap: str, topic: str, out: str) -> float:
    t0 = time.perf_counter()
    sf.connect(bootstrap)
    s = sf.stream(topic, value="json")
    query = s[s.qty > QTY_ABOVE].assign(notional=s.qty * s.price).to_topic(out, until="end")
    elapsed = time.perf_counter() - t0
    m = query.metrics
    if m["errors"] or m["status"] != "finished":
        raise RuntimeError(f"streamframe run did not finish cleanly: {m}")
    return elapsed


def _kept(inp: common.InputInfo) -> int:
    """What a peer stops on: the records the filter keeps (it would wait forever for a first one)."""
    if not inp.kept:
        raise SystemExit(
            f"no input record has qty > {QTY_ABOVE}: nothing for Kafka Streams or Quix to stop on"
        )
    return inp.kept


def run_quix_streams(bootstrap: str, inp: common.InputInfo, out: str) -> common.Run:
    return quix.run(
        "filter_assign",
        bootstrap=bootstrap,
        input=inp.topic,
        output=out,
        expected=_kept(inp),
        qty_above=QTY_ABOVE,
    )


def run_kafka_streams(bootstrap: str, inp: common.InputInfo, out: str, threads: int) -> common.Run:
    return kstreams.run(
        "FilterAssign",
        bootstrap,
        input=inp.topic,
        output=out,
        expected=_kept(inp),
        qty_above=QTY_ABOVE,
        threads=threads,
    )


CONTESTANTS = {
    "hand-written loop": lambda bootstrap, inp, out: run_hand_written(bootstrap, inp.topic, out),
    "streamframe": lambda bootstrap, inp, out: run_streamframe(bootstrap, inp.topic, out),
    "kafka streams": lambda bootstrap, inp, out: run_kafka_streams(bootstrap, inp, out, threads=1),
    "kafka streams 2 threads": lambda bootstrap, inp, out: run_kafka_streams(bootstrap, inp, out, threads=2),
    "quix streams": run_quix_streams,
}


def check(bootstrap: str, outputs: dict[str, str], inp, runs) -> dict:
    """Every output read back and compared with the first's (the loop's), record by record
    (common.compare)."""
    (base, topic), *others = outputs.items()
    expected = common.read_topic(bootstrap, topic)
    for name, other in others:
        common.compare(base, expected, name, common.read_topic(bootstrap, other))
    return {
        "output_records": expected.records,
        "summary": f"{len(outputs)} of {len(outputs)} wrote {expected.records:,} records, every one equal "
        f"(key, timestamp, fields); sum of notional {expected.notional_sum:,.2f}",
    }
