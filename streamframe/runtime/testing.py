"""TestDriver: run a topology in process, without a broker — the same operators, serde and error
routing as a live query (Kafka Streams' TopologyTestDriver, for frames).

    >>> import streamframe as sf
    >>> from streamframe.testing import TestDriver
    >>> trades = sf.stream("trades")
    >>> driver = TestDriver(trades[trades.qty > 1])
    >>> driver.pipe("trades", [{"qty": 1}, {"qty": 5}], keys=["a", "b"], timestamps=[1000, 2000])
    >>> driver.output()
       qty
    0    5
    >>> driver.records()
    [('b', {'qty': 5}, 2000)]
"""

from __future__ import annotations

import collections

import orjson
import pandas as pd

from streamframe.errors import ConfigError
from streamframe.plan.nodes import KafkaSource
from streamframe.records import META, RawBatch
from streamframe.runtime.protocols import SinkProtocol
from streamframe.runtime.query import Query
from streamframe.runtime.sinks import CollectSink, TableSink
from streamframe.serde import encode_keys, key_bytes, value_format
from streamframe.time.extract import datetime_to_ms


def _encode_value(value, fmt: str):
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if fmt == "json":
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    raise ConfigError(f"pipe a {fmt} record as str or bytes, got {type(value).__name__}")


class _Both(SinkProtocol):
    """Feeds the changelog to a collector (output()) and, for tables, to a materialized view (table())."""

    def __init__(self, collect, table):
        self.collect, self.table = collect, table

    def open(self, query) -> None:
        pass

    def write(self, frame) -> int:
        if self.table is not None:
            self.table.write(frame)
        return self.collect.write(frame)

    def result(self, metadata=False):
        return self.collect.result(metadata)


class TestDriver:
    __test__ = False  # not a pytest test class

    def __init__(self, frame, partitions: int = 1):
        self.frame = frame
        self.sink = CollectSink()
        # A TableFrame (frames sit above the runtime): on type(frame), as any name on a frame is a column.
        is_table = hasattr(type(frame), "index_names")
        self.table_sink = TableSink(frame.index_names) if is_table else None
        self._wall = 0.0
        # merge=False: records are processed in the order they are piped, as in TopologyTestDriver
        self.query = Query(frame._node, _Both(self.sink, self.table_sink), name="test-driver",
                           connection=None, bounded=True, clock=lambda: self._wall, merge=False)
        self.query.open_topology(partitions)
        self._offsets: collections.Counter = collections.Counter()
        self._time = 0

    def advance_wall_clock(self, seconds: float) -> None:
        """Move the wall clock on and let operators act on it (close_after), as an idle poll would."""
        self._wall += seconds
        self.query.idle()

    def table(self) -> pd.DataFrame:
        """A table frame's current rows, indexed by its keys (window_start, window_end if windowed)."""
        if self.table_sink is None:
            raise ConfigError("table() is for TableFrames; use output() for a stream")
        return self.table_sink.result()

    @property
    def dead_letters(self) -> list[dict]:
        """Records routed to a dead-letter topic: original key, value, partition, offset, reason."""
        return self.query.dead_letters.records

    @property
    def metrics(self) -> dict:
        return self.query.metrics

    def pipe(self, topic: str, values, *, keys=None, timestamps=None, partition: int = 0,
             headers=None) -> None:
        """Feed records to `topic` as one batch. Values are dicts (JSON), str or bytes; None is a
        tombstone. Timestamps are epoch ms (default: one ms after the previous record)."""
        sources = [s for s in self.frame._node.sources() if isinstance(s, KafkaSource) and s.topic == topic]
        if not sources:
            raise ConfigError(f"the frame does not read topic {topic!r}")
        fmt = sources[0].value_format.name
        values = list(values)
        n = len(values)
        keys = list(keys) if keys is not None else [None] * n
        if timestamps is None:
            timestamps = [self._time + 1 + i for i in range(n)]
        timestamps = [int(t) for t in timestamps]
        self._time = max([self._time, *timestamps])
        start = self._offsets[(topic, partition)]
        self._offsets[(topic, partition)] += n
        raw = RawBatch(
            topic=topic,
            values=[_encode_value(v, fmt) for v in values],
            keys=[key_bytes(k, sources[0].key_format) for k in keys],
            timestamps=timestamps,
            partitions=[partition] * n,
            offsets=list(range(start, start + n)),
            headers=list(headers) if headers is not None else [None] * n,
        )
        self.query.process(topic, raw)

    def output(self, metadata: bool = False) -> pd.DataFrame:
        """Every output row so far."""
        return self.sink.result(metadata=metadata)

    def records(self, format: str = "json") -> list[tuple]:
        """Output as (key, value, timestamp ms) records, encoded and decoded as a topic would hold them."""
        out = self.sink.result(metadata=True)
        if out.empty:
            return []
        fmt = value_format(format)
        values = fmt.encode(out[[c for c in out.columns if c not in META]])
        keys = encode_keys(out["_key"], self.frame._key_format())
        stamps = datetime_to_ms(out["_timestamp"]).tolist()
        decoded = [orjson.loads(v) if format == "json" else v for v in values]
        keys = [k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else k for k in keys]
        return list(zip(keys, decoded, stamps))
