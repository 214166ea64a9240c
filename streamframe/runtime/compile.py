"""Plan → physical operators: one operator per node, wired parent → child."""

from __future__ import annotations

from streamframe.operators import join, session, sliding, source, stateless, stream_join, table, window
from streamframe.operators.base import Operator
from streamframe.operators.window_columnar import WindowAggregateOp
from streamframe.plan import nodes

_OPERATORS = {
    nodes.KafkaSource: source.DecodeSource,
    nodes.DataFrameSource: source.DataFrameSourceOp,
    nodes.Filter: stateless.FilterOp,
    nodes.Select: stateless.SelectOp,
    nodes.Assign: stateless.AssignOp,
    nodes.Map: stateless.MapOp,
    nodes.Peek: stateless.PeekOp,
    nodes.Explode: stateless.ExplodeOp,
    nodes.Rekey: stateless.RekeyOp,
    nodes.Pandas: stateless.PandasOp,
    nodes.Concat: stateless.ConcatOp,
    nodes.TableFromStream: table.TableFromStreamOp,
}


_JOINS = {"stream_table": join.StreamTableJoinOp, "global": join.StreamTableJoinOp,
          "table_table": join.TableTableJoinOp, "asof": join.AsofJoinOp,
          "stream_stream": stream_join.StreamStreamJoinOp}


def _operator(node: nodes.Node) -> Operator:
    if isinstance(node, nodes.Join):
        return _JOINS[node.join](node)
    if isinstance(node, nodes.Aggregate):
        if node.from_table:
            return table.TableAggregateOp(node)
        if node.window is not None and node.window.kind == "session":
            return session.SessionAggregateOp(node)
        if node.window is not None and node.window.kind == "sliding":
            return sliding.SlidingAggregateOp(node)
        if columnar(node):
            return WindowAggregateOp(node)
        return window.AggregateOp(node)
    return _OPERATORS[type(node)](node)


def columnar(node: nodes.Aggregate) -> bool:
    """Tumbling/hopping windows with named aggregations run on a WindowStore (int64-coded state);
    folds (reduce/aggregate), which need whole rows per group key, and unwindowed ones do not."""
    return node.window is not None and node.window.kind in ("tumbling", "hopping") and node.fold is None


def compile_plan(root: nodes.Node) -> tuple[dict[int, Operator], Operator]:
    """Build the operators of every node under `root`; returns ({node id: operator}, root operator)."""
    ops: dict[int, Operator] = {}
    for node in root.walk():
        op = _operator(node)
        ops[node.id] = op
        for parent in node.parents:
            ops[parent.id].children.append(op)
    return ops, ops[root.id]
