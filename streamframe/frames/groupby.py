"""groupby(...)[.window(...)] → aggregations that make a TableFrame.

    >>> import pandas as pd, streamframe as sf
    >>> s = sf.from_pandas(pd.DataFrame({"k": ["a", "b", "a"], "x": [1, 2, 3]}))
    >>> s.groupby("k").agg(total=("x", "sum"), n=("x", "count")).run()
       total  n
    k
    a      4  2
    b      2  1
"""

from __future__ import annotations

from streamframe.errors import ConfigError
from streamframe.plan import aggregations as agg
from streamframe.plan import nodes
from streamframe.time.windows import Window, to_ms

_LATE = ("drop", "dead_letter")


class GroupBy:
    def __init__(self, frame, keys, window=None, columns=None, close_after=None, late="drop"):
        keys = [keys] if isinstance(keys, str) else list(keys)
        if not keys:
            raise ConfigError("groupby() needs at least one column (or '_key' for the record key)")
        self._frame, self._keys, self._window = frame, keys, window
        self._columns, self._close_after, self._late = columns, close_after, late

    def window(self, tumbling=None, hopping=None, every=None, sliding=None, session=None, grace=None,
               retention=None, close_after=None, late: str = "drop") -> GroupBy:
        """Window the aggregation: tumbling="1min"; hopping="1min", every="10s"; session="30s".

        `grace` accepts out-of-order records that long after a window ends; `retention` keeps closed
        windows queryable that long (default size + grace); `close_after` closes windows on
        wall-clock time when a partition goes quiet; `late="dead_letter"` routes late records to the
        dead-letter topic (they are always counted in metrics["late_drops"]).
        """
        if late not in _LATE:
            raise ConfigError(f"late= must be one of {', '.join(_LATE)}, got {late!r}")
        w = Window.parse(tumbling=tumbling, hopping=hopping, every=every, sliding=sliding, session=session,
                         grace=grace, retention=retention)
        return GroupBy(self._frame, self._keys, w, self._columns, to_ms(close_after, "close_after"), late)

    def __getitem__(self, columns) -> GroupBy:
        return GroupBy(self._frame, self._keys, self._window, columns, self._close_after, self._late)

    def __getattr__(self, name: str) -> GroupBy:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    # --- aggregations ------------------------------------------------------------------------
    def agg(self, *args, **named):
        """Named aggregation as in pandas: agg(volume=("qty", "sum"), trades=("qty", "count")).
        A function name (or a list of them) applies to the selected column(s)."""
        if named and args:
            raise ConfigError("agg() takes named aggregations or function names, not both")
        if named:
            return self._build(agg.named_specs(named))
        if len(args) != 1:
            raise ConfigError("agg() needs named aggregations, e.g. agg(volume=('qty', 'sum'))")
        fns = args[0] if isinstance(args[0], list) else [args[0]]
        cols = self._selected()
        for fn in fns:
            agg.check_fn(fn)
        specs = [agg.AggSpec(f"{c}_{_fn_name(fn)}" if len(fns) > 1 else c, c, fn) for c in cols for fn in fns]
        return self._build(tuple(specs))

    def _selected(self) -> list:
        if self._columns is None:
            raise ConfigError("select the columns to aggregate first, e.g. groupby('symbol')['qty'].sum(), "
                              "or use named aggregation: agg(total=('qty', 'sum'))")
        return [self._columns] if isinstance(self._columns, str) else list(self._columns)

    def _simple(self, fn: str):
        if self._columns is None and fn in ("count", "size"):
            return self._build((agg.AggSpec("count", None, "size"),))
        return self.agg(fn)

    def count(self):
        """Records per group (per window): a column `count`, or the non-null count of selected columns."""
        return self._simple("count")

    def size(self):
        return self._build((agg.AggSpec("size", None, "size"),))

    def sum(self):
        return self._simple("sum")

    def mean(self):
        return self._simple("mean")

    def min(self):
        return self._simple("min")

    def max(self):
        return self._simple("max")

    def first(self):
        return self._simple("first")

    def last(self):
        return self._simple("last")

    def nunique(self):
        return self._simple("nunique")

    def reduce(self, fn):
        """Fold each group with fn(aggregate, new) — over the selected column's values, or over rows
        as dicts — in record order (Kafka Streams' reduce)."""
        column = self._columns if isinstance(self._columns, str) else None
        name = column or "value"
        return self._build((), fold=agg.Fold(None, fn, column), fold_name=name)

    def aggregate(self, init, add, name: str = "value"):
        """Fold each group: starts from init() and applies add(aggregate, row) per record (rows as
        dicts, or the selected column's values). A dict aggregate becomes columns."""
        if not callable(init) or not callable(add):
            raise ConfigError("aggregate() takes init (a function of no arguments) and add(aggregate, row)")
        column = self._columns if isinstance(self._columns, str) else None
        fold = agg.Fold(lambda row: add(init(), row), add, column)
        return self._build((), fold=fold, fold_name=name)

    def _build(self, specs, fold=None, fold_name="value"):
        from streamframe.frames.table import TableFrame

        for k in self._keys:
            if k.startswith("_") and k != "_key":
                raise ConfigError(f"groupby() takes value columns or '_key', not {k!r}")
        from_table = isinstance(self._frame, TableFrame)
        node = nodes.Aggregate((self._frame._node,), keys=tuple(self._keys), specs=specs, fold=fold,
                               fold_name=fold_name, window=self._window, close_after=self._close_after,
                               late=self._late, from_table=from_table,
                               input_keys=tuple(self._frame.keys) if from_table else ())
        return TableFrame(node, keys=self._keys, windowed=self._window is not None)


def _fn_name(fn) -> str:
    return fn if isinstance(fn, str) else getattr(fn, "__name__", "fn")
