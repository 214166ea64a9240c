"""explain(): the topology as text, in the spirit of Kafka Streams' Topology.describe().

    Topology
      source-0   Source   topic: trades, key: text, value: json, timestamp: record
                 --> filter-1
      filter-1   Filter   (qty > 100)
                 --> sink
"""

from __future__ import annotations

from streamframe.plan.nodes import Node


def explain_text(root: Node, sink: str = "result") -> str:
    order = root.walk()
    children: dict[int, list[str]] = {n.id: [] for n in order}
    for n in order:
        for p in n.parents:
            children[p.id].append(n.name)
    children[root.id].append(sink)
    width = max(len(n.name) for n in order) + 2
    kwidth = max(len(n.kind) for n in order) + 2
    lines = ["Topology"]
    for n in order:
        lines.append(f"  {n.name:<{width}}{n.kind:<{kwidth}}{n.detail()}".rstrip())
        lines.append(f"  {'':<{width}}--> {', '.join(children[n.id])}")
    return "\n".join(lines)


def fingerprint(root: Node) -> str:
    """A stable short hash of what the topology does, used to name a query that has no name."""
    import hashlib

    parts = []
    for n in root.walk():
        parts.append(f"{n.kind}:{n.detail()}")
        for value in vars(n).values():
            code = getattr(value, "__code__", None)
            if code is not None:
                parts.append(code.co_code.hex() + repr(code.co_consts))
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:8]
