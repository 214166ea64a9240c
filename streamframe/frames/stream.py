"""StreamFrame: a record stream ("INSERT" per record), lazy and immutable, that reads like pandas.

    >>> import pandas as pd, streamframe as sf
    >>> trades = sf.from_pandas(pd.DataFrame({"symbol": ["A", "B", "A"], "qty": [50, 200, 300],
    ...                                       "price": [10.0, 20.0, 30.0]}))
    >>> big = trades[trades.qty > 100].assign(notional=trades.qty * trades.price)
    >>> big.run()
      symbol  qty  price  notional
    0      B  200   20.0    4000.0
    1      A  300   30.0    9000.0

Every operation returns a new frame over a new plan node; nothing runs until `run()`, `start()` or a
sink such as `to_topic()`. Metadata columns `_key`, `_timestamp`, `_partition`, `_offset`, `_headers`
can be used in expressions; they travel with every row but are not part of the written value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from streamframe.errors import ConfigError
from streamframe.frames.base import Explanation, Frame  # noqa: F401 - Explanation: explain() returns one
from streamframe.frames.schema import sample_frame, value_columns
from streamframe.plan import nodes
from streamframe.plan.columns import closest
from streamframe.plan.explain import explain_text
from streamframe.plan.expr import Col, Expr
from streamframe.records import META


class StreamFrame(Frame):
    # --- columns and masks -------------------------------------------------------------------
    @property
    def columns(self) -> pd.Index | None:
        """The value columns, as far as they can be told before running: from a few of the topic's last
        records (cached; connects if needed) or the DataFrame, through the plan. None when unknown (an
        empty or missing topic, no answer within a few seconds, a function over the batch on the way).

            >>> import pandas as pd, streamframe as sf
            >>> s = sf.from_pandas(pd.DataFrame({"qty": [1], "price": [2.5]}))
            >>> list(s.assign(notional=s.qty * s.price).drop(columns="price").columns)
            ['qty', 'notional']
        """
        frame = sample_frame(self._node, connect=True)
        return None if frame is None else pd.Index(value_columns(frame))

    @property
    def dtypes(self) -> pd.Series | None:
        """The value columns' dtypes, told as `columns` is (None when unknown).

            >>> import pandas as pd, streamframe as sf
            >>> sf.from_pandas(pd.DataFrame({"qty": [1], "price": [2.5]})).dtypes.astype(str).to_dict()
            {'qty': 'int64', 'price': 'float64'}
        """
        frame = sample_frame(self._node, connect=True)
        return None if frame is None else frame[value_columns(frame)].dtypes

    def _known_columns(self) -> list | None:
        """The columns if they are known without connecting (what attribute access and dir() use)."""
        frame = sample_frame(self._node)
        return None if frame is None else value_columns(frame)

    def __getattr__(self, name: str) -> Col:
        if name.startswith("_") and name not in META:
            raise AttributeError(name)
        if name not in META:
            known = self._known_columns()
            if known is not None and name not in known:
                raise AttributeError(_no_such_column(name, known))
        return Col(name)

    def __dir__(self):
        """The frame's methods and its known columns, for tab completion."""
        names = set(super().__dir__())
        names.update(c for c in self._known_columns() or [] if isinstance(c, str) and c.isidentifier())
        return sorted(names)

    def __getitem__(self, item):
        """`s["col"]` a column, `s[["a", "b"]]` a selection, `s[s.x > 1]` a filter."""
        if isinstance(item, str):
            return Col(item)
        if isinstance(item, (list, tuple)):
            return self._then(nodes.Select, columns=tuple(item))
        if isinstance(item, Expr) or callable(item):
            return self._then(nodes.Filter, mask=item)
        raise ConfigError(
            f"cannot index a StreamFrame with {type(item).__name__}; use a column name, a list of names, "
            "or a condition built from the frame's columns such as s[s.qty > 100]"
        )

    def _then(self, node_type, parents=None, **fields) -> StreamFrame:
        return type(self)(node_type(parents or (self._node,), **fields))

    # --- stateless operations ----------------------------------------------------------------
    def query(self, expr: str) -> StreamFrame:
        """Keep rows where a pandas query string holds: `s.query("qty > 100 and symbol == 'AAPL'")`."""
        if not isinstance(expr, str):
            raise ConfigError(f"query() takes a string such as 'qty > 100', got {type(expr).__name__}")
        return self._then(nodes.Filter, mask=expr)

    def assign(self, **columns) -> StreamFrame:
        """Add or replace columns: expressions, callables over the batch, or constants (as in pandas)."""
        if not columns:
            return self
        for name in columns:
            if name in META and name != "_key":
                raise ConfigError(f"{name} is a metadata column and cannot be assigned")
        return self._then(nodes.Assign, columns=tuple(columns.items()))

    def map(self, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> StreamFrame:
        """Escape hatch: `fn` gets each batch as a DataFrame and returns a DataFrame."""
        _need_callable(fn, "map")
        return self._then(nodes.Map, fn=fn)

    def peek(self, fn: Callable[[pd.DataFrame], Any]) -> StreamFrame:
        """Call `fn` on each batch for its side effects (logging, debugging); rows pass unchanged."""
        _need_callable(fn, "peek")
        return self._then(nodes.Peek, fn=fn)

    def explode(self, column: str) -> StreamFrame:
        """One row per element of a list column (Kafka Streams' flatMapValues)."""
        return self._then(nodes.Explode, column=column)

    def rekey(self, key) -> StreamFrame:
        """A new record key from a column name, an expression or a callable (selectKey)."""
        return self._then(nodes.Rekey, key=key)

    def split(self, mask) -> tuple[StreamFrame, StreamFrame]:
        """Branch in two: (rows where `mask` holds, the rest)."""
        return self._then(nodes.Filter, mask=mask), self._then(nodes.Filter, mask=mask, negate=True)

    def drop(self, columns=None, **kwargs) -> StreamFrame:
        """Drop value columns: `s.drop(["a", "b"])` or `s.drop(columns="a")`."""
        columns = kwargs.pop("labels", columns) if columns is None else columns
        if columns is None:
            raise ConfigError("drop() needs the columns to drop")
        columns = [columns] if isinstance(columns, str) else list(columns)
        _no_meta(columns, "drop")
        kwargs = {k: v for k, v in kwargs.items() if k not in ("axis",)}
        return self._pandas("drop", columns=columns, **kwargs)

    def rename(self, columns=None, **kwargs) -> StreamFrame:
        """Rename value columns: `s.rename(columns={"qty": "quantity"})`."""
        columns = kwargs.pop("mapper", columns)
        if not isinstance(columns, dict) and not callable(columns):
            raise ConfigError("rename() takes columns={old: new} (or a function of the old name)")
        if isinstance(columns, dict):
            _no_meta(list(columns) + list(columns.values()), "rename")
        return self._pandas("rename", columns=columns, **kwargs)

    def astype(self, dtype, **kwargs) -> StreamFrame:
        """Cast value columns: one dtype for all, or {column: dtype}."""
        return self._pandas("astype", dtype, **kwargs)

    def dropna(self, **kwargs) -> StreamFrame:
        """Drop rows with missing values (in `subset`, default every value column)."""
        return self._pandas("dropna", **kwargs)

    def fillna(self, value, **kwargs) -> StreamFrame:
        """Fill missing values: one value for all value columns, or {column: value}."""
        return self._pandas("fillna", value, **kwargs)

    def join(self, other, on=None, how: str = "inner", within=None, grace=None, suffixes=("", "_right"),
             repartition: bool | None = None):
        """Join with a table (each record sees the table as of its own time), a global table (fully
        loaded first), or — with `within=` — another stream.

        `on`: the column of this stream holding the table's key (default: the record key). `how`: "inner"
        or "left" ("outer" too for two streams); a null `on` value finds no row. Shared columns get
        `suffixes`. On a column, the stream is re-keyed through a repartition topic partitioned like the
        table, as Kafka Streams' `selectKey(...).join(table)` (streamframe.runtime.repartition says when
        the lookup stays in process; `repartition=False`: the stream is already keyed by it). On the
        record key, the topics must have equal partition counts unless `repartition=True`.

            >>> enriched = orders.join(customers, on="customer_id", how="left")     # doctest: +SKIP

        Two streams join as Kafka Streams' `JoinWindows.ofTimeDifferenceAndGrace(within, grace)`: equal
        keys, timestamps at most `within` apart; `_timestamp` is the later one. An unmatched left (or,
        outer, right) record is emitted alone once stream time passes its time + within + grace.

            >>> clicks.join(impressions, within="10min", how="left")                # doctest: +SKIP
        """
        from streamframe.frames.table import TableFrame

        if isinstance(other, StreamFrame):
            if within is None:
                raise ConfigError("joining two streams needs within= (how far apart in time two records may "
                                  "be, e.g. within='10min'); without it, join() takes a TableFrame "
                                  "(sf.table / sf.global_table / an aggregation)")
            return self._stream_join(other, on, how, within, grace, suffixes)
        if how not in ("inner", "left"):
            raise ConfigError(f"a stream-table join is 'inner' or 'left', got how={how!r}")
        if within is not None:
            raise ConfigError("within= is for stream-stream joins (the other side a StreamFrame); a "
                              "stream-table join has no time window")
        if not isinstance(other, TableFrame):
            raise ConfigError(f"join() takes a TableFrame (sf.table / sf.global_table / an aggregation), "
                              f"got {type(other).__name__}")
        if other.windowed:
            raise ConfigError("joining a stream with a windowed table is not supported")
        kind = "global" if getattr(other, "is_global", False) else "stream_table"
        return StreamFrame(nodes.Join((self._node, other._node), join=kind, on=on, how=how,
                                      right_keys=tuple(other.keys), suffixes=tuple(suffixes),
                                      repartition=repartition))

    def _stream_join(self, other: StreamFrame, on, how, within, grace, suffixes) -> StreamFrame:
        from streamframe.time.windows import to_ms

        if how not in ("inner", "left", "outer"):
            raise ConfigError(f"a stream-stream join is 'inner', 'left' or 'outer', got how={how!r}")
        if on is not None and not isinstance(on, str):
            raise ConfigError(
                f"a stream-stream join is on one column (or on=None: the record key), got on={on!r}"
            )
        if on == "_key":
            on = None
        if on is not None and on.startswith("_"):
            raise ConfigError(f"on= names a value column both streams have; on=None joins on the record key, "
                              f"got on={on!r}")
        if len(tuple(suffixes)) != 2:
            raise ConfigError(f"suffixes is a pair such as ('', '_right'), got {suffixes!r}")
        return StreamFrame(nodes.Join((self._node, other._node), join="stream_stream", on=on, how=how,
                                      within=to_ms(within, "within"), grace=to_ms(grace, "grace") or 0,
                                      suffixes=tuple(suffixes)))

    def groupby(self, by):
        """Group by columns (or "_key", Kafka Streams' groupByKey, with no re-keying) for aggregations:
        `s.groupby("symbol").window(tumbling="1min").agg(volume=("qty", "sum"))` → a TableFrame."""
        from streamframe.frames.groupby import GroupBy

        return GroupBy(self, by)

    def _pandas(self, method: str, *args, **kwargs) -> StreamFrame:
        return self._then(nodes.Pandas, method=method, args=args, kwargs=tuple(kwargs.items()))

    # --- running -----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"{type(self).__name__} (lazy; run(), start() or a sink runs it)\n{explain_text(self._node)}"

    def run(self, until="end", timeout: float | None = None, metadata: bool = False,
            **options) -> pd.DataFrame:
        """Process what is in the input now, from the beginning, then stop; returns the rows.

        `until`: "end" (the end offsets when the run starts), a record count (the first N input
        records, like head()), or a time (records up to it; datetime, ISO string). Never waits for
        records that do not exist yet; `timeout` (s) bounds the whole run. `metadata=True` keeps the
        `_key`, `_timestamp`, `_partition`, `_offset`, `_headers` columns.
        """
        from streamframe.runtime.sinks import CollectSink

        return self._run(CollectSink(), until, timeout, options).result(metadata=metadata)

    def start(self, name: str | None = None, **options):
        """Run live on a background thread of the kernel; returns the Query handle.

        Reads from the committed offsets of its consumer group `{app_id}.{name}` (from the beginning
        the first time). Starting a frame whose query already runs returns that query.
        """
        from streamframe.runtime.sinks import CollectSink

        return self._launch(CollectSink(limit=10_000), name or self.default_name(), options=options)

    def to_topic(self, topic: str, key: str | None = None, format: str = "json", until=None,
                 name: str | None = None, timeout: float | None = None, subject: str | None = None,
                 schema=None, key_schema=None, **options):
        """Write the rows to `topic` (created if missing, with the input's partition count).

        The record key is `_key` unless `key=` names a column; the value holds the value columns in
        `format`; the record timestamp is `_timestamp`. Live by default (returns the running Query);
        with `until=` it is a bounded run that returns the finished Query. `format="avro"` writes
        Confluent's wire format with a schema inferred from the columns (nullable where a column holds
        missing values, times as timestamp-millis), registered in the connection's Schema Registry
        under `subject` (default "<topic>-value", the TopicNameStrategy); "jsonschema" likewise, with
        an inferred JSON Schema; "protobuf" writes messages of `schema=`, the generated class. `schema=`
        for avro and jsonschema is the schema to write with instead of the inferred one. `key_schema=` a
        generated Protobuf message class: each record key is that message (a key read as a message, a
        dict, by its fields; any other key as the field named like the `key=` column, or the message's
        one field), in the wire format registered under "<topic>-key" (raw messages with no registry).
        """
        from streamframe.runtime.sinks import TopicSink
        from streamframe.serde import value_format

        sink = TopicSink(topic, value_format(format, schema), key=key, key_format=self._key_format(),
                         subject=subject, key_schema=key_schema)
        return self._launch(sink, name or self.default_name(f"to-{topic}"), until, timeout, options)

    def to_sqlite(self, db: str, table: str, pk=None, until=None, name: str | None = None, **options):
        """Insert (or, with pk=, upsert) the rows into a SQLite table, with the offsets they cover."""
        from streamframe.runtime.files import SqliteTableSink

        pk = [pk] if isinstance(pk, str) else list(pk or [])
        if not pk:
            raise ConfigError("to_sqlite() on a stream needs pk= (the column(s) that identify a row)")
        return self._launch(SqliteTableSink(db, table, pk), name or self.default_name(f"sqlite-{table}"),
                            until, None, options)

def _no_such_column(name: str, known: list) -> str:
    match = closest(name, known)
    hint = f"did you mean {match!r}? " if match else ""
    return (f"StreamFrame has no column {name!r} (columns: {', '.join(map(str, known)) or 'none'}); {hint}"
            f"s[{name!r}] names a column the sample of the input did not show")


def _need_callable(fn, method: str) -> None:
    if not callable(fn):
        raise ConfigError(f"{method}() takes a function of a DataFrame, got {type(fn).__name__}")


def _no_meta(columns, method: str) -> None:
    bad = [c for c in columns if c in META]
    if bad:
        raise ConfigError(f"{method}() cannot touch metadata columns ({', '.join(bad)})")
