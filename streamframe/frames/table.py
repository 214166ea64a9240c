"""TableFrame: a changelog table ("UPDATE" per key) — an aggregation's result, or `sf.table(topic)`.

    >>> import pandas as pd, streamframe as sf
    >>> s = sf.from_pandas(pd.DataFrame({"k": ["a", "b", "a"], "x": [1, 2, 3]}))
    >>> t = s.groupby("k")["x"].sum()
    >>> t.run().loc["a", "x"]
    np.int64(4)

A table's rows are keyed by its key columns (plus window_start and window_end when windowed). Running
it returns the table as it stands (`run()`, `snapshot()`); its changes flow on to sinks (`to_topic`
writes upserts and tombstones) and to `changes()` / `to_stream()`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from streamframe import session
from streamframe.errors import ConfigError
from streamframe.frames.base import Frame
from streamframe.frames.stream import StreamFrame
from streamframe.plan import nodes
from streamframe.plan.explain import explain_text
from streamframe.plan.expr import Col, Expr
from streamframe.records import META, tombstones

WINDOW = ["window_start", "window_end"]
EMIT = ("updates", "final")


class TableFrame(Frame):
    default_verb = "t"
    is_table = True

    def __init__(self, node: nodes.Node, keys, windowed: bool = False, is_global: bool = False):
        super().__init__(node)
        self.keys = list(keys)
        self.windowed = windowed
        self.is_global = is_global

    @property
    def index_names(self) -> list[str]:
        return self.keys + (WINDOW if self.windowed else [])

    def _then(self, node) -> TableFrame:
        return TableFrame(node, self.keys, self.windowed, self.is_global)

    # --- columns, filters, lookups -----------------------------------------------------------
    def __getattr__(self, name: str) -> Col:
        if name.startswith("_") and name not in META:
            raise AttributeError(name)
        return Col(name)

    def __getitem__(self, item):
        """`t[t.x > 1]` filters (non-matching rows become deletes), `t[["a", "b"]]` selects,
        `t[key]` looks a key up in the running query's live state."""
        if isinstance(item, Expr) or callable(item):
            return self._then(nodes.Filter((self._node,), mask=item, table=True))
        if isinstance(item, list):
            return self._then(nodes.Select((self._node,), columns=tuple(self.index_names + item)))
        return self.loc[item]

    def query(self, expr: str) -> TableFrame:
        return self._then(nodes.Filter((self._node,), mask=expr, table=True))

    def assign(self, **columns) -> TableFrame:
        return self._then(nodes.Assign((self._node,), columns=tuple(columns.items())))

    @property
    def loc(self) -> _Loc:
        """Point and range lookups on the live state: t.loc["AAPL"], t.loc["A":"M"],
        windowed: t.loc["AAPL", "2024-01-01 10:00":"2024-01-01 11:00"] (a range of window_start)."""
        return _Loc(self)

    # --- tables from tables ------------------------------------------------------------------
    def emit(self, mode: str) -> TableFrame:
        """"updates": every change (default); "final": each window once, when it closes."""
        if mode not in EMIT:
            raise ConfigError(f"emit() takes one of {', '.join(EMIT)}, got {mode!r}")
        node = self._node
        if not isinstance(node, nodes.Aggregate) or node.window is None:
            raise ConfigError("emit() applies to a windowed aggregation: groupby(...).window(...).agg(...)")
        return self._then(dataclasses.replace(node, emit=mode))

    def join(self, other: TableFrame, how: str = "inner", left_on: str | None = None,
             suffixes=("", "_right"), repartition: bool = False) -> TableFrame:
        """Table–table join on the key ("inner", "left", "outer"), or on a foreign key: `left_on` names a
        column of this table's rows holding the other table's key. The result is keyed like this table
        and changes whenever either side does; a row that stops joining becomes a delete."""
        if not isinstance(other, TableFrame) or other.windowed or self.windowed:
            raise ConfigError("join() of a table takes another (non-windowed) TableFrame")
        if how not in ("inner", "left", "outer"):
            raise ConfigError(f"a table-table join is 'inner', 'left' or 'outer', got how={how!r}")
        if left_on is not None and how == "outer":
            raise ConfigError("a foreign-key join is 'inner' or 'left'")
        if left_on is None and len(self.keys) != len(other.keys):
            raise ConfigError(f"the tables have different keys ({self.keys} and {other.keys}); use left_on=")
        node = nodes.Join((self._node, other._node), join="table_table", how=how, left_on=left_on,
                          left_keys=tuple(self.keys), right_keys=tuple(other.keys), suffixes=tuple(suffixes),
                          repartition=repartition)
        return TableFrame(node, self.keys)

    def groupby(self, by):
        """Re-aggregate the table by other columns; an updated row leaves its old group (as
        KTable.groupBy subtracts the old value) and joins its new one."""
        from streamframe.frames.groupby import GroupBy

        if self.windowed:
            raise ConfigError("re-aggregating a windowed table is not supported; group the stream instead")
        return GroupBy(self, by)

    def to_stream(self) -> StreamFrame:
        """The table's changes as a record stream (deletes as rows with `_tombstone` set)."""
        return StreamFrame(self._node)

    # --- running -----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"TableFrame keyed by {', '.join(self.index_names)} (lazy)\n{explain_text(self._node)}"

    def run(self, until="end", timeout: float | None = None, **options) -> pd.DataFrame:
        """Process what is in the input now, then return the table as it stands (indexed by its keys)."""
        from streamframe.runtime.sinks import TableSink

        return self._run(TableSink(self.index_names), until, timeout, options).result()

    def start(self, name: str | None = None, **options):
        """Run live; the returned Query's state answers snapshot(), t[key] and t.loc[...]."""
        from streamframe.runtime.sinks import TableSink

        return self._launch(TableSink(self.index_names), name or self.default_name(), options=options)

    def plot(self, x: str = "window_start", y: str | None = None, by=None, top: int = 5, **options):
        """A live view of the table with a chart of `y` over `x`, one line per `by` (default: the
        keys), for the `top` biggest keys; starts the query.

            >>> vwap.plot(y="volume", by="symbol")     # doctest: +SKIP
        """
        return Frame.display.view(self, plot=dict(x=x, y=y, by=by, top=top), **options)

    def _live(self):
        return session.running(self.default_name())

    def snapshot(self) -> pd.DataFrame:
        """The current table: the running query's live state, else a bounded run."""
        query = self._live()
        if query is not None and hasattr(query.sink, "result"):
            return query.sink.result()
        return self.run()

    def changes(self, until="end", timeout: float | None = None):
        """The table's changes as DataFrames of rows with an `op` column ("upsert" or "delete")."""
        from streamframe.runtime.sinks import CollectSink

        sink = CollectSink()
        self._query(sink, name=self.default_name("changes"), bounded=True, until=until,
                    timeout=timeout).run_here()
        out = sink.result(metadata=True)
        if out.empty:
            return iter(())
        ops = np.where(tombstones(out), "delete", "upsert")
        frame = out[[c for c in out.columns if c not in META]].assign(op=ops)
        return iter([frame])

    # --- sinks -------------------------------------------------------------------------------
    def to_topic(self, topic: str, format: str = "json", until=None, name: str | None = None,
                 timeout: float | None = None, subject: str | None = None, schema=None, key_schema=None,
                 **options):
        """Write the table's changes to `topic`: key {keys..., window_start} (JSON when more than one
        part, else the key as text), value the row in `format` (JSON; "avro": registered under
        `subject`, default "<topic>-value", and `schema=` as StreamFrame.to_topic takes them), deletes as
        tombstones. `key_schema=` a generated Protobuf message class: the key is that message, its fields
        the key columns (and window_start, epoch ms in an integer field), registered under "<topic>-key"."""
        from streamframe.runtime.sinks import TopicSink
        from streamframe.serde import value_format

        sink = TopicSink(topic, value_format(format, schema), table_keys=self.keys, windowed=self.windowed,
                         subject=subject, key_schema=key_schema)
        return self._launch(sink, name or self.default_name(f"to-{topic}"), until, timeout, options)

    def to_sqlite(self, db: str, table: str, pk=None, until=None, name: str | None = None,
                  timeout: float | None = None, **options):
        """Upsert the table's rows into a SQLite table (deletes delete), committing the input offsets
        they cover in the same SQLite transaction."""
        from streamframe.runtime.files import SqliteTableSink

        pk = [pk] if isinstance(pk, str) else list(
            pk or self.index_names[: len(self.keys) + (1 if self.windowed else 0)]
        )
        sink = SqliteTableSink(db, table, pk)
        return self._launch(sink, name or self.default_name(f"sqlite-{table}"), until, timeout, options)


class _Loc:
    def __init__(self, table: TableFrame):
        self.table = table

    def __getitem__(self, item):
        snap = self.table.snapshot()
        if snap.empty:
            raise KeyError(item)
        if self.table.windowed and isinstance(item, tuple) and len(item) == len(self.table.keys) + 1:
            key, times = item[:-1], item[-1]
            rows = snap.loc[key if len(key) > 1 else key[0]]
            starts = rows.index.get_level_values("window_start")
            if isinstance(times, slice):
                lo = pd.Timestamp(times.start, tz="UTC") if times.start is not None else starts.min()
                hi = pd.Timestamp(times.stop, tz="UTC") if times.stop is not None else starts.max()
                return rows[(starts >= lo) & (starts <= hi)]
            return rows[starts == pd.Timestamp(times, tz="UTC")]
        return snap.loc[item]
