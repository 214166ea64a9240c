"""The operator protocol: a physical node that turns one batch (a DataFrame) into the next.

Operators are plain Python over pandas: no Kafka, no widgets, no IPython, so the same code runs under
the TestDriver, in the kernel and headless. A batch's index is the position of each row's input record
in its raw batch; operators keep it (or repeat it, for explode) so errors can name their record.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class ColumnExpression(Protocol):
    """A lazy column expression (plan.expr.Expr, built by `s.qty * s.price`), evaluated on a batch."""

    def evaluate(self, frame: pd.DataFrame) -> Any: ...


class Operator:
    """One physical step. `process` must be pure for stateless operators: on an error the runtime
    re-runs it on parts of the batch to find exactly which records fail.

    The runtime calls only what runtime/protocols.py lists; the defaults here are the optional parts.
    """

    stateful = False  # keeps state in stores: checkpointed, restored, counted for late drops
    by_side = False  # a join: batches come through process_side(side, batch), side = index of the input
    late_drops = 0  # records dropped as too late so far (windowed aggregations count them)

    def __init__(self, node):
        self.node = node
        self.children: list[Operator] = []
        self.rejected: dict[int, str] = {}  # position -> reason, for records the last batch refused

    def open(self, ctx) -> None:
        """Take the runtime's context (stores, partition count, clock) before the first batch."""

    def on_idle(self) -> pd.DataFrame | None:
        """Rows to emit because wall-clock time passed (close_after), on each poll round."""
        return None

    def current_rows(self) -> pd.DataFrame | None:
        """A table's whole current state, shown first when a query restores it (None: not a table)."""
        return None

    def process_side(self, side: int, batch: pd.DataFrame) -> pd.DataFrame | None:
        """One batch from input number `side` (called instead of `process` when `by_side`)."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self.node.name

    def process(self, batch: pd.DataFrame) -> pd.DataFrame | None:
        raise NotImplementedError


def evaluate(value: Any, frame: pd.DataFrame) -> Any:
    """Evaluate an expression, a callable over the frame (pandas `assign` style), or pass a constant."""
    if isinstance(value, ColumnExpression):
        return value.evaluate(frame)
    if callable(value):
        return value(frame)
    return value


def describe(value: Any) -> str:
    """A short text for explain(): expressions as written, callables by name."""
    if isinstance(value, ColumnExpression):
        return repr(value)
    if callable(value):
        return getattr(value, "__qualname__", None) or getattr(value, "__name__", None) or repr(value)
    return repr(value)
