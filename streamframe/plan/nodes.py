"""Logical plan nodes: what a frame means, independent of how or where it runs.

Each frame operation adds one immutable node pointing at its parents. `plan.compile` turns the graph
into physical operators; `plan.explain` describes it. Nodes hold user arguments as given (expressions,
callables, names) and describe themselves in one line for explain().
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from streamframe.operators.base import describe

_ids = itertools.count()


@dataclass(frozen=True, eq=False)
class Node:
    parents: tuple[Node, ...]
    id: int = field(default_factory=lambda: next(_ids), init=False)

    kind = "node"
    keeps_table = False  # its operator keeps the last row per key of `keys` in a store (a join may read it)

    def detail(self) -> str:
        return ""

    @property
    def name(self) -> str:
        return f"{self.kind.lower()}-{self.id}"

    def walk(self):
        """Every node of the graph below and including this one, each once, parents first."""
        seen, order = set(), []

        def visit(n):
            if n.id in seen:
                return
            seen.add(n.id)
            for p in n.parents:
                visit(p)
            order.append(n)

        visit(self)
        return order

    def sources(self) -> list[Node]:
        return [n for n in self.walk() if not n.parents]


@dataclass(frozen=True, eq=False)
class KafkaSource(Node):
    topic: str = ""
    key_format: str = "text"
    value_format: Any = None  # a serde.Format
    key_decoder: Any = None  # a key format of a Schema Registry: the serde.Format its keys are read with
    timestamp: Any = None  # None/"record": the Kafka timestamp; a column name; or a callable
    on_error: str = "dead_letter"
    dead_letter_topic: str | None = None
    table: bool = False  # a changelog: null values are deletes (tombstones)
    global_table: bool = False  # read whole by every instance, before the rest of the input

    kind = "Source"

    def detail(self):
        ts = (
            "record"
            if self.timestamp is None or (isinstance(self.timestamp, str) and self.timestamp == "record")
            else describe(self.timestamp)
        )
        return f"topic: {self.topic}, key: {self.key_format}, value: {self.value_format}, timestamp: {ts}"

    @property
    def dlq_topic(self) -> str:
        return self.dead_letter_topic or f"{self.topic}.dlq"


@dataclass(frozen=True, eq=False)
class DataFrameSource(Node):
    frame: pd.DataFrame = None
    timestamp: Any = None
    key: str | None = None
    on_error: str = "dead_letter"
    dead_letter_topic: str | None = None

    kind = "DataFrameSource"
    topic = "pandas"
    key_format = "text"

    def detail(self):
        return f"{len(self.frame)} rows, columns: {', '.join(map(str, self.frame.columns))}"

    @property
    def dlq_topic(self) -> str:
        return self.dead_letter_topic or "pandas.dlq"


@dataclass(frozen=True, eq=False)
class Filter(Node):
    mask: Any = None  # an Expr, a callable over the batch, or a query string
    negate: bool = False
    table: bool = False  # on a table, a row that stops matching becomes a delete

    kind = "Filter"

    def detail(self):
        text = f"query({self.mask!r})" if isinstance(self.mask, str) else describe(self.mask)
        return f"not {text}" if self.negate else text


@dataclass(frozen=True, eq=False)
class Select(Node):
    columns: tuple = ()

    kind = "Select"

    def detail(self):
        return ", ".join(map(str, self.columns))


@dataclass(frozen=True, eq=False)
class Assign(Node):
    columns: tuple = ()  # ((name, expr|callable|constant), ...)

    kind = "Assign"

    def detail(self):
        return ", ".join(f"{k} = {describe(v)}" for k, v in self.columns)


@dataclass(frozen=True, eq=False)
class Map(Node):
    fn: Any = None

    kind = "Map"

    def detail(self):
        return describe(self.fn)


@dataclass(frozen=True, eq=False)
class Peek(Node):
    fn: Any = None

    kind = "Peek"

    def detail(self):
        return describe(self.fn)


@dataclass(frozen=True, eq=False)
class Explode(Node):
    column: str = ""

    kind = "Explode"

    def detail(self):
        return self.column


@dataclass(frozen=True, eq=False)
class Rekey(Node):
    key: Any = None  # a column name, an Expr or a callable

    kind = "Rekey"

    def detail(self):
        return describe(self.key) if not isinstance(self.key, str) else self.key


@dataclass(frozen=True, eq=False)
class Pandas(Node):
    """A pandas DataFrame method applied as it is to each batch (drop, rename, astype, dropna, fillna)."""

    method: str = ""
    args: tuple = ()
    kwargs: tuple = ()  # ((name, value), ...)

    kind = "Pandas"

    @property
    def name(self) -> str:
        return f"{self.method}-{self.id}"

    def detail(self):
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.method}({', '.join(parts)})"


@dataclass(frozen=True, eq=False)
class Concat(Node):
    kind = "Concat"

    def detail(self):
        return ", ".join(p.name for p in self.parents)


@dataclass(frozen=True, eq=False)
class Aggregate(Node):
    """groupby(keys)[.window(...)].agg(...) / reduce / aggregate → a table."""

    keys: tuple = ()
    specs: tuple = ()  # AggSpec, ...
    fold: Any = None  # a plan.aggregations.Fold for reduce / aggregate(init, add)
    fold_name: str = "value"
    window: Any = None  # time.windows.Window
    emit: str = "updates"
    close_after: int | None = None  # ms of wall-clock quiet that closes a task's windows
    late: str = "drop"  # or "dead_letter"
    from_table: bool = False  # re-aggregation of a table: updates leave their old group
    input_keys: tuple = ()  # the input table's key columns, when from_table

    kind = "Aggregate"

    def detail(self):
        what = ", ".join(s.describe() for s in self.specs) if self.specs else f"fold {self.fold_name}"
        win = f", {self.window.describe()}" if self.window else ""
        extra = f", close_after {self.close_after} ms" if self.close_after is not None else ""
        return f"by {', '.join(self.keys)}: {what}{win}, emit {self.emit}{extra}"


@dataclass(frozen=True, eq=False)
class TableFromStream(Node):
    """A table from a stream of changelog rows: the last row per key, tombstones delete."""

    keys: tuple = ()

    kind = "Table"
    keeps_table = True

    def detail(self):
        return f"key: {', '.join(self.keys)}"


@dataclass(frozen=True, eq=False)
class Join(Node):
    """Two inputs joined: parents are (left, right). `kind_of` names the join's semantics:
    "stream_table", "global", "table_table", "asof" or "stream_stream"."""

    join: str = "stream_table"
    on: Any = None  # left column(s) holding the right side's key (None: the left key)
    left_on: str | None = None  # table-table foreign key: a column of the left value
    how: str = "inner"
    right_keys: tuple = ()
    left_keys: tuple = ()
    by: Any = None
    tolerance: int | None = None  # ms, as-of
    within: int | None = None  # ms, stream-stream
    grace: int = 0
    suffixes: tuple = ("", "_right")
    repartition: bool | None = None
    # count through a topic; False: no re-key of a join on a column either

    kind = "Join"

    def detail(self):
        parts = [self.join.replace("_", "-"), self.how]
        if self.on is not None:
            parts.append(f"on {self.on}")
        if self.left_on is not None:
            parts.append(f"left_on {self.left_on}")
        if self.by is not None:
            parts.append(f"by {self.by}")
        if self.tolerance is not None:
            parts.append(f"tolerance {self.tolerance} ms")
        if self.within is not None:
            parts.append(f"within {self.within} ms, grace {self.grace} ms")
        return ", ".join(parts)
