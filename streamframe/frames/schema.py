"""What a frame can tell of its columns before it runs: a small sample of its input pushed through the
plan as far as the plan can tell (filters, selections, assignments, drop/rename/astype...).

A Kafka source's sample is a few of its topic's last records (session.sample: cached, bounded in time);
an in-memory source's is its DataFrame's first rows; a CSV source with a schema knows its columns without
records. Where the plan cannot tell (a function over the batch, a join, an aggregation), or the sample is
not there (no connection yet, an empty or missing topic, no answer in time), the columns are unknown
(None) and nothing is refused for it.

    >>> import pandas as pd, streamframe as sf
    >>> s = sf.from_pandas(pd.DataFrame({"qty": [1, 2], "price": [1.5, 2.0]}))
    >>> list(sample_frame(s.assign(notional=s.qty * s.price)[["qty", "notional"]]._node).dtypes.astype(str))
    ['int64', 'float64']
"""

from __future__ import annotations

import weakref

import pandas as pd

from streamframe import session
from streamframe.plan import nodes
from streamframe.plan.expr import Expr
from streamframe.records import META

_decoded: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # source node -> (raw, its frame)
_SAME = (nodes.Filter, nodes.Peek, nodes.Explode, nodes.Rekey)  # rows change, columns do not


def sample_frame(node: nodes.Node, connect: bool = False) -> pd.DataFrame | None:
    """A few rows with the value columns (and dtypes) `node`'s frame has, or None when unknown.
    `connect`: a Kafka source may connect (the default connection) to take its sample."""
    try:
        return _sample(node, connect)
    except Exception:  # noqa: BLE001 - telling columns is a courtesy: never an error of its own
        return None


def _sample(node, connect):
    if isinstance(node, nodes.DataFrameSource):
        return node.frame.head(session.SAMPLE_RECORDS)
    if isinstance(node, nodes.KafkaSource):
        return _topic_sample(node, connect)
    if not node.parents:
        return None
    parent = _sample(node.parents[0], connect) if len(node.parents) == 1 else None
    if isinstance(node, nodes.Concat):
        parts = [_sample(p, connect) for p in node.parents]
        return None if any(p is None for p in parts) else pd.concat(parts, ignore_index=True)
    if parent is None:
        return None
    if isinstance(node, _SAME):
        return parent
    if isinstance(node, nodes.Select):
        return parent[list(node.columns)] if set(node.columns) <= set(parent.columns) else None
    if isinstance(node, nodes.Assign):
        return _assigned(parent, node.columns)
    if isinstance(node, nodes.Pandas):
        return _pandas(parent, node)
    return None


def _topic_sample(node: nodes.KafkaSource, connect: bool) -> pd.DataFrame | None:
    fmt = node.value_format
    if fmt.columns is not None:  # a schema says what every record has
        return fmt.apply_schema(pd.DataFrame(index=pd.RangeIndex(0)))
    raw = session.sample(node.topic, connect)
    if raw is None:
        return None
    conn = session.current()
    if conn is not None:  # a format of a Schema Registry reads the sample through the connection's
        from streamframe.serde import attach_registry

        attach_registry(fmt, conn.schema_registry)
    cached = _decoded.get(node)
    if cached is None or cached[0] is not raw:
        from streamframe.errors import StreamframeError

        try:
            frame = fmt.decode(raw.values).frame
        except StreamframeError:  # e.g. a registry that does not answer: asked once per sample, not per use
            frame = pd.DataFrame()
        cached = (raw, frame if len(frame) else None)  # no record decoded: nothing to tell by
        _decoded[node] = cached
    return cached[1]


def _assigned(frame: pd.DataFrame, columns) -> pd.DataFrame:
    out = frame.copy()
    for name, value in columns:
        if isinstance(value, Expr):
            try:
                out[name] = value.evaluate(out)
                continue
            except Exception:  # noqa: BLE001 - a sample row the expression fails on: type unknown
                pass
        elif not callable(value):
            out[name] = value
            continue
        out[name] = pd.Series([None] * len(out), index=out.index, dtype=object)  # a function: not run
    return out


def _pandas(frame: pd.DataFrame, node: nodes.Pandas) -> pd.DataFrame | None:
    kwargs = dict(node.kwargs)
    if node.method == "drop":
        return frame.drop(columns=kwargs.get("columns", []), errors="ignore")
    if node.method == "rename":
        return frame.rename(columns=kwargs.get("columns"))
    if node.method == "astype":
        try:
            return frame.astype(*node.args, **kwargs)
        except (ValueError, TypeError, KeyError):
            return frame
    return frame  # dropna, fillna: the same columns


def value_columns(frame: pd.DataFrame) -> list:
    return [c for c in frame.columns if c not in META]
