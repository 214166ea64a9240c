"""Where a query's output rows and its dead letters go: memory (run, TestDriver) or Kafka topics."""

from __future__ import annotations

import collections
import threading

import pandas as pd

from streamframe.records import KEY_BYTES, META, RECORD_BYTES, VERBATIM_KEYS, tombstones
from streamframe.runtime.protocols import SinkProtocol


class CollectSink(SinkProtocol):
    """Keeps output rows in memory: all of them for a bounded run, the latest `limit` for a live one."""

    exactly_once = True  # rows kept in memory: nothing outlives the query to be duplicated

    def __init__(self, limit: int | None = None):
        self.limit = limit
        self._frames: collections.deque = collections.deque()
        self._rows = 0
        self._lock = threading.Lock()

    def open(self, query) -> None:
        pass

    def write(self, frame: pd.DataFrame) -> int:
        with self._lock:
            self._frames.append(frame)
            self._rows += len(frame)
            while self.limit is not None and self._frames and self._rows - len(self._frames[0]) >= self.limit:
                self._rows -= len(self._frames.popleft())
        return len(frame)

    def result(self, metadata: bool = False) -> pd.DataFrame:
        with self._lock:
            frames = list(self._frames)
        if not frames:
            return pd.DataFrame()
        out = pd.concat(frames, ignore_index=True)
        if self.limit is not None and len(out) > self.limit:
            out = out.iloc[-self.limit:].reset_index(drop=True)
        values = [c for c in out.columns if c not in META]
        return out[values + [m for m in META if m in out.columns]] if metadata else out[values]

    def flush(self) -> None:
        pass

    def __repr__(self) -> str:
        return "memory" if self.limit is None else f"memory (latest {self.limit:,} rows)"


class TopicSink(SinkProtocol):
    """Writes output rows to a topic, created (with the input's partition count) if missing.

    A table's rows are keyed by its keys — the key as text when there is one key column, else a JSON
    object {keys..., window_start} — and its deletes become tombstones (null values).
    """

    exactly_once = True  # its records go through the query's transactional producer
    rewinds = True  # an aborted transaction's records are never read

    def __init__(self, topic: str, fmt, key: str | None = None, key_format: str = "text",
                 table_keys=None, windowed: bool = False, partitions: int | None = None,
                 subject: str | None = None, key_schema=None):
        from streamframe.serde import REGISTRY_KEYS, value_format

        if key is not None and key_format in REGISTRY_KEYS:
            key_format = "text"  # the key is a column's value, not the source's key as consumed
        self.topic, self.fmt, self.key, self.key_format = topic, fmt, key, key_format
        self.subject = subject  # the value schema's subject, for formats of a Schema Registry
        # the keys' format: a Protobuf message class given (key_schema=), or an Avro table's record keys
        self._key_fmt = None if key_schema is None else value_format("protobuf", key_schema)
        self._own_keys = key_schema is not None  # every key encoded here, not by the writer
        self.table_keys, self.windowed, self.partitions = table_keys, windowed, partitions
        self._writer = None
        # What a record takes from the metadata; a record's own key passes through as its bytes, and a
        # JSON record as consumed, with new fields appended (plan/values.py).
        verbatim = key is None and not table_keys and key_format in VERBATIM_KEYS and key_schema is None
        spliced = key is None and not table_keys and fmt is not None and fmt.name == "json"  # key: a field
        self.metadata = frozenset({"_key", "_timestamp", "_tombstone"} | ({KEY_BYTES} if verbatim else set())
                                  | ({RECORD_BYTES} if spliced else set()))

    def open(self, query) -> None:
        from streamframe.kafka.writer import TopicWriter

        query.connection.ensure_topic(self.topic, partitions=self.partitions or query.input_partitions())
        # a JSON key {keys..., window_start} comes out of table_record_keys already encoded
        encoded = self.table_keys and (self.windowed or len(self.table_keys) > 1)
        key_format = "bytes" if encoded or self._own_keys else self.key_format
        from streamframe.serde import attach_registry, value_format

        # a format of a Schema Registry registers its schema under the topic's subject (TopicNameStrategy)
        registry = query.connection.schema_registry
        attach_registry(self.fmt, registry, self.subject or f"{self.topic}-value")
        if self._own_keys:
            attach_registry(self._key_fmt, registry, f"{self.topic}-key")
        elif encoded and registry is not None and getattr(self.fmt, "name", None) == "avro":
            # an Avro table's key {keys..., window_start} is an Avro record too, under <topic>-key
            self._key_fmt = attach_registry(value_format("avro"), registry, f"{self.topic}-key")
        self._writer = TopicWriter(query.output, self.topic, self.fmt, key_format,
                                   None if self._own_keys else self.key,
                                   max_bytes=query.connection.max_message_bytes(self.topic))

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.topic,)

    @property
    def rejected(self) -> dict:
        return self._writer.rejected if self._writer is not None else {}

    def write(self, frame: pd.DataFrame) -> int:
        if self.table_keys:
            frame = table_record_keys(frame, self.table_keys, self.windowed, self._key_fmt)
        elif self._own_keys:  # key_schema=: each key a message of it
            from streamframe.serde import encode_registry_keys

            frame = frame.copy(deep=False)
            column = self.key or "_key"
            keys = frame[column].tolist() if column in frame.columns else [None] * len(frame)
            frame["_key"] = encode_registry_keys(keys, self._key_fmt, self.key)
        return self._writer.write(frame)

    def __repr__(self) -> str:
        return f"topic {self.topic}"


def table_record_keys(frame: pd.DataFrame, keys: list, windowed: bool, key_fmt=None) -> pd.DataFrame:
    """`_key` for a table's records: its key, or {keys..., window_start (epoch ms)} as JSON bytes
    (encoded column-wise, like values) — or with `key_fmt` (Avro, or the Protobuf message class given)
    as its records or messages, window_start a timestamp (Avro's timestamp-millis; epoch ms in a
    Protobuf integer field)."""
    from streamframe.serde.json_encode import encode_json_rows
    from streamframe.time.extract import datetime_to_ms

    frame = frame.copy(deep=False)
    if not windowed and len(keys) == 1:
        values = frame[keys[0]].astype(object).to_numpy()
        if key_fmt is not None:  # a Protobuf message class for keys: the key column as its field
            from streamframe.serde import encode_registry_keys

            values = encode_registry_keys(list(values), key_fmt, keys[0])
        frame["_key"] = values
        return frame
    parts = pd.DataFrame({k: frame[k].to_numpy() for k in keys})
    if key_fmt is not None:
        if windowed:
            parts["window_start"] = frame["window_start"].to_numpy()
        frame["_key"] = key_fmt.encode(parts)
        return frame
    if windowed:
        parts["window_start"] = datetime_to_ms(frame["window_start"])
    frame["_key"] = encode_json_rows(parts)
    return frame


class TableSink(SinkProtocol):
    """Materializes a table's changes: the current row per key; the result of a table's run()."""

    exactly_once = True  # rows kept in memory, by key
    materialized = True

    def __init__(self, index_names: list[str]):
        self.index_names = list(index_names)
        self._rows: pd.DataFrame | None = None
        self._lock = threading.Lock()

    def open(self, query) -> None:
        pass

    def write(self, frame: pd.DataFrame) -> int:
        tomb = tombstones(frame)
        rows = frame.set_index(self.index_names, drop=True)
        last = ~rows.index.duplicated(keep="last")
        rows, tomb = rows[last], tomb[last]
        with self._lock:
            current = self._rows
            if current is not None and len(current):
                current = current[~current.index.isin(rows.index)]
            upserts = rows[~tomb]
            self._rows = upserts if current is None or not len(current) else pd.concat([current, upserts])
        return len(frame)

    def result(self, metadata: bool = False) -> pd.DataFrame:
        with self._lock:
            rows = self._rows
        if rows is None:
            names = self.index_names
            return pd.DataFrame(index=pd.MultiIndex.from_arrays([[]] * len(names), names=names)
                                if len(names) > 1 else pd.Index([], name=names[0]))
        rows = rows.sort_index()
        if not metadata:
            rows = rows[[c for c in rows.columns if c not in META]]
        return rows

    def __repr__(self) -> str:
        return "table"


DLQ_HEADERS = ("streamframe.error", "streamframe.topic", "streamframe.partition", "streamframe.offset",
               "streamframe.query")


def dead_letter_headers(record: dict, reason: str, query: str) -> list[tuple[str, bytes]]:
    """The original headers plus why and where the record failed."""
    ours = [
        ("streamframe.error", reason.encode()),
        ("streamframe.topic", str(record["topic"]).encode()),
        ("streamframe.partition", str(record["partition"]).encode()),
        ("streamframe.offset", str(record["offset"]).encode()),
        ("streamframe.query", query.encode()),
    ]
    return list(record.get("headers") or []) + ours


class MemoryDeadLetters:
    """Dead letters kept in a list (TestDriver, and runs of in-memory sources)."""

    def __init__(self):
        self.records: list[dict] = []

    def send(self, topic: str, record: dict, reason: str, query: str) -> None:
        self.records.append({**record, "dead_letter_topic": topic, "reason": reason,
                             "headers": dead_letter_headers(record, reason, query)})


class KafkaDeadLetters:
    """Dead letters produced to their topic with the original key, value and timestamp."""

    def __init__(self, query):
        self.query = query
        self._created: set[str] = set()

    def send(self, topic: str, record: dict, reason: str, query: str) -> None:
        if topic not in self._created:
            from streamframe.kafka.connection import BROKER_MAX_MESSAGE_BYTES

            # as large records as the input topic takes: a dead letter is its input record whole
            conn = self.query.connection
            largest = conn.max_message_bytes(record["topic"]) if record.get("topic") else 0
            big = {"max.message.bytes": str(largest)} if largest > BROKER_MAX_MESSAGE_BYTES else None
            conn.ensure_topic(topic, config=big)
            self._created.add(topic)
        value = record["value"]
        if value is not None and not isinstance(value, (bytes, str)):
            value = str(value).encode()
        self.query.output.produce(topic, value=value, key=record["key"],
                                  timestamp=max(int(record["timestamp"] or 0), 0),
                                  headers=dead_letter_headers(record, reason, query))
