"""SourceConnector: what a source's `batches()` yields — DataFrames, or records already encoded — written to
one topic, delivered before they are counted."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from streamframe.connectors.base import VALUE_FORMATS, Connector
from streamframe.connectors.config import Settings
from streamframe.errors import ConnectorError
from streamframe.serde import encode_keys, value_format
from streamframe.time.extract import to_epoch_ms


@dataclass
class RawRecords:
    """Records already encoded (a file's lines as written), with their keys and timestamps (ms; 0 = now)."""

    values: list
    keys: list
    timestamps: list

    def __len__(self) -> int:
        return len(self.values)


class SourceConnector(Connector):
    """Writes what `batches()` yields to `topic`: DataFrames (encoded in `format`, keyed by the `key`
    column, timed by the `timestamp` column) or RawRecords as they are."""

    kind = "source"
    default_format = "json"
    default_key: str | None = None
    default_timestamp: str | None = None
    KEYS = {
        "topic": "the topic to write to (created if missing)",
        "partitions": "partitions of the topic when it is created (default 1)",
        "key": "the column whose value is the record key (default: none)",
        "timestamp": "the column holding each record's event time (epoch ms or ISO 8601; default: now)",
        "format": "the value format on the topic: json (default), csv, text or bytes",
        "batch.size": "records per batch (default 10000)",
    }

    def configure(self, s: Settings) -> None:
        self.topic = s.require("topic", "the topic to write to")
        key = s.text("key", self.default_key)
        self.key = None if key in (None, "none", "null") else key
        ts = s.text("timestamp", self.default_timestamp)
        self.timestamp = None if ts in (None, "none", "now") else ts
        self.format = s.text("format", self.default_format, choices=VALUE_FORMATS)
        self.partitions = s.integer("partitions", 1, minimum=1)
        self.batch_size = s.integer("batch.size", 10000, minimum=1)

    @property
    def topics(self) -> list[str]:
        return [self.topic]

    def batches(self):
        """Yield DataFrames or RawRecords until the input ends or `self.stopping`."""
        raise NotImplementedError

    def prepare(self) -> None:
        self.connection = self.context.connection()
        self.connection.ensure_topic(self.topic, self.partitions)
        self.connection.wait_for_topics([self.topic])

    def run(self) -> None:
        from streamframe.kafka.writer import Output

        output = Output(self.client())
        fmt = value_format(self.format)
        flushed, queued = time.monotonic(), 0

        def flush() -> None:
            # `records` counts delivered records, so a reader who sees records == n finds n on the topic.
            nonlocal flushed, queued
            output.flush()
            self.records += queued
            flushed, queued = time.monotonic(), 0

        try:
            for batch in self.batches():
                if not isinstance(batch, RawRecords):
                    batch = self.encode(batch, fmt)
                output.produce_many(self.topic, batch.values, batch.keys, batch.timestamps)
                queued += len(batch)
                output.poll()
                # A short batch means the source caught up (a followed file, a rate-limited generator)
                # and may now wait: deliver what it gave. Otherwise at least once a second, so delivery
                # errors show up.
                if len(batch) < self.batch_size or time.monotonic() - flushed > 1.0:
                    flush()
                if not self.proceed():
                    break
        finally:
            flush()

    def encode(self, frame: pd.DataFrame, fmt) -> RawRecords:
        for col, what in ((self.key, "key"), (self.timestamp, "timestamp")):
            if col is not None and col not in frame.columns:
                raise ConnectorError(
                    f"{what}={col}: no such column (columns: {', '.join(map(str, frame.columns))})"
                )
        values = fmt.encode(frame)
        keys = encode_keys(frame[self.key].astype(object).where(frame[self.key].notna(), None), "text") \
            if self.key else [None] * len(frame)
        if self.timestamp:
            ms, _ = to_epoch_ms(frame[self.timestamp])
            stamps = np.where(ms < 0, 0, ms).tolist()  # 0: the producer stamps it now
        else:
            stamps = [0] * len(frame)
        return RawRecords(values, keys, stamps)
