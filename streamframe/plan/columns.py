"""Which value columns a plan node names, so that a name no record has is caught as the mistake it is.

A frame that names a column no record of its input has — `s[s.qtty > 1]` for `qty` — is a programming
error, as `df["qtty"]` is in pandas, not a bad record: the runtime checks each operator's first batch
against the columns its node reads (`reads`) and fails the query with `unknown_column` (the column, the
columns seen and the closest match) instead of dead-lettering every record. A record lacking a column
other records have is still bad data, and goes to the dead-letter topic.

    >>> from streamframe.plan.expr import col
    >>> sorted(reads(nodes.Filter((), mask=(col("qty") > 1) & (col("_key") == "a"))))
    ['qty']
    >>> str(unknown_column(nodes.Filter((), mask=col("qtty") > 1), "qtty", ["symbol", "qty"], 3))
    "no column 'qtty': filter (qtty > 1) reads it, but none of the first 3 records has it \
(columns: symbol, qty); did you mean 'qty'?"
"""

from __future__ import annotations

import difflib

from streamframe.errors import UnknownColumnError
from streamframe.plan import nodes
from streamframe.plan.expr import Expr
from streamframe.records import META


def _expr(value) -> set:
    return set(value.columns()) if isinstance(value, Expr) else set()


def reads(node: nodes.Node) -> frozenset:
    """The value columns `node` reads from its input by name (functions and query strings: none known)."""
    names: set = set()
    if isinstance(node, nodes.Filter):
        names = _expr(node.mask)
    elif isinstance(node, nodes.Assign):
        made: set = set()
        for name, value in node.columns:  # in order: a later column may read an earlier one, as in pandas
            names |= _expr(value) - made
            made.add(name)
    elif isinstance(node, nodes.Select):
        names = set(node.columns)
    elif isinstance(node, nodes.Rekey):
        names = {node.key} if isinstance(node.key, str) else _expr(node.key)
    elif isinstance(node, nodes.Explode):
        names = {node.column}
    elif isinstance(node, nodes.TableFromStream):
        names = set(node.keys)
    elif isinstance(node, nodes.Aggregate):
        names = set(node.keys) | {s.column for s in node.specs if isinstance(s.column, str)}
        column = getattr(node.fold, "column", None)
        if isinstance(column, str):
            names.add(column)
    return frozenset(n for n in names if isinstance(n, str) and n not in META)


def closest(name: str, columns) -> str | None:
    """The column most like `name` (difflib), or None when none is close."""
    found = difflib.get_close_matches(name, [str(c) for c in columns], n=1)
    if not found:  # a difference of case alone: difflib may not rate it close enough on short names
        found = [c for c in map(str, columns) if c.lower() == name.lower()][:1]
    return found[0] if found else None


def unknown_column(node: nodes.Node, name: str, columns, records: int | None = None) -> UnknownColumnError:
    """The error for `node` reading column `name`, which none of `records` records with `columns` has."""
    seen = [str(c) for c in columns if c not in META]
    match = closest(name, seen)
    where = ("none of the records has it" if records is None else "the first record has no such column"
             if records == 1 else f"none of the first {records:,} records has it")
    detail = node.detail()
    what = detail if detail.startswith("(") and detail.endswith(")") else f"({detail})"
    return UnknownColumnError(
        f"no column {name!r}: {node.kind.lower()} {what} reads it, but {where} "
        f"(columns: {', '.join(seen) or 'none'})" + (f"; did you mean {match!r}?" if match else "")
    )
