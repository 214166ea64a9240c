"""Which value columns a JSON source must decode when its records go on to a JSON topic (projection).

A chain of filters and new columns, from one JSON source to a JSON topic, reads few of a record's
fields and writes the others back unchanged. Decoding and encoding every field is then wasted: the
source decodes only the fields the expressions read, and the sink writes each record's own bytes with
the new fields appended (`serde.json_encode.append_json_fields`). A batch the shortcut cannot serve
exactly — see `JsonFormat.decode_fields` — is decoded and encoded whole, as without it.

The analysis is conservative: only expression filters and assignments of new columns (expressions or
constants) between the source and the output, on a single path, qualify; a function, a string query,
a selection, a rename, an assignment to a field the expressions read, or anything stateful does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamframe.frames.expr import Expr
from streamframe.operators.records import META
from streamframe.plan import nodes


@dataclass(frozen=True)
class Projection:
    reads: tuple  # the value fields the source decodes, in a fixed order
    appends: tuple  # the new fields, in the order the output frame has them


def _expr_reads(value) -> set | None:
    if isinstance(value, Expr):
        return set(value.columns())
    return None if callable(value) else set()


def value_projection(root: nodes.Node) -> dict[int, Projection]:
    """{source id: its Projection} when `root`'s plan is a qualifying chain from one JSON source."""
    chain, node = [], root
    while not isinstance(node, nodes.KafkaSource):
        if len(node.parents) != 1:
            return {}
        chain.append(node)
        node = node.parents[0]
    source = node
    fmt = source.value_format
    if (source.table or source.global_table or getattr(fmt, "name", None) != "json" or fmt.schema is not None
            or callable(source.timestamp)):
        return {}
    reads, appends = set(), []
    if isinstance(source.timestamp, Expr):
        reads |= source.timestamp.columns()
    elif isinstance(source.timestamp, str) and source.timestamp not in ("record", "processing"):
        reads.add(source.timestamp)
    for node in reversed(chain):  # from the source on
        if isinstance(node, nodes.Filter) and not node.table and not isinstance(node.mask, str):
            r = _expr_reads(node.mask)
        elif isinstance(node, nodes.Assign):
            r = set()
            for name, value in node.columns:
                got = _expr_reads(value)
                if got is None or not isinstance(name, str) or name in META or name in reads or name in r:
                    return {}
                r |= got
            appends += [name for name, _ in node.columns if name not in appends]  # pandas keeps a column's place
        else:
            return {}
        if r is None or r & set(appends):  # reading a new column: fine for pandas, but keep it simple
            return {}
        reads |= r
    reads -= set(META)
    if set(appends) & reads:
        return {}
    return {source.id: Projection(tuple(sorted(reads)), tuple(appends))}
