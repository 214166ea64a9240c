"""explain(): the topology as text, in the spirit of Kafka Streams' Topology.describe().

    Topology
      source-0   Source   topic: trades, key: text, value: json, timestamp: record
                 --> filter-1
      filter-1   Filter   (qty > 100)
                 --> sink
"""

from __future__ import annotations

from streamframe.plan.nodes import Join, Node
from streamframe.plan.rekey import rekey_plan, sources_by_topic


def explain_text(root: Node, sink: str = "result") -> str:
    order = root.walk()
    children: dict[int, list[str]] = {n.id: [] for n in order}
    for n in order:
        for p in n.parents:
            children[p.id].append(n.name)
    children[root.id].append(sink)
    width = max(len(n.name) for n in order) + 2
    kwidth = max(len(n.kind) for n in order) + 2
    by_topic = sources_by_topic(root)
    lines = ["Topology"]
    for n in order:
        detail = n.detail()
        plan = rekey_plan(n, by_topic) if isinstance(n, Join) else None
        if plan is not None:  # the copy the runtime makes (runtime/repartition.py)
            detail += f"; the stream re-keyed by {plan[0]} through a repartition topic"
        lines.append(f"  {n.name:<{width}}{n.kind:<{kwidth}}{detail}".rstrip())
        lines.append(f"  {'':<{width}}--> {', '.join(children[n.id])}")
    return "\n".join(lines)


def fingerprint(root: Node) -> str:
    """A stable short hash of what the topology does, used to name a query that has no name: every
    node's arguments (a DataFrame by its content, a function by its code), not node ids."""
    import dataclasses
    import hashlib

    import pandas as pd

    def part(value) -> str:
        if isinstance(value, pd.DataFrame):
            return f"frame:{int(pd.util.hash_pandas_object(value, index=False).sum())}:{list(value.columns)}"
        code = getattr(value, "__code__", None)
        if code is not None:
            return code.co_code.hex() + repr(code.co_consts)
        if isinstance(value, (tuple, list)):
            return "(" + ",".join(part(v) for v in value) + ")"
        return repr(value)

    order = root.walk()
    position = {n.id: i for i, n in enumerate(order)}
    parts = []
    for n in order:
        fields = [f.name for f in dataclasses.fields(n) if f.name not in ("parents", "id")]
        parts.append(f"{n.kind}:{n.detail()}:" + ";".join(part(getattr(n, f)) for f in fields))
        parts.append(",".join(str(position[p.id]) for p in n.parents))
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:8]
