"""The unit of work: a batch of raw records from one topic, as columns (lists), in offset order.

The Kafka reader and the TestDriver both build a `RawBatch`; the source operator decodes it into a
DataFrame whose index is each record's position in the batch, so any output or error row can be traced
back to its original bytes, partition and offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter

import numpy as np

META = ("_key", "_timestamp", "_partition", "_offset", "_headers", "_tombstone")
# Asked for with the metadata a sink reads: `_key` as the record's key bytes, not decoded. A topic sink
# asks when it would encode the decoded key back into those same bytes (text or bytes keys both ways).
KEY_BYTES = "_key as bytes"
VERBATIM_KEYS = ("text", "bytes", "raw", "avro", "jsonschema", "protobuf")
# A column of a JSON source's output holding each row's record as consumed, in place of the fields it
# decoded only to read (plan/values.py); a topic sink that asks for it appends the new fields to it.
RECORD_BYTES = "_record"


def is_meta(name) -> bool:
    return name in META


def tombstones(frame) -> np.ndarray:
    """Which rows of a frame are deletes (a null value), as a bool array; none when it has no column."""
    if "_tombstone" not in frame:
        return np.zeros(len(frame), dtype=bool)
    return frame["_tombstone"].fillna(False).astype(bool).to_numpy()


def take(items: list, positions) -> list:
    """items[i] for each i in `positions` (a list or an integer array), in one C call."""
    positions = positions.tolist() if hasattr(positions, "tolist") else list(positions)
    if len(positions) < 2:
        return [items[i] for i in positions]
    return list(itemgetter(*positions)(items))


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

    def rows(self, positions) -> RawBatch:
        """The records at `positions`, as a batch. A batch that builds its fields on demand
        (kafka.reader.MessageBatch) builds the new batch's fields from those records only."""
        return RawBatch(self.topic, *(take(getattr(self, f), positions) for f in _FIELDS))

    def materialized(self) -> RawBatch:
        """This batch with every field built (for a batch held on to: MessageBatch keeps the consumed
        messages, each a much larger object than its fields, until it is gone)."""
        return self

    def record(self, pos: int) -> dict:
        """One record's raw parts, for dead letters and error messages."""
        one = self.rows([pos])
        return {
            "topic": self.topic,
            "partition": one.partitions[0],
            "offset": one.offsets[0],
            "key": one.keys[0],
            "value": one.values[0],
            "timestamp": one.timestamps[0],
            "headers": one.headers[0],
        }

    def head(self, n: int) -> RawBatch:
        return RawBatch(self.topic, self.values[:n], self.keys[:n], self.timestamps[:n],
                        self.partitions[:n], self.offsets[:n], self.headers[:n])


_FIELDS = ("values", "keys", "timestamps", "partitions", "offsets", "headers")
