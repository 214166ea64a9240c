"""Write frames to topics: encode the batch in bulk, hand librdkafka the whole batch in one call."""

from __future__ import annotations

import time
from itertools import repeat

import numpy as np
import pandas as pd
from confluent_kafka import Producer

from streamframe.errors import DeliveryError
from streamframe.kafka.connection import Connection
from streamframe.records import META, RECORD_BYTES, take, tombstones
from streamframe.serde import Format, encode_keys
from streamframe.serde.json_encode import append_json_fields
from streamframe.time.extract import datetime_to_ms

QUEUE_WAIT = 60  # seconds a full producer queue is waited on before a write fails
# A record batch of one record holds at most this much besides its key and value (61 bytes of batch
# header, at most 36 of the record's lengths, attributes and deltas): what max.message.bytes also counts.
RECORD_OVERHEAD = 100
PRODUCER_MAX_BYTES = 1000000  # librdkafka's default message.max.bytes and batch.size


def producer_limits(conn: Connection, outputs, inputs) -> dict:
    """Producer settings for a query writing to topics `outputs` (existing ones) and dead-lettering
    records of `inputs`: batches no larger than the smallest output topic accepts (else the broker
    refuses a whole batch of small records for the size of the batch), and records as large as the
    largest input topic accepts (a dead letter carries its input record whole)."""
    settings = {}
    existing = conn.describe(list(outputs), need="write")
    smallest = min((conn.max_message_bytes(t) for t in existing), default=PRODUCER_MAX_BYTES)
    if smallest < PRODUCER_MAX_BYTES:
        settings["batch.size"] = max(smallest, 1000)
    largest = max((conn.max_message_bytes(t) for t in inputs), default=0)
    if largest > PRODUCER_MAX_BYTES - RECORD_OVERHEAD:
        settings["message.max.bytes"] = largest + RECORD_OVERHEAD
    return settings


class Output:
    """One producer per query, shared by its topic writers and its dead-letter writer."""

    def __init__(self, conn: Connection, extra: dict | None = None):
        self.conn = conn
        self.failures: list[str] = []
        self.max_bytes = int((extra or {}).get("message.max.bytes", PRODUCER_MAX_BYTES))
        conf = conn.producer_config({"on_delivery": self._delivered, **(extra or {})})
        self.producer = conn.client(Producer, conf)

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.failures.append(str(self.conn.error(err, msg.topic())))

    def produce_many(self, topic: str, values: list, keys: list, timestamps: list, partitions=None,
                     headers=None) -> None:
        """Queue records one call each: librdkafka's batch call cannot carry timestamps, and per-record
        produce() queues faster than building its message dicts. A full queue is waited on for at most
        QUEUE_WAIT seconds, then DeliveryError. Partitions default to -1 (the partitioner's choice)."""
        produce = self.producer.produce
        rows = zip(values, keys, repeat(-1) if partitions is None else partitions, timestamps,
                   repeat(None) if headers is None else headers)
        for value, key, part, ts, hs in rows:
            try:
                # All positional (partition, callback, on_delivery, timestamp, headers): a keyword argument
                # makes every call build a dict, which cost 40% of produce() (benchmarks/, workload 1).
                # None is the producer's own on_delivery, as when it is left out.
                produce(topic, value, key, part, None, None, ts, hs)
            except BufferError:
                self._produce_when_room(topic, value, key, part, ts, hs)

    def produce(self, topic: str, value, key=None, timestamp=None, headers=None, partition: int = -1) -> None:
        """One record, waiting for room in the queue like produce_many."""
        self.produce_many(topic, [value], [key], [timestamp or 0], [partition], [headers])

    def _produce_when_room(self, topic, value, key, partition, ts, headers) -> None:
        deadline = time.monotonic() + QUEUE_WAIT
        while True:
            self.producer.poll(0.05)
            try:
                self.producer.produce(topic, value, key, partition, None, None, ts, headers)
                return
            except BufferError:
                if time.monotonic() > deadline:
                    raise DeliveryError(f"producer queue to {topic!r} stayed full for {QUEUE_WAIT} s; "
                                        "is the broker reachable?") from None

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every record is delivered; raise (so nothing is committed) if one was not: a
        BrokerUnreachableError at once when the broker goes away meanwhile (the records stay queued and
        go when it is back, within message.timeout.ms)."""
        deadline = time.monotonic() + timeout
        remaining = self.producer.flush(0)
        while remaining and time.monotonic() < deadline:
            if self.conn.unreachable:
                raise self.conn.unreachable_error(f"{remaining} records wait to be delivered")
            remaining = self.producer.flush(min(0.5, max(deadline - time.monotonic(), 0)))
        if remaining:
            raise DeliveryError(f"{remaining} records not delivered within {timeout:g} s; "
                                "nothing was committed")
        if self.failures:
            first, count = self.failures[0], len(self.failures)
            self.failures.clear()
            raise DeliveryError(f"{count} records could not be delivered ({first}); nothing was committed")

    def poll(self) -> None:
        self.producer.poll(0)

    def close(self) -> None:
        """At the query's end, after its last checkpoint (an at-least-once producer has nothing left)."""


class TopicWriter:
    """Frames to one topic: value columns encoded by `fmt`, key from `_key` or a column, event time."""

    def __init__(self, output: Output, topic: str, fmt: Format, key_format: str = "text",
                 key: str | None = None, max_bytes: int | None = None):
        self.output, self.topic, self.fmt, self.key_format, self.key = output, topic, fmt, key_format, key
        # The largest key + value the topic and the producer take; a larger one is not produced but
        # `rejected` (row label → reason) for the query to route by on_error, before anything commits.
        limit = min(max_bytes or PRODUCER_MAX_BYTES, output.max_bytes)
        self.room = limit - RECORD_OVERHEAD
        self.limit_reason = (f"max.message.bytes {max_bytes} of topic {topic!r}"
                             if max_bytes is not None and max_bytes <= output.max_bytes
                             else f"message.max.bytes {output.max_bytes} of the producer")
        self.rejected: dict = {}

    def write(self, frame: pd.DataFrame) -> int:
        if not len(frame):
            return 0
        fields = frame[[c for c in frame.columns if c not in META and c != RECORD_BYTES]]
        if RECORD_BYTES in frame.columns:  # records as consumed, the new fields appended (plan/values.py)
            values = append_json_fields(frame[RECORD_BYTES].tolist(), fields)
        else:
            values = self.fmt.encode(fields)
        if "_tombstone" in frame:
            values = [None if t else v for v, t in zip(values, tombstones(frame).tolist())]
        key_col = frame[self.key] if self.key else frame.get("_key")
        keys = encode_keys(key_col, self.key_format) if key_col is not None else [None] * len(frame)
        if "_timestamp" in frame.columns:
            stamps = datetime_to_ms(frame["_timestamp"]).tolist()
        else:
            stamps = np.zeros(len(frame), dtype="int64").tolist()
        over = self._oversize(values, keys)
        if over:
            for i in over:
                size = _size(values[i]) + _size(keys[i])
                self.rejected[frame.index[i]] = (f"output record of {size} bytes is larger than the "
                                                 f"{self.limit_reason} allows")
            keep = sorted(set(range(len(values))) - set(over))
            values, keys, stamps = take(values, keep), take(keys, keep), take(stamps, keep)
        self.output.produce_many(self.topic, values, keys, stamps)
        return len(values)

    def _oversize(self, values: list, keys: list) -> list[int]:
        """Positions of the records too large to produce (a pass over the lengths in C when none is: a
        str key's UTF-8 is at most 4 bytes a character)."""
        room = self.room
        if _longest(values) + 4 * _longest(keys) <= room:
            return []
        return [i for i, (v, k) in enumerate(zip(values, keys)) if _size(v) + _size(k) > room]


def _size(b) -> int:
    if b is None:
        return 0
    return len(b) if isinstance(b, bytes) else len(str(b).encode())


def _longest(items: list) -> int:
    try:
        return max(map(len, items), default=0)
    except TypeError:  # a None (tombstone, null key) among them
        return max(map(_size, items), default=0)
