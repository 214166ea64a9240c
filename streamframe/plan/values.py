"""Which value columns a JSON source must decode (projection), in two kinds of plans.

Spliced: a chain of filters and new columns, from one JSON source to a JSON topic, reads few of a
record's fields and writes the others back unchanged. Decoding and encoding every field is then wasted:
the source decodes only the fields the expressions read, and the sink writes each record's own bytes
with the new fields appended (`serde.json_encode.append_json_fields`).

Aggregated: a chain of filters and new columns from one JSON source into an aggregation reads only the
fields its expressions, group keys and aggregated columns name; nothing after the aggregation sees the
others. The source decodes those fields alone.

A batch the shortcut cannot serve exactly — see `JsonFormat.decode_fields` — is decoded (and encoded)
whole, as without it. The analysis is conservative: only expression filters and assignments (expressions
or constants) between the source and the output or the aggregation, on a single path, qualify; a
function, a string query, a rename, or anything else stateful does not, nor does an aggregation by a
function of whole rows. Spliced, a selection or an assignment to a field the expressions read does not
either.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamframe.plan import nodes
from streamframe.plan.expr import Expr
from streamframe.records import META


@dataclass(frozen=True)
class Projection:
    reads: tuple  # the value fields the source decodes, in a fixed order
    appends: tuple  # the new fields, in the order the output frame has them
    splice: bool = True  # the output takes each record as consumed, with the new fields appended


def _expr_reads(value) -> set | None:
    if isinstance(value, Expr):
        return set(value.columns())
    return None if callable(value) else set()


def value_projection(root: nodes.Node, splice: bool = True) -> dict[int, Projection]:
    """{source id: its Projection} when `root`'s plan is a qualifying chain from one JSON source: into
    an aggregation, or (with `splice`: the output is a JSON topic taking records as consumed) to the
    output."""
    chain, node = [], root
    while not isinstance(node, nodes.KafkaSource):
        if len(node.parents) != 1:
            return {}
        chain.append(node)
        node = node.parents[0]
    source = node
    fmt = source.value_format
    if (
        source.table
        or source.global_table
        or getattr(fmt, "name", None) != "json"
        or fmt.schema is not None
        or callable(source.timestamp)
    ):
        return {}
    reads = set()
    if isinstance(source.timestamp, Expr):
        reads |= source.timestamp.columns()
    elif isinstance(source.timestamp, str) and source.timestamp not in ("record", "processing"):
        reads.add(source.timestamp)
    chain.reverse()  # from the source on
    aggregate = next((i for i, n in enumerate(chain) if isinstance(n, nodes.Aggregate)), None)
    if aggregate is not None:
        return _into_aggregate(source, chain[:aggregate], chain[aggregate], reads)
    return _spliced(source, chain, reads) if splice else {}


def _into_aggregate(source, chain: list, aggregate: nodes.Aggregate, reads: set) -> dict[int, Projection]:
    """The fields an aggregation and the filters and assignments before it read."""
    if aggregate.from_table or aggregate.fold is not None:
        return {}
    needed = set(aggregate.keys)
    for spec in aggregate.specs:
        if isinstance(spec.column, str):
            needed.add(spec.column)
        elif not (spec.column is None and spec.fn == "size"):
            return {}
    for node in reversed(chain):  # from the aggregation back to the source
        if isinstance(node, nodes.Filter) and not node.table and not isinstance(node.mask, str):
            r = _expr_reads(node.mask)
            if r is None:
                return {}
            needed |= r
        elif isinstance(node, nodes.Assign):
            r = set()
            for name, value in node.columns:
                got = _expr_reads(value)
                if got is None or not isinstance(name, str):
                    return {}
                r |= got
            needed = (
                needed - {name for name, _ in node.columns}
            ) | r  # a field it overwrites need not be read
        else:
            return {}
    return {source.id: Projection(tuple(sorted((needed | reads) - set(META))), (), splice=False)}


def _spliced(source, chain: list, reads: set) -> dict[int, Projection]:
    """The fields read by filters and new columns on their way to a JSON topic, and the new fields."""
    appends = []
    for node in chain:
        if isinstance(node, nodes.Filter) and not node.table and not isinstance(node.mask, str):
            r = _expr_reads(node.mask)
        elif isinstance(node, nodes.Assign):
            r = set()
            for name, value in node.columns:
                got = _expr_reads(value)
                if got is None or not isinstance(name, str) or name in META or name in reads or name in r:
                    return {}
                r |= got
            appends += [
                name for name, _ in node.columns if name not in appends
            ]  # pandas keeps a column's place
        else:
            return {}
        if r is None or r & set(appends):  # reading a new column: fine for pandas, but keep it simple
            return {}
        reads |= r
    reads -= set(META)
    if set(appends) & reads:
        return {}
    return {source.id: Projection(tuple(sorted(reads)), tuple(appends))}
