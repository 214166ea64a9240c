"""The unit of work: a batch of raw records from one topic, as columns (lists), in offset order.

The Kafka reader and the TestDriver both build a `RawBatch`; the source operator decodes it into a
DataFrame whose index is each record's position in the batch, so any output or error row can be traced
back to its original bytes, partition and offset.
"""

from __future__ import annotations

from dataclasses import dataclass

META = ("_key", "_timestamp", "_partition", "_offset", "_headers", "_tombstone")


def is_meta(name) -> bool:
    return name in META


@dataclass
class RawBatch:
    topic: str
    values: list
    keys: list
    timestamps: list  # epoch milliseconds
    partitions: list
    offsets: list
    headers: list  # per record: list of (name, bytes) or None

    def __len__(self) -> int:
        return len(self.values)

    def record(self, pos: int) -> dict:
        """One record's raw parts, for dead letters and error messages."""
        return {
            "topic": self.topic,
            "partition": self.partitions[pos],
            "offset": self.offsets[pos],
            "key": self.keys[pos],
            "value": self.values[pos],
            "timestamp": self.timestamps[pos],
            "headers": self.headers[pos],
        }

    def head(self, n: int) -> RawBatch:
        return RawBatch(self.topic, self.values[:n], self.keys[:n], self.timestamps[:n],
                        self.partitions[:n], self.offsets[:n], self.headers[:n])
