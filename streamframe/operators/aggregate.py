"""Incremental aggregation on batches: a batch's partial aggregates per group, combined with state.

Each named aggregation keeps a small state per group that two partials can be combined from, so a
batch is aggregated with one pandas groupby and merged with the stored groups in a few vectorized
column operations:

    count/size/sum → added;  mean → (sum, n) added;  min/max → the smaller/larger;
    first → the stored one if any;  last → the newest;  nunique → a set, united;
    a callable → the group's values, kept, and the callable applied to them.

The specs (plan/aggregations.py) say what; this module computes it. `reduce` and `aggregate(init, add)`
fold records one by one, in order, as Kafka Streams does (plan.aggregations.Fold).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def state_columns(spec, i: int) -> list[str]:
    if spec.fn == "mean":
        return [f"{i}:sum", f"{i}:n"]
    return [f"{i}:{spec.fn if isinstance(spec.fn, str) else 'values'}"]


def partial(grouped, specs) -> pd.DataFrame:
    """The batch's state per group (grouped: a DataFrameGroupBy)."""
    cols = {}
    for i, spec in enumerate(specs):
        fn = spec.fn
        if fn == "size" or (fn == "count" and spec.column is None):
            cols[f"{i}:{fn}"] = grouped.size()
            continue
        g = grouped[spec.column]
        if fn == "mean":
            cols[f"{i}:sum"] = g.sum()
            cols[f"{i}:n"] = g.count()
        elif fn == "nunique":
            cols[f"{i}:nunique"] = g.agg(lambda s: set(s.dropna()))
        elif callable(fn):
            cols[f"{i}:values"] = g.agg(list)
        else:
            cols[f"{i}:{fn}"] = getattr(g, fn)()
    return pd.DataFrame(cols)


def combine(old: pd.DataFrame, new: pd.DataFrame, specs) -> pd.DataFrame:
    """Stored state (aligned to `new`'s index, NaN where a group is new) combined with a partial."""
    out = {}
    for i, spec in enumerate(specs):
        for col in state_columns(spec, i):
            a, b = old[col] if col in old else pd.Series(np.nan, index=new.index), new[col]
            kind = col.split(":", 1)[1]
            if kind in ("count", "size", "sum", "n"):
                out[col] = _keep_int(a.fillna(0) + b, b)
            elif kind in ("min", "max"):
                both = pd.concat([a, b], axis=1)
                out[col] = _keep_int(getattr(both, kind)(axis=1), b)
            elif kind == "first":
                out[col] = a.where(a.notna(), b)
            elif kind == "last":
                out[col] = b.where(b.notna(), a)
            elif kind == "nunique":
                out[col] = [y if not isinstance(x, set) else x | y for x, y in zip(a.tolist(), b.tolist())]
            else:  # values of a callable aggregation
                out[col] = [y if not isinstance(x, list) else x + y for x, y in zip(a.tolist(), b.tolist())]
    return pd.DataFrame(out, index=new.index)


def _keep_int(result: pd.Series, like: pd.Series) -> pd.Series:
    # Stored state comes back as float where a group was missing; an int column stays int.
    if pd.api.types.is_integer_dtype(like.dtype) and result.notna().all():
        return result.astype(like.dtype)
    return result


def finalize(state: pd.DataFrame, specs) -> pd.DataFrame:
    """The user-facing aggregate columns from state columns."""
    out = {}
    for i, spec in enumerate(specs):
        fn = spec.fn
        if fn == "mean":
            n = state[f"{i}:n"]
            out[spec.out] = state[f"{i}:sum"] / n.where(n != 0)
        elif fn == "nunique":
            out[spec.out] = [len(x) if isinstance(x, set) else 0 for x in state[f"{i}:nunique"]]
        elif callable(fn):
            out[spec.out] = [fn(pd.Series(v)) for v in state[f"{i}:values"]]
        else:
            values = state[f"{i}:{fn}"]
            if fn in ("count", "size"):
                values = values.astype("int64")
            out[spec.out] = values
    return pd.DataFrame(out, index=state.index)


def one(kind: str, value):
    """A single record's contribution to one state column."""
    missing = value is None or (isinstance(value, float) and value != value)
    if kind in ("count", "n"):
        return 0 if missing else 1
    if kind == "size":
        return 1
    if kind == "sum":
        return 0 if missing else value
    if kind == "nunique":
        return set() if missing else {value}
    if kind == "values":
        return [] if missing else [value]
    return None if missing else value  # min, max, first, last


def merge(kind: str, a, b):
    """Combine two state values, `a` from the earlier session."""
    if a is None or (isinstance(a, float) and a != a):
        return b
    if b is None or (isinstance(b, float) and b != b):
        return a
    if kind in ("count", "n", "size", "sum"):
        return a + b
    if kind == "min":
        return min(a, b)
    if kind == "max":
        return max(a, b)
    if kind == "first":
        return a
    if kind == "last":
        return b
    if kind == "nunique":
        return a | b
    return a + b  # values
