"""What every benchmark needs: a broker, fresh topics, input data, timing, and reading results back.

Benchmarks run against a real Apache Kafka broker: the one named by `--bootstrap`, else an isolated local
broker started in a temporary STREAMFRAME_HOME (so no one else's broker is disturbed) and stopped at the end.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streamframe.kafka.config import CONSUMER_DEFAULTS, PRODUCER_DEFAULTS

# librdkafka's log lines (a coordinator still loading, a purged admin event) go to Python logging, as
# streamframe's own clients' do, instead of onto the results on stderr.
CLIENT_LOG = logging.getLogger("benchmarks.kafka")


@contextlib.contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    """The bootstrap address to use: the given one, else an isolated local broker for the duration."""
    if bootstrap:
        yield bootstrap
        return
    from streamframe import local

    home = tempfile.mkdtemp(prefix="streamframe-bench-")
    previous = os.environ.get("STREAMFRAME_HOME")
    os.environ["STREAMFRAME_HOME"] = home
    try:
        yield local.start().bootstrap
    finally:
        admin.cache_clear()
        try:
            local.stop()
        finally:
            if previous is None:
                os.environ.pop("STREAMFRAME_HOME", None)
            else:
                os.environ["STREAMFRAME_HOME"] = previous
            shutil.rmtree(home, ignore_errors=True)


def consumer_config(bootstrap: str, **extra) -> dict:
    """The consumer settings streamframe uses, so every contestant reads the same way."""
    return {"bootstrap.servers": bootstrap, **CONSUMER_DEFAULTS, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "logger": CLIENT_LOG, **extra}


def producer_config(bootstrap: str, **extra) -> dict:
    """The producer settings streamframe uses (idempotent, linger, batch size, partitioner)."""
    return {"bootstrap.servers": bootstrap, **PRODUCER_DEFAULTS, "logger": CLIENT_LOG, **extra}


@functools.cache
def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "logger": CLIENT_LOG})


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap: str, name: str, partitions: int) -> str:
    futures = admin(bootstrap).create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)]
    )
    futures[name].result(timeout=30)
    deadline = time.monotonic() + 30  # metadata reaches every client a moment after creation
    while len(admin(bootstrap).list_topics(name, timeout=10).topics[name].partitions) != partitions:
        if time.monotonic() > deadline:
            raise RuntimeError(f"topic {name} did not appear with {partitions} partitions")
        time.sleep(0.1)
    return name


def delete_topics(bootstrap: str, names: list[str]) -> None:
    if not names:
        return
    for future in admin(bootstrap).delete_topics(list(names), operation_timeout=30).values():
        with contextlib.suppress(Exception):
            future.result(timeout=30)


@dataclass
class Run:
    """A contestant's time, with what else it reports (shown by run.py, read by a workload's check)."""

    seconds: float
    notes: dict


def run_child(cmd: list[str], what: str, timeout: float) -> dict[str, float]:
    """Run a peer's app as a child process to completion; the `name=number` pairs it printed (its
    `elapsed_s` among them). Raises with the tail of its output if it failed or ran past `timeout`."""
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{what} did not finish within {timeout:.0f} s") from exc
    found = {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", proc.stdout)}
    if proc.returncode != 0 or "elapsed_s" not in found:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return found


@dataclass
class InputInfo:
    topic: str
    records: int
    partitions: int
    value_bytes: int
    seconds: float
    kept: int | None = None  # records the workload's filter keeps (a peer with no bounded run stops there)

    @property
    def bytes_per_record(self) -> float:
        return self.value_bytes / max(self.records, 1)

    @property
    def topics(self) -> list[str]:
        return [self.topic]

    def describe(self) -> str:
        return (
            f"{self.records:,} JSON records of {self.bytes_per_record:.0f} B in {self.partitions} partitions"
        )


def produce_trades(
    bootstrap: str, topic: str, records: int, partitions: int, seed: int = 42, chunk: int = 100_000, keep=None
) -> InputInfo:
    """`records` generated trades as JSON (~100 bytes each), keyed by symbol, record time = `ts`,
    spread round-robin over the partitions so every partition holds the same number of records.
    `keep`: a function of a chunk's DataFrame giving a boolean mask; the records it keeps are counted."""
    from streamframe.connectors.generator import trades
    from streamframe.serde.json_encode import encode_json_rows

    start_ms = int(time.time() * 1000) - records  # rate 1000/s: the last record is about "now"
    total_bytes, kept, t0 = 0, 0, time.perf_counter()
    for first in range(0, records, chunk):
        n = min(chunk, records - first)
        df = trades(n, seed=seed + first, start_ms=start_ms + first, first_id=first)
        kept += int(keep(df).sum()) if keep is not None else 0
        values = encode_json_rows(df)
        keys = df["symbol"].tolist()
        stamps = df["ts"].tolist()
        parts = ((np.arange(first, first + n)) % partitions).tolist()
        total_bytes += produce_records(bootstrap, topic, values, keys, stamps, parts)
    return InputInfo(
        topic, records, partitions, total_bytes, time.perf_counter() - t0, kept if keep is not None else None
    )


def produce_records(
    bootstrap: str, topic: str, values: list, keys: list, timestamps: list, partitions: list | None = None
) -> int:
    """Produce prepared records (one produce() each, streamframe's producer settings); returns bytes.
    `partitions=None` lets the producer's partitioner (Java's murmur2) place each record by its key."""
    producer = Producer(producer_config(bootstrap))
    produce = producer.produce
    parts = partitions if partitions is not None else [-1] * len(values)
    for value, key, ts, p in zip(values, keys, timestamps, parts):
        while True:
            try:
                produce(topic, value, key, partition=p, timestamp=ts)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120):
        raise RuntimeError(f"input records to {topic} were not all delivered")
    return sum(map(len, values))


def watermarks(consumer: Consumer, topic: str) -> dict[int, int]:
    """{partition: end offset} of every non-empty partition of `topic`. Ask before consuming anything:
    while the consumer fetches, each request waits behind a fetch (fetch.wait.max.ms) per partition."""
    end = {}
    for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            end[p] = high
    return end


def assign_from_beginning(
    consumer: Consumer, topic: str, end: dict[int, int] | None = None
) -> dict[int, int]:
    """Assign every non-empty partition of `topic` from its beginning; returns {partition: end offset}
    (what a hand-written bounded loop does first)."""
    end = watermarks(consumer, topic) if end is None else end
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in end])
    return end


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer(consumer_config(bootstrap))
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The offsets consumer group `group` has committed on `topic` (-1001: none)."""
    consumer = Consumer(consumer_config(bootstrap, **{"group.id": group}))
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        tps = consumer.committed([TopicPartition(topic, p) for p in parts], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        consumer.close()


def topics_with_prefix(bootstrap: str, prefix: str) -> list[str]:
    return [t for t in admin(bootstrap).list_topics(timeout=10).topics if t.startswith(prefix)]


@dataclass
class Output:
    """What a contestant wrote, reduced to what the contestants must agree on."""

    records: int
    qty_sum: int
    notional_sum: float
    by_id: dict  # trade_id -> (key, timestamp, value dict)


def messages(bootstrap: str, topic: str) -> Iterator:
    """Every message of `topic`, from the beginning to its end offsets (as they were when called)."""
    consumer = Consumer(consumer_config(bootstrap))
    try:
        md = consumer.list_topics(topic, timeout=10).topics[topic]
        tps, end = [], {}
        for p in md.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                end[p] = high
                tps.append(TopicPartition(topic, p, OFFSET_BEGINNING))
        consumer.assign(tps)
        remaining = set(end)
        deadline = time.monotonic() + 120
        while remaining:
            if time.monotonic() > deadline:
                raise RuntimeError(f"reading {topic} timed out; partitions left: {sorted(remaining)}")
            for m in consumer.consume(num_messages=10_000, timeout=0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise RuntimeError(f"reading {topic}: {m.error()}")
                p = m.partition()
                if m.offset() >= end[p]:
                    continue
                if m.offset() == end[p] - 1:
                    remaining.discard(p)
                yield m
    finally:
        consumer.close()


def count(bootstrap: str, topic: str) -> int:
    """Records in `topic`, by reading them all (which also warms the broker and its page cache)."""
    return sum(1 for _ in messages(bootstrap, topic))


def read_topic(bootstrap: str, topic: str) -> Output:
    """Every output record of `topic`, reduced to what the contestants must agree on."""
    by_id, qty_sum, notional_sum, n = {}, 0, 0.0, 0
    for m in messages(bootstrap, topic):
        rec = orjson.loads(m.value())
        qty_sum += rec["qty"]
        notional_sum += rec["notional"]
        by_id[rec["trade_id"]] = (m.key(), m.timestamp()[1], rec)
        n += 1
    return Output(n, qty_sum, notional_sum, by_id)


def compare(name_a: str, a: Output, name_b: str, b: Output) -> None:
    """Raise if the two outputs differ in count, sums, or any record's key, timestamp or fields."""
    problems = []
    if a.records != b.records:
        problems.append(f"record count: {name_a} wrote {a.records:,}, {name_b} wrote {b.records:,}")
    if len(a.by_id) != a.records or len(b.by_id) != b.records:
        problems.append(
            f"duplicate trade ids: {name_a} {a.records - len(a.by_id)}, {name_b} {b.records - len(b.by_id)}"
        )
    if a.qty_sum != b.qty_sum:
        problems.append(f"sum of qty: {name_a} {a.qty_sum}, {name_b} {b.qty_sum}")
    if not np.isclose(a.notional_sum, b.notional_sum, rtol=1e-12, atol=0):
        problems.append(f"sum of notional: {name_a} {a.notional_sum!r}, {name_b} {b.notional_sum!r}")
    differing = [i for i in a.by_id if a.by_id[i] != b.by_id.get(i)]
    if differing:
        i = differing[0]
        problems.append(
            f"{len(differing):,} records differ; first, trade_id {i}: "
            f"{name_a} {a.by_id[i]!r} vs {name_b} {b.by_id.get(i)!r}"
        )
    if problems:
        raise SystemExit("OUTPUTS DIFFER — the benchmark is invalid:\n  " + "\n  ".join(problems))
