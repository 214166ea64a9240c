"""Which stream–table joins re-key their stream through a repartition topic (runtime/repartition.py
makes the copy), decided from the plan alone — explain() shows it, the runtime does it.

    >>> import streamframe as sf
    >>> orders, customers = sf.stream("orders"), sf.table("customers", key="customer_id")
    >>> rekey_plan(orders.join(customers, on="customer_id")._node, {"orders": [orders._node]})[0]
    'customer_id'
"""

from __future__ import annotations

from streamframe.plan import nodes
from streamframe.records import META


def join_column(node: nodes.Join) -> str | None:
    """The stream column a stream–table join looks the table up by, or None (the key, several columns)."""
    on = node.on
    if isinstance(on, (list, tuple)) and len(on) == 1:
        on = on[0]
    if node.join != "stream_table" or not isinstance(on, str) or on in META:
        return None
    return on


def rekey_plan(node: nodes.Join, by_topic: dict) -> tuple[str, list, nodes.KafkaSource] | None:
    """(column, stream sources, table source) when `node`'s stream side can be re-keyed through
    repartition topics; None when the lookup stays in process (see the module's docstring)."""
    on = join_column(node)
    if on is None or node.repartition is False:  # False: the user says the stream is keyed by it already
        return None
    stream_side, table_side = node.parents
    tables = table_side.sources()
    if len(tables) != 1 or not isinstance(tables[0], nodes.KafkaSource) or not tables[0].table:
        return None
    streams = stream_side.sources()
    if not all(isinstance(s, nodes.KafkaSource) and not s.table for s in streams):
        return None
    if any(by_topic.get(s.topic) != [s] for s in streams):  # read elsewhere too, or already a copy
        return None
    if not all(_keeps(n, on) for n in stream_side.walk() if n.parents):
        return None
    return on, streams, tables[0]


def _keeps(node: nodes.Node, on: str) -> bool:
    """Whether `node` passes column `on` on as it came in (else the helper's key could differ)."""
    if isinstance(node, (nodes.Filter, nodes.Select, nodes.Peek, nodes.Rekey, nodes.Concat)):
        return True
    if isinstance(node, nodes.Assign):
        return all(name != on for name, _ in node.columns)
    if isinstance(node, nodes.Explode):
        return node.column != on
    if isinstance(node, nodes.Pandas):
        kwargs = dict(node.kwargs)
        if node.method in ("drop", "dropna"):
            return True
        if node.method == "rename":
            mapping = kwargs.get("columns")
            return isinstance(mapping, dict) and on not in mapping and on not in mapping.values()
        if node.method in ("astype", "fillna"):
            arg = node.args[0] if node.args else kwargs.get("dtype", kwargs.get("value"))
            return isinstance(arg, dict) and on not in arg
    return False  # map, joins, aggregations, anything new: the in-process lookup


def sources_by_topic(root: nodes.Node) -> dict[str, list]:
    """Each topic's sources in a plan (a topic read twice has two)."""
    out: dict[str, list] = {}
    for src in root.sources():
        out.setdefault(getattr(src, "topic", None), []).append(src)
    return out
