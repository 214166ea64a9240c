"""Consume records in batches and hand them over as columns (RawBatch), one per topic.

Two modes: live (subscribe with the query's consumer group, commit after outputs are delivered) and
bounded (assign every partition from the beginning and stop at the end offsets seen when opened).
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from streamframe.errors import BrokerUnreachableError, StreamframeError
from streamframe.kafka.connection import Connection, code
from streamframe.records import RawBatch, take

_TRANSIENT = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION, KafkaError._TIMED_OUT}
# A commit that fails with one of these found no broker or coordinator: try again once one answers.
_NO_COORDINATOR = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
                   KafkaError._WAIT_COORD, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR,
                   KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.REQUEST_TIMED_OUT}
_FATAL = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.TOPIC_AUTHORIZATION_FAILED,
          KafkaError._UNKNOWN_TOPIC, KafkaError.GROUP_AUTHORIZATION_FAILED}


def to_raw_batches(messages: list, topic: str | None = None) -> dict[str, RawBatch]:
    """Split consumed messages by topic into column lists, keeping each partition's offset order.
    `topic`: the one topic every message is known to come from (a reader of one topic)."""
    if topic is not None:
        return {topic: _columns(topic, messages)}
    topics = set(map(Message.topic, messages))
    if len(topics) == 1:
        return {topics.pop(): _columns(messages[0].topic(), messages)}
    by_topic: dict[str, list] = {}
    for m in messages:
        by_topic.setdefault(m.topic(), []).append(m)
    return {t: _columns(t, ms) for t, ms in by_topic.items()}


def _columns(topic: str, ms: list) -> RawBatch:
    return MessageBatch(topic, ms)


_FIELDS = {"values": Message.value, "keys": Message.key, "partitions": Message.partition,
           "offsets": Message.offset, "headers": Message.headers}


class MessageBatch(RawBatch):
    """A RawBatch over consumed messages whose fields are built on first use, each in one map() over
    the C methods (no Python frame per record). A source that leaves metadata columns out
    (plan/metadata.py) reads them only for the rows that reach the output, through `rows`."""

    def __init__(self, topic: str, messages: list):  # not RawBatch.__init__: the fields are built lazily
        self.topic = topic
        self._messages = messages

    def __len__(self) -> int:
        return len(self._messages)

    def __getattr__(self, field: str):  # only called for a field not built yet
        if field == "timestamps":
            column = [ts for _, ts in map(Message.timestamp, self._messages)]
        elif field in _FIELDS:
            column = list(map(_FIELDS[field], self._messages))
        else:
            raise AttributeError(field)
        setattr(self, field, column)
        return column

    def rows(self, positions) -> RawBatch:
        return MessageBatch(self.topic, take(self._messages, positions))

    def materialized(self) -> RawBatch:
        return RawBatch(self.topic, self.values, self.keys, self.timestamps, self.partitions, self.offsets,
                        self.headers)


class KafkaReader:
    def __init__(self, conn: Connection, topics: list[str], group_id: str | None = None,
                 bounded: bool = False, assign: bool = False):
        self.conn = conn
        self.topics = list(topics)
        self.bounded = bounded
        self.assign = assign or bounded  # every partition from the beginning, no group membership
        self.group_id = group_id or f"{conn.app_id}.run-{uuid.uuid4().hex[:8]}"
        self.on_revoke = None  # before partitions go: deliver, commit; returns False if it could not
        self._held: dict[tuple[str, int], int] = {}  # positions of partitions revoked without a commit
        self.start_offsets: dict[tuple[str, int], int] = {}  # from durable state: where to resume
        self.end: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}  # live: where an unfetched partition resumes
        self._low: dict[tuple[str, int], int] = {}  # bounded: where each partition's records begin
        self._consumer: Consumer | None = None
        self._lag_at = 0.0
        self._lag = 0

    def open(self) -> None:
        partitions = self.conn.require_topics(self.topics, need="read")
        self._consumer = self.conn.client(Consumer, self.conn.consumer_config(self.group_id))
        if self.assign:
            tps = [TopicPartition(t, p, OFFSET_BEGINNING) for t, n in partitions.items() for p in range(n)]
            for tp in tps:
                low, high = self._watermarks(tp)
                if high > low:
                    self.end[(tp.topic, tp.partition)] = high
                    self._low[(tp.topic, tp.partition)] = low
            self._consumer.assign([tp for tp in tps if (tp.topic, tp.partition) in self.end])
        else:
            self._consumer.subscribe(self.topics, on_assign=self._assigned, on_revoke=self._revoked)

    def _watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        # A topic created a moment ago may not have its leader known to every cache yet: retry briefly.
        deadline = time.monotonic() + 10
        while True:
            try:
                return self._consumer.get_watermark_offsets(tp, timeout=10)
            except KafkaException as e:
                if code(e) not in _TRANSIENT or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _assigned(self, consumer, partitions) -> None:
        # Resume where the durable state's last checkpoint ended, not where the group committed; a
        # partition taken away while nothing could be committed (the broker was down), where this
        # process had read it to: its state already holds those records.
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if key in self._held:
                tp.offset = self._held.pop(key)
            elif key in self.start_offsets:
                tp.offset = self.start_offsets.pop(key)  # once: a later assignment resumes from the commit
        consumer.assign(partitions)

    def _revoked(self, consumer, partitions) -> None:
        positions = self.positions()
        if self.on_revoke is not None and self.on_revoke() is False:
            self._held.update({(tp.topic, tp.partition): positions[(tp.topic, tp.partition)]
                               for tp in partitions if (tp.topic, tp.partition) in positions})

    def poll(self, max_records: int, timeout: float) -> dict[str, RawBatch]:
        if self.bounded:  # ask for no more than is left, so the last batch does not wait out the timeout
            max_records = max(1, min(max_records, self.left()))
        messages = self._consumer.consume(num_messages=max_records, timeout=timeout)
        if not messages:
            return {}
        if any(map(Message.error, messages)):  # a KafkaError is truthy, no error is None
            messages = self._drop_errors(messages)
        if self.bounded and messages:
            messages = self._clip_to_end(messages)
        if not messages:
            return {}
        return to_raw_batches(messages, self.topics[0] if len(self.topics) == 1 else None)

    def _drop_errors(self, messages: list) -> list:
        good = []
        for m in messages:
            err = m.error()
            if err is None:
                good.append(m)
            elif err.code() == KafkaError._PARTITION_EOF:
                continue
            elif err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                raise self.conn.not_authorized("topic", m.topic() or ", ".join(self.topics), "read")
            elif err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                raise self.conn.not_authorized("group", self.group_id, "read")
            elif err.code() in _FATAL or err.fatal():
                raise self.conn.error(err, f"reading {m.topic()}")
            else:
                self.conn._on_error(err)
        return good

    def _clip_to_end(self, messages: list) -> list:
        # Records produced after the bounded run started are not part of it.
        positions = self._consumer.position(self._consumer.assignment())
        if all(tp.offset <= self.end.get((tp.topic, tp.partition), 0) for tp in positions if tp.offset >= 0):
            return messages
        return [m for m in messages if m.offset() < self.end[(m.topic(), m.partition())]]

    def left(self) -> int:
        """Bounded mode: records not yet read up to the end offsets (too many where offsets have gaps,
        as in compacted or transactional topics: then a batch waits for the timeout, as it always did)."""
        left = 0
        for tp in self._consumer.position([TopicPartition(t, p) for t, p in self.end]):
            key = (tp.topic, tp.partition)
            left += max(0, self.end[key] - (tp.offset if tp.offset >= 0 else self._low[key]))
        return left

    def at_end(self) -> bool:
        """Bounded mode: every partition has been read up to its end offset."""
        positions = self._consumer.position([TopicPartition(t, p) for t, p in self.end])
        return all(tp.offset >= self.end[(tp.topic, tp.partition)] for tp in positions)

    def positions(self) -> dict[tuple[str, int], int]:
        """The next offset to read of every assigned partition (what a checkpoint covers)."""
        if self._consumer is None:
            return {}
        assigned = self._consumer.assignment()
        return ({(tp.topic, tp.partition): tp.offset for tp in self._consumer.position(assigned)
                 if tp.offset >= 0}
                if assigned else {})

    def pending_partitions(self) -> set[tuple[str, int]]:
        """Partitions known to hold records not read yet: bounded, those short of their end offsets;
        live, those behind their high watermark — what a join must wait for. A partition not fetched
        yet counts from where the group (or durable state) resumes it."""
        if self._consumer is None:
            return set()
        if self.assign:
            return set(self.end) - self.finished_partitions()
        assigned = self._consumer.assignment()
        pending = set()
        for tp in self._consumer.position(assigned) if assigned else []:
            key = (tp.topic, tp.partition)
            try:
                low, high = self._consumer.get_watermark_offsets(tp, cached=True)
                if high < 0:  # not fetched yet: ask the broker
                    low, high = self._consumer.get_watermark_offsets(tp, timeout=5)
            except KafkaException:
                continue
            offset = tp.offset if tp.offset >= 0 else self._resume_offset(tp, low)
            if offset < high:
                pending.add(key)
        return pending

    def _resume_offset(self, tp: TopicPartition, low: int) -> int:
        key = (tp.topic, tp.partition)
        if key in self.start_offsets:
            return self.start_offsets[key]
        if key not in self._committed:
            try:
                [got] = self._consumer.committed([TopicPartition(tp.topic, tp.partition)], timeout=5)
                self._committed[key] = got.offset
            except KafkaException:
                return low
        committed = self._committed[key]
        return committed if committed >= 0 else low

    def finished_partitions(self) -> set[tuple[str, int]]:
        """Bounded: the partitions read up to their end offsets."""
        positions = self._consumer.position([TopicPartition(t, p) for t, p in self.end])
        return {(tp.topic, tp.partition) for tp in positions
                if tp.offset >= self.end[(tp.topic, tp.partition)]}

    def commit(self, offsets: dict | None = None) -> None:
        """Commit the group's offsets: `offsets` {(topic, partition): next} where given (what has been
        processed), else the consumer's positions."""
        tps = self._to_commit(offsets)
        if tps:
            try:
                self._consumer.commit(offsets=tps, asynchronous=False)
            except KafkaException as e:
                if code(e) in _NO_COORDINATOR:
                    raise BrokerUnreachableError(f"cannot commit offsets of group {self.group_id!r} at "
                                                 f"{self.conn.bootstrap}: {self.conn.scrub(e)}") from None
                if code(e) != KafkaError._NO_OFFSET:
                    raise

    def _to_commit(self, offsets: dict | None) -> list[TopicPartition]:
        if self.assign or self._consumer is None:
            return []
        assigned = self._consumer.assignment()
        if not assigned:
            return []
        if offsets is not None:
            return [TopicPartition(tp.topic, tp.partition, offsets[(tp.topic, tp.partition)])
                    for tp in assigned if (tp.topic, tp.partition) in offsets]
        return [tp for tp in self._consumer.position(assigned) if tp.offset >= 0]

    def transaction_offsets(self, offsets: dict) -> tuple[list[TopicPartition], object] | None:
        """Exactly-once: what commit(offsets) would commit, with the group's metadata, for a producer's
        transaction to commit instead (None: a reader with no group)."""
        if self.assign or self._consumer is None:
            return None
        return self._to_commit(offsets), self._consumer.consumer_group_metadata()

    def rewind(self) -> None:
        """Exactly-once, after an aborted transaction: back to the group's committed offsets (where none
        was committed, to where the reader started)."""
        if self.assign or self._consumer is None:
            raise StreamframeError("a bounded run cannot rewind an aborted transaction; run it again")
        assigned = self._consumer.assignment()
        for tp in self._consumer.committed(assigned, timeout=10) if assigned else []:
            key = (tp.topic, tp.partition)
            offset = tp.offset if tp.offset >= 0 else self.start_offsets.get(key, OFFSET_BEGINNING)
            try:
                self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException:  # not fetched yet: it starts from the committed offset anyway
                pass
        self._committed.clear()

    def lag(self) -> int:
        """Records not yet read, summed over the assigned partitions (from cached watermarks)."""
        now = time.monotonic()
        if now - self._lag_at < 1.0 or self._consumer is None:
            return self._lag
        self._lag_at = now
        total = 0
        assigned = self._consumer.assignment()
        for tp in self._consumer.position(assigned) if assigned else []:
            try:
                _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            if high >= 0 and tp.offset >= 0:
                total += max(0, high - tp.offset)
        self._lag = total
        return total

    def close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close()
            finally:
                self._consumer = None


def read_topic(conn: Connection, topic: str, timeout: float = 60.0) -> list[tuple[bytes, bytes | None]]:
    """Every (key, value) of a topic, in offset order per partition (to replay a changelog)."""
    reader = KafkaReader(conn, [topic], bounded=True)
    reader.open()
    out: list = []
    deadline = time.monotonic() + timeout
    try:
        while not reader.at_end():
            for raw in reader.poll(10000, 0.5).values():
                out.extend(zip(raw.keys, raw.values))
            if time.monotonic() > deadline:
                raise StreamframeError(f"reading changelog {topic!r} took longer than {timeout:g} s")
    finally:
        reader.close()
    return out


def group_offsets(conn: Connection, group_id: str, partitions: list[tuple[str, int]],
                  timeout: float = 10.0) -> dict[tuple[str, int], int]:
    """The offsets `group_id` has committed for `partitions` (those it has committed nothing for left
    out), read without joining the group."""
    if not partitions:
        return {}
    consumer = Consumer(conn.consumer_config(group_id))
    try:
        committed = consumer.committed([TopicPartition(t, p) for t, p in partitions], timeout=timeout)
    except KafkaException as e:
        raise conn.error(e, f"reading group {group_id!r}'s committed offsets") from None
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): tp.offset for tp in committed if tp.offset >= 0}
