"""What an aggregation computes, as the frames API wrote it: named aggregations (`AggSpec`) and folds
(`Fold`, for reduce / aggregate(init, add)). The operators (operators/aggregate.py) compute them.

    >>> named_specs({"volume": ("qty", "sum")})
    (AggSpec(out='volume', column='qty', fn='sum'),)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamframe.errors import ConfigError

BUILTINS = ("count", "size", "sum", "mean", "min", "max", "first", "last", "nunique")


@dataclass(frozen=True)
class AggSpec:
    out: str
    column: Any  # a column name, or None for size / whole-row folds
    fn: Any  # a BUILTINS name or a callable over a Series

    def describe(self) -> str:
        fn = self.fn if isinstance(self.fn, str) else getattr(self.fn, "__name__", "fn")
        return f"{self.out}={fn}({self.column if self.column is not None else ''})"


def named_specs(named: dict) -> tuple[AggSpec, ...]:
    """pandas named aggregation: {out: (column, fn)} → specs."""
    specs = []
    for out, value in named.items():
        if not isinstance(value, tuple) or len(value) != 2:
            raise ConfigError(f"agg({out}=...) takes a (column, function) pair, e.g. {out}=('qty', 'sum')")
        column, fn = value
        check_fn(fn)
        specs.append(AggSpec(out, column, fn))
    if not specs:
        raise ConfigError("agg() needs at least one named aggregation, e.g. agg(volume=('qty', 'sum'))")
    return tuple(specs)


def check_fn(fn) -> None:
    if isinstance(fn, str) and fn not in BUILTINS:
        raise ConfigError(f"unknown aggregation {fn!r}; use one of {', '.join(BUILTINS)} or a function")
    if not isinstance(fn, str) and not callable(fn):
        raise ConfigError(f"an aggregation is a name such as 'sum' or a function, got {type(fn).__name__}")


class Fold:
    """reduce / aggregate(init, add): a per-record fold of rows (dicts) in input order."""

    def __init__(self, init, add, column=None):
        self.init, self.add, self.column = init, add, column

    def run(self, groups: list, rows: list, current: dict) -> dict:
        """Fold `rows` (in order) into `current` {group: value}; returns the changed groups' values."""
        changed = {}
        for g, row in zip(groups, rows):
            value = changed[g] if g in changed else current.get(g, _MISSING)
            if value is _MISSING:
                value = self.init(row) if self.init is not None else row
            else:
                value = self.add(value, row)
            changed[g] = value
        return changed


_MISSING = object()
