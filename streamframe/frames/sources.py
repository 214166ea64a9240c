"""Constructors of frames: topics, DataFrames, and concatenation."""

from __future__ import annotations

import pandas as pd

from streamframe.errors import ConfigError
from streamframe.frames.stream import StreamFrame
from streamframe.plan import nodes
from streamframe.serde import check_key_format, key_decoder, value_format


def stream(topic: str, key: str = "text", value: str = "json", timestamp=None, schema=None,
           on_error: str = "dead_letter", dead_letter_topic: str | None = None,
           key_schema=None) -> StreamFrame:
    """A record stream over a Kafka topic.

    `key`/`value`: formats ("text", "json", "csv", "bytes", "avro", "jsonschema", "protobuf");
    `schema`: column names, or {name: dtype}; for "avro", an .avsc path, its JSON or a dict: with the
    connection's Schema Registry (sf.connect(schema_registry=...)) records are in Confluent's wire
    format, each read with its writer schema (versions merge into one frame) and `schema` is the
    optional reader schema; without one they are raw Avro bodies of `schema`; for "jsonschema", a JSON
    Schema to check plain JSON bodies against (with a registry each record is checked against its own);
    for "protobuf", the generated message class (optional with a registry: each record is read with the
    message its schema id names, the .proto files it imports resolved through the registry);
    `key="avro"`, "jsonschema" or "protobuf": keys in the wire format, read through the registry (a
    one-value key is the value, a record or message key a dict of its fields), or with no registry raw
    keys of `key_schema` (schema= for the key: for "protobuf" its generated message class);
    `timestamp`: "record" (the Kafka timestamp, default; ingestion time on a topic with LogAppendTime),
    "processing" (wall-clock time when processed), a column name, or a function of the batch;
    `on_error`: what a record that cannot be decoded or evaluated does — "dead_letter" (to
    `dead_letter_topic`, default "<topic>.dlq", with the reason in headers), "skip" (counted), or "fail".

        >>> trades = stream("trades", value="json", timestamp="ts")
    """
    if not isinstance(topic, str) or not topic:
        raise ConfigError(f"stream() needs a topic name, got {topic!r}")
    from streamframe.runtime.query import ON_ERROR

    if on_error not in ON_ERROR:
        raise ConfigError(f"on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    key = check_key_format(key)
    return StreamFrame(nodes.KafkaSource((), topic=topic, key_format=key,
                                         key_decoder=key_decoder(key, key_schema),
                                         value_format=value_format(value, schema), timestamp=timestamp,
                                         on_error=on_error, dead_letter_topic=dead_letter_topic))


def table(topic: str, key=None, value: str = "json", key_format: str = "text", timestamp=None, schema=None,
          on_error: str = "dead_letter", dead_letter_topic: str | None = None, key_schema=None):
    """A table over a changelog topic: the last value per key; a null value (tombstone) deletes.

    `key`: the key column(s) in the value, or None for the record key (as column `_key`);
    `key_format` and `key_schema`: the record key's format and its schema, as stream()'s key= and
    key_schema= are.

        >>> prices = table("ref-prices", key="symbol")
    """
    from streamframe.frames.table import TableFrame

    src = stream(topic, key=key_format, value=value, timestamp=timestamp, schema=schema, on_error=on_error,
                 dead_letter_topic=dead_letter_topic, key_schema=key_schema)
    node = nodes.KafkaSource((), **{f: getattr(src._node, f) for f in
                                    ("topic", "key_format", "key_decoder", "value_format", "timestamp",
                                     "on_error", "dead_letter_topic")}, table=True)
    keys = ["_key"] if key is None else ([key] if isinstance(key, str) else list(key))
    return TableFrame(nodes.TableFromStream((node,), keys=tuple(keys)), keys=keys)


def global_table(topic: str, key=None, value: str = "json", key_format: str = "text", schema=None,
                 key_schema=None):
    """A table every instance holds whole, loaded to its end before the stream side of a join starts
    (Kafka Streams' GlobalKTable); updates after that are applied as they arrive.

        >>> countries = global_table("countries", key="code")
    """
    t = table(topic, key=key, value=value, key_format=key_format, schema=schema, key_schema=key_schema)
    src = t._node.parents[0]
    import dataclasses

    node = dataclasses.replace(t._node, parents=(dataclasses.replace(src, global_table=True),))
    t._node, t.is_global = node, True
    return t


def merge_asof(left, right, by=None, tolerance=None, how: str = "left", suffixes=("", "_right")):
    """As-of join of two streams on event time: each left record gets the latest right record at or
    before its time (with the same `by` values), within `tolerance` — pandas' merge_asof, live.

        >>> quotes_at_trade = merge_asof(trades, quotes, by="symbol", tolerance="5s")   # doctest: +SKIP
    """
    from streamframe.time.windows import to_ms

    if not isinstance(left, StreamFrame) or not isinstance(right, StreamFrame):
        raise ConfigError("merge_asof() joins two StreamFrames")
    if how not in ("inner", "left"):
        raise ConfigError(f"merge_asof() is 'left' (default) or 'inner', got how={how!r}")
    return StreamFrame(nodes.Join((left._node, right._node), join="asof", by=by, how=how,
                                  tolerance=to_ms(tolerance, "tolerance"), suffixes=tuple(suffixes)))


def from_pandas(frame: pd.DataFrame, timestamp=None, key: str | None = None,
                on_error: str = "dead_letter") -> StreamFrame:
    """A stream over the rows of a DataFrame, in order (for tests, teaching and loading data).

        >>> s = from_pandas(pd.DataFrame({"x": [1, 2]}))
        >>> s.run()["x"].tolist()
        [1, 2]
    """
    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"from_pandas() takes a DataFrame, got {type(frame).__name__}")
    return StreamFrame(nodes.DataFrameSource((), frame=frame.reset_index(drop=True), timestamp=timestamp,
                                             key=key, on_error=on_error))


def concat(frames) -> StreamFrame:
    """Merge streams into one (Kafka Streams' merge); each keeps its own order."""
    frames = list(frames)
    if not frames or not all(isinstance(f, StreamFrame) for f in frames):
        raise ConfigError("concat() takes a list of StreamFrames")
    if len(frames) == 1:
        return frames[0]
    return StreamFrame(nodes.Concat(tuple(f._node for f in frames)))
