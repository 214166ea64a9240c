"""SinkConnector: topics read in a consumer group, decoded batches handed to `write()`, offsets committed
after the target has what was read."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from streamframe.connectors.base import VALUE_FORMATS, Connector
from streamframe.connectors.config import Settings
from streamframe.errors import ConfigError, ConnectorError
from streamframe.serde import decode_keys, value_format
from streamframe.time.extract import ms_to_datetime


class SinkConnector(Connector):
    """Reads `topics` (consumer group `{app_id}.connect-{name}`, from the earliest record the first
    time) and hands `write()` decoded batches; offsets are committed after what was read is written."""

    kind = "sink"
    KEYS = {
        "topics": "the topic(s) to read, comma-separated (also topic=)",
        "format": "the value format of the topics: json (default), csv, text or bytes",
        "columns": "the names of CSV fields (else c0, c1, ...), or the JSON fields to keep, comma-separated",
        "metadata": "true: add the columns _key, _timestamp, _partition, _offset (default false)",
        "until": "end: a bounded load of what the topics hold now, then FINISHED (default: until stopped)",
        "errors.tolerance": (
            "none (default): a record that cannot be decoded fails the connector; all: skip it"
        ),
        "batch.size": "records per batch (default 10000)",
    }
    commit_interval = 1.0

    def configure(self, s: Settings) -> None:
        self.topic_names = s.items("topics", aliases=("topic",))
        if not self.topic_names:
            raise ConfigError("missing required setting topics=... (the topic(s) to read)")
        self.format = s.text("format", "json", choices=VALUE_FORMATS)
        self.metadata = s.flag("metadata", False)
        until = s.text("until", None, choices=(None, "end"))
        self.bounded = until == "end"
        self.tolerate = s.text("errors.tolerance", "none", choices=("none", "all")) == "all"
        self.batch_size = s.integer("batch.size", 10000, minimum=1)
        self.fmt = value_format(self.format, s.items("columns") or None)

    @property
    def topics(self) -> list[str]:
        return list(self.topic_names)

    def prepare(self) -> None:
        self.connection = self.context.connection()
        self.partitions = self.connection.require_topics(self.topic_names, need="read")
        self.open_target()

    def open_target(self) -> None:
        """Check (and create) where the records go, before the thread starts."""

    def write(self, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Make what was written durable (before offsets are committed)."""

    def run(self) -> None:
        from streamframe.kafka.reader import KafkaReader

        group = f"{self.connection.app_id}.connect-{self.name}"
        reader = KafkaReader(self.client(), self.topic_names, group, bounded=self.bounded)
        try:
            reader.open()
            if self.bounded:
                self.total = reader.left() if reader.end else 0
            committed, written = time.monotonic(), 0

            def commit() -> None:
                # `records` counts what reached the target, so a reader who sees records == n finds n.
                nonlocal committed, written
                self.flush()
                reader.commit()
                self.records += written
                committed, written = time.monotonic(), 0

            while self.proceed():
                if self.bounded and reader.at_end():
                    break
                batches = reader.poll(self.batch_size, 0.2)
                got = 0
                for topic, raw in batches.items():
                    self.handle(topic, raw)
                    got += len(raw)
                written += got
                # Caught up (a short poll) or the interval passed: flush the target, commit the offsets.
                if written and (got < self.batch_size
                                or time.monotonic() - committed >= self.commit_interval):
                    commit()
            commit()
        finally:
            reader.close()

    def handle(self, topic: str, raw) -> None:
        frame = self.decode(raw)
        if len(frame):
            self.write(frame)

    def decode(self, raw) -> pd.DataFrame:
        """A raw batch as a DataFrame (tombstones left out and counted as skipped)."""
        present = [i for i, v in enumerate(raw.values) if v is not None]
        self.skipped += len(raw) - len(present)
        if not present:
            return pd.DataFrame()
        values = raw.values if len(present) == len(raw) else [raw.values[i] for i in present]
        decoded = self.fmt.decode(values)
        if decoded.errors:
            pos = min(decoded.errors)
            where = f"{raw.topic}[{raw.partitions[present[pos]]}]@{raw.offsets[present[pos]]}"
            if not self.tolerate:
                raise ConnectorError(f"record {where} is not {self.format}: {decoded.errors[pos]} "
                                     "(errors.tolerance=all skips such records)")
            self.skipped += len(decoded.errors)
            self.last_error = self.scrub(f"skipped {where}: {decoded.errors[pos]}")
        frame = decoded.frame
        if self.metadata:
            at = [present[i] for i in frame.index]
            frame = frame.copy()
            frame["_key"] = decode_keys([raw.keys[i] for i in at], "text", frame.index)
            frame["_timestamp"] = ms_to_datetime([raw.timestamps[i] for i in at])
            frame["_partition"] = np.asarray([raw.partitions[i] for i in at], dtype="int32")
            frame["_offset"] = np.asarray([raw.offsets[i] for i in at], dtype="int64")
        return frame.reset_index(drop=True)
