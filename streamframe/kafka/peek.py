"""Look into a topic without a consumer group: its last records (then the new ones), its partitions'
offsets and its configuration. What `%kafka_tail` and `%kafka_topics describe` show.

This module seeks partitions to chosen offsets and reads topic configs, which the query readers of
streamframe.kafka do not offer; it is the one place outside streamframe/kafka/ that imports
confluent_kafka (a candidate to move there).

    >>> tail = TopicTail(conn, "orders", n=5)          # doctest: +SKIP
    >>> raw = tail.last()                              # RawBatch of the last 5 records, oldest first
    >>> raw = tail.poll(1.0)                           # the records produced since
"""

from __future__ import annotations

import time
import uuid

import pandas as pd
from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import ConfigResource

from streamframe.kafka.reader import to_raw_batches
from streamframe.records import RawBatch

READ_TIMEOUT = 30.0


def _empty(topic: str) -> RawBatch:
    return RawBatch(topic, [], [], [], [], [], [])


def _concat(topic: str, batches: list[RawBatch]) -> RawBatch:
    out = _empty(topic)
    for b in batches:
        for field in ("values", "keys", "timestamps", "partitions", "offsets", "headers"):
            getattr(out, field).extend(getattr(b, field))
    return out


def _order(raw: RawBatch, last: int | None = None) -> RawBatch:
    """Records by (timestamp, partition, offset); only the `last` ones if given."""
    order = sorted(range(len(raw)), key=lambda i: (raw.timestamps[i], raw.partitions[i], raw.offsets[i]))
    if last is not None:
        order = order[max(0, len(order) - last):]
    return raw.rows(order)


class TopicTail:
    """The last `n` records of a topic over all its partitions, then (poll) every new one."""

    def __init__(self, conn, topic: str, n: int):
        self.conn, self.topic, self.n = conn, topic, n
        self.partitions = conn.require_topics([topic], need="read")[topic]
        group = f"{conn.app_id}.tail-{uuid.uuid4().hex[:8]}"
        self._consumer = conn.client(Consumer, conn.consumer_config(group))
        self._ends: dict[int, int] = {}

    def last(self, timeout: float = READ_TIMEOUT) -> RawBatch:
        """The last `n` records, oldest first (by record timestamp, then partition and offset); those
        read within `timeout` seconds when the topic is slow to answer."""
        assign, deadline = [], time.monotonic() + timeout
        for p in range(self.partitions):
            try:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=max(0.1, min(10.0, deadline - time.monotonic())))
            except KafkaException as e:
                raise self.conn.error(e, f"cannot read the offsets of {self.topic}[{p}]") from None
            start = max(low, high - self.n)
            assign.append(TopicPartition(self.topic, p, start if high > start else OFFSET_END))
            if high > start:
                self._ends[p] = high
        self._consumer.assign(assign)
        got = []
        pending = dict(self._ends)
        while pending and time.monotonic() < deadline:
            messages = [m for m in self._consumer.consume(10000, 0.2) if self._good(m)]
            got.extend(messages)
            for m in messages:
                if m.offset() + 1 >= pending.get(m.partition(), 0):
                    pending.pop(m.partition(), None)
            if pending:  # gaps (transaction markers, compaction): the position says when a partition is done
                for tp in self._consumer.position([TopicPartition(self.topic, p) for p in pending]):
                    if tp.offset >= pending[tp.partition]:
                        pending.pop(tp.partition, None)
        raw = to_raw_batches(got, self.topic)[self.topic] if got else _empty(self.topic)
        return _order(raw, self.n)

    def poll(self, timeout: float) -> RawBatch:
        """Records that arrived since the last call (waits up to `timeout` seconds for the first)."""
        messages = [m for m in self._consumer.consume(10000, timeout) if self._good(m)]
        return _order(to_raw_batches(messages, self.topic)[self.topic]) if messages else _empty(self.topic)

    def _good(self, m) -> bool:
        err = m.error()
        if err is None:
            return True
        if err.code() == KafkaError._PARTITION_EOF:
            return False
        raise self.conn.error(err, f"reading {self.topic}")

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def sample(conn, topic: str, n: int, timeout: float) -> RawBatch:
    """Up to `n` of a topic's last records (over all its partitions), read within about `timeout`
    seconds: what a frame shows as its columns before it runs. Raises as TopicTail does (no such topic)."""
    tail = TopicTail(conn, topic, n)
    try:
        return tail.last(timeout)
    finally:
        tail.close()


def describe(conn, topic: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(partitions: partition, leader, replicas, isr, low, high, records; configs: name, value, source)."""
    conn.require_topics([topic], need="describe")
    meta = conn.metadata().topics[topic]
    consumer = conn.client(Consumer, conn.consumer_config(f"{conn.app_id}.describe-{uuid.uuid4().hex[:8]}"))
    rows = []
    try:
        for p, info in sorted(meta.partitions.items()):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            rows.append({"partition": p, "leader": info.leader, "replicas": list(info.replicas),
                         "isr": list(info.isrs), "low": low, "high": high, "records": high - low})
    except KafkaException as e:
        raise conn.error(e, f"cannot read the offsets of {topic}") from None
    finally:
        consumer.close()
    try:
        resource = ConfigResource("topic", topic)
        entries = conn.admin().describe_configs([resource], request_timeout=10)[resource].result(15)
    except KafkaException as e:
        raise conn.error(e, f"cannot read the configuration of {topic}") from None
    configs = [{"name": name, "value": "********" if e.is_sensitive else e.value,
                "source": str(e.source).rsplit(".", 1)[-1].lower(), "default": bool(e.is_default)}
               for name, e in sorted(entries.items())]
    return pd.DataFrame(rows), pd.DataFrame(configs, columns=["name", "value", "source", "default"])


def delete_topics(conn, names: list[str]) -> None:
    """Delete `names` (which must exist), one clear error if the broker refuses."""
    conn.require_topics(names, need="delete")
    try:
        conn.delete_topics(names)
    except KafkaException as e:
        raise conn.error(e, f"cannot delete {', '.join(names)}") from None
