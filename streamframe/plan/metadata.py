"""Which metadata columns a source can leave out of its batches (deferred: built only for surviving rows).

A source's decoded batch carries `_key`, `_timestamp`, `_partition`, `_offset` and `_headers` for every
record, built from the raw batch (a list of Kafka messages) in several passes over all of it. When no
operator reads a column, building it for every record is wasted: a filter keeping a quarter of the
records needs none of them until its output is written. Rows keep their position in the raw batch as
their index, so the columns are filled in at the output for the rows that reached it
(`operators.source.with_metadata`), from the same raw batch.

The analysis is conservative: an operator whose reads are not known from the plan (user functions,
string queries, joins, tables, re-keying, pandas methods) reads every column, and then the source
builds them all. An aggregation reads its group keys and the time and task columns, and
its rows carry metadata of their own, so nothing below it reads the source's.
"""

from __future__ import annotations

from streamframe.plan import nodes
from streamframe.plan.expr import Expr

# The columns a source may leave out; `_tombstone` (a null value) is always built, as sources decide it.
DEFERRABLE = frozenset({"_key", "_timestamp", "_partition", "_offset", "_headers"})

# What an aggregation of a stream reads besides its keys: event time and the task (stream time is per
# task); its output rows carry their own metadata.
_AGGREGATE_READS = frozenset({"_timestamp", "_partition"})


def _reads(value) -> frozenset | None:
    """The metadata columns an argument reads, or None when it cannot be known (a callable)."""
    if isinstance(value, Expr):
        return frozenset(value.columns()) & DEFERRABLE
    return None if callable(value) else frozenset()


def _node_reads(node: nodes.Node) -> frozenset | None:
    """Metadata columns `node` reads from its input rows; None: unknown (all of them)."""
    if isinstance(node, nodes.Filter):
        return None if isinstance(node.mask, str) or node.table else _reads(node.mask)
    if isinstance(node, nodes.Select):
        return frozenset(node.columns) & DEFERRABLE
    if isinstance(node, nodes.Assign):
        reads = frozenset()
        for name, value in node.columns:
            r = _reads(value)
            if r is None or name in DEFERRABLE:
                return None
            reads |= r
        return reads
    if isinstance(node, nodes.Explode):
        return None if node.column in DEFERRABLE else frozenset()
    if isinstance(node, nodes.Concat):
        return frozenset()
    if isinstance(node, nodes.Aggregate) and not node.from_table and node.fold is None:
        return (frozenset(node.keys) & DEFERRABLE) | _AGGREGATE_READS
    return None


def deferred_metadata(root: nodes.Node) -> dict[int, frozenset]:
    """{source node id: the metadata columns it can leave out} for the Kafka sources of `root`'s plan."""
    children: dict[int, list] = {}
    for node in root.walk():
        for parent in node.parents:
            children.setdefault(parent.id, []).append(node)
    out = {}
    for source in root.sources():
        if not isinstance(source, nodes.KafkaSource) or source.table or source.global_table:
            continue
        read, stack, seen = set(), list(children.get(source.id, [])), set()
        while stack and read != DEFERRABLE:
            node = stack.pop()
            if node.id in seen:
                continue
            seen.add(node.id)
            reads = _node_reads(node)
            read |= DEFERRABLE if reads is None else reads
            if not isinstance(node, nodes.Aggregate):  # its output carries its own metadata
                stack.extend(children.get(node.id, []))
        timestamp = source.timestamp
        if not (timestamp is None or (isinstance(timestamp, str) and timestamp == "record")):
            read.add("_timestamp")  # extracted (and checked) while decoding, from the value's columns
        if DEFERRABLE - read:
            out[source.id] = DEFERRABLE - read
    return out
