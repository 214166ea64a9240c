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
from streamframe.operators.records import META, RawBatch
from streamframe.plan.nodes import KafkaSource
from streamframe.runtime.query import Query
from streamframe.runtime.sinks import CollectSink
from streamframe.serde import encode_keys, value_format
from streamframe.time.extract import datetime_to_ms


def _encode_value(value, fmt: str):
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if fmt == "json":
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    raise ConfigError(f"pipe a {fmt} record as str or bytes, got {type(value).__name__}")


class TestDriver:
    __test__ = False  # not a pytest test class

    def __init__(self, frame):
        self.frame = frame
        self.sink = CollectSink()
        self.query = Query(frame._node, self.sink, name="test-driver", connection=None, bounded=True)
        self._offsets: collections.Counter = collections.Counter()
        self._time = 0

    @property
    def dead_letters(self) -> list[dict]:
        """Records routed to a dead-letter topic: original key, value, partition, offset, reason."""
        return self.query.dead_letters.records

    @property
    def metrics(self) -> dict:
        return self.query.metrics

    def pipe(self, topic: str, values, *, keys=None, timestamps=None, partition: int = 0, headers=None) -> None:
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
            keys=[k if k is None or isinstance(k, bytes) else str(k).encode() for k in keys],
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
        return [(k.decode() if isinstance(k, bytes) else k, v, t) for k, v, t in zip(keys, decoded, stamps)]
