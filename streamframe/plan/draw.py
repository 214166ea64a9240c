"""explain() drawn in HTML: one box per operator, arrows from what feeds it, the text beneath.

It reads the text of `plan.explain.explain_text` (one line per operator, then "--> children"), so
the drawing and the text always describe the same topology.

    >>> text = '''Topology
    ...   source-0   Source   topic: trades
    ...              --> filter-1
    ...   filter-1   Filter   (qty > 100)
    ...              --> result'''
    >>> explain_html(text).count('class="sf-op"')
    3
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from streamframe.plan.explain import explain_text
from streamframe.plan.nodes import Node

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 300, 44, 24, 34, 10
_NODE = re.compile(r"^  (\S+)\s+(\S+)\s*(.*)$")
_EDGE = re.compile(r"^\s+--> (.*)$")


@dataclass
class Op:
    name: str
    kind: str
    detail: str = ""
    children: list[str] = field(default_factory=list)


def parse(text: str) -> list[Op]:
    """The operators of an explain() text, in its order (parents first)."""
    ops: list[Op] = []
    for line in str(text).splitlines()[1:]:
        edge = _EDGE.match(line)
        if edge and ops:
            ops[-1].children = [c.strip() for c in edge.group(1).split(",") if c.strip()]
            continue
        node = _NODE.match(line)
        if node:
            ops.append(Op(*node.groups()))
    known = {op.name for op in ops}
    ops += [Op(c, "Sink") for c in dict.fromkeys(c for op in ops for c in op.children) if c not in known]
    return ops


def explain_html(topology) -> str:
    """An HTML drawing of a topology: `topology` is explain()'s text or a plan node."""
    if isinstance(topology, Node):
        topology = explain_text(topology)
    text = str(topology)
    ops = parse(text)
    # rows by the longest path down to the sink, so a side input (a second source, a table) sits
    # right above the operator it feeds instead of at the top with an arrow across other boxes
    height: dict[str, int] = {}
    for op in reversed(ops):  # children come after their parents
        height[op.name] = 1 + max((height.get(c, 0) for c in op.children), default=-1)
    top = max(height.values(), default=0)
    depth = {name: top - h for name, h in height.items()}
    rows: dict[int, list[Op]] = {}
    for op in ops:
        rows.setdefault(depth[op.name], []).append(op)
    widest = max((len(r) for r in rows.values()), default=1)
    width = PAD * 2 + widest * BOX_W + (widest - 1) * GAP_X
    height = PAD * 2 + len(rows) * BOX_H + max(len(rows) - 1, 0) * GAP_Y
    where: dict[str, tuple[float, float]] = {}
    for d, row in rows.items():
        span = len(row) * BOX_W + (len(row) - 1) * GAP_X
        for i, op in enumerate(row):
            where[op.name] = ((width - span) / 2 + i * (BOX_W + GAP_X), PAD + d * (BOX_H + GAP_Y))
    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" class="sf-topology" '
        f'width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="11">',
        '<defs><marker id="sf-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#616161"/></marker></defs>',
    ]
    for op in ops:
        x, y = where[op.name]
        for child in op.children:
            cx, cy = where[child]
            out.append(
                f'<line x1="{x + BOX_W / 2:.1f}" y1="{y + BOX_H:.1f}" '
                f'x2="{cx + BOX_W / 2:.1f}" y2="{cy:.1f}" '
                'stroke="#616161" marker-end="url(#sf-arrow)"/>'
            )
    for op in ops:
        x, y = where[op.name]
        sink = op.kind == "Sink"
        fill, stroke = ("#f5f5f5", "#9e9e9e") if sink else ("#e3f2fd", "#1565c0")
        out.append(
            f'<g class="sf-op" data-name="{html.escape(op.name, quote=True)}">'
            f"<title>{html.escape(f'{op.name} {op.kind} {op.detail}'.strip())}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" '
            f'stroke="{stroke}"/>'
            f'<text x="{x + 8:.1f}" y="{y + 17:.1f}" font-weight="bold">{html.escape(op.kind)}'
            f'<tspan dx="6" font-weight="normal" fill="#616161">{html.escape(op.name)}</tspan></text>'
            f'<text x="{x + 8:.1f}" y="{y + 34:.1f}" fill="#424242">{html.escape(_short(op.detail))}</text>'
            "</g>"
        )
    out.append("</svg>")
    return (
        f'<div class="sf-explain">{"".join(out)}'
        f"<details><summary>as text</summary><pre>{html.escape(text)}</pre></details></div>"
    )


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
