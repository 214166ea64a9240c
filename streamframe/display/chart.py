"""What a chart draws (`PlotSpec`, `series`: the top keys' points), and the chart as inline SVG: one
polyline per key, over `window_start` by default.

The live widget draws with plotly (display/plot.py); the SVG is the static fallback, text that renders
wherever widgets do not (the HTML snapshot nbval and nbconvert keep, a saved notebook) and tests can read.

    >>> import pandas as pd
    >>> rows = pd.DataFrame({"symbol": ["A", "A", "B"], "window_start": pd.to_datetime([0, 10, 0], unit="s"),
    ...                      "volume": [5, 7, 3]})
    >>> chart_svg(rows, PlotSpec(x="window_start", y="volume", by=("symbol",))).count("<polyline")
    2
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd

from streamframe.errors import ConfigError

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
           "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 120, 14, 30  # margins: y labels on the left, the legend on the right


@dataclass(frozen=True)
class PlotSpec:
    """What to draw: `y` over `x`, one series per value of the `by` columns, the `top` biggest keys
    (by the sum of `y` over the points drawn), the last `points` values of `x`."""

    x: str = "window_start"
    y: str | None = None
    by: tuple[str, ...] = ()
    top: int = 5
    points: int = 100


def plot_spec(plot, keys, columns=None, top: int = 5) -> PlotSpec:
    """A PlotSpec from `plot=dict(x=, y=, by=)` (or True for the defaults): x defaults to window_start,
    by to the table's keys, y to the first numeric value column (chosen when rows arrive)."""
    if isinstance(plot, PlotSpec):
        return plot
    opts = {} if plot is True or plot is None else dict(plot)
    unknown = set(opts) - {"x", "y", "by", "top", "points"}
    if unknown:
        raise ConfigError(f"plot= takes x, y, by, top and points, got {', '.join(sorted(unknown))}")
    by = opts.get("by")
    by = tuple(keys) if by is None else ((by,) if isinstance(by, str) else tuple(by))
    spec = PlotSpec(x=opts.get("x") or "window_start", y=opts.get("y"), by=by, top=int(opts.get("top", top)),
                    points=int(opts.get("points", 100)))
    if columns is not None:
        missing = [c for c in (spec.x, spec.y, *spec.by) if c is not None and c not in columns]
        if missing:
            raise ConfigError(f"plot: no column {', '.join(missing)}; the table has {', '.join(columns)}")
    return spec


def default_y(rows: pd.DataFrame, spec: PlotSpec) -> str | None:
    skip = {spec.x, "window_end", *spec.by}
    for col in rows.columns:
        if (
            col not in skip
            and pd.api.types.is_numeric_dtype(rows[col])
            and not pd.api.types.is_bool_dtype(rows[col])
        ):
            return col
    return None


def series(rows: pd.DataFrame, spec: PlotSpec) -> tuple[str | None, list[tuple[str, pd.DataFrame]]]:
    """(y column, [(key label, points sorted by x with columns x, y)]) for the top keys, biggest first."""
    y = spec.y or default_y(rows, spec)
    if y is None or rows.empty or spec.x not in rows or y not in rows:
        return y, []
    by = [c for c in spec.by if c in rows.columns]
    data = rows[[spec.x, y, *by]].dropna(subset=[spec.x, y])
    xs = pd.Index(data[spec.x].unique()).sort_values()
    data = data[data[spec.x].isin(xs[-spec.points :])]
    label = pd.Series("", index=data.index)
    for i, col in enumerate(by):
        label = (label + " / " if i else label) + data[col].astype(str)
    x = data[spec.x]
    if isinstance(x.dtype, pd.DatetimeTZDtype):  # once, as naive UTC: a zoned column would become objects
        x = x.dt.tz_convert("UTC").dt.tz_localize(None)
    data = pd.DataFrame({"x": x.to_numpy(), "y": data[y].astype(float).to_numpy(), "key": label.to_numpy()})
    groups = dict(tuple(data.groupby("key", sort=True)))
    totals = {k: g["y"].sum() for k, g in groups.items()}
    ranked = sorted(totals, key=lambda k: (-totals[k], k))[: spec.top]  # ties: by name, stable
    return y, [(k, groups[k].sort_values("x", kind="stable")) for k in ranked]


def chart_svg(rows: pd.DataFrame, spec: PlotSpec, width: int = WIDTH, height: int = HEIGHT) -> str:
    """The chart of `rows` (a table as plain rows) as an SVG document; a one-line message instead of
    lines while there are no rows, or when the plot names a column the table does not have."""
    y, lines = series(rows, spec)
    title = f"{y or '?'} by {', '.join(spec.by) or 'row'} over {spec.x}"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sf-chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">'
        f"<title>{html.escape(title)}</title>"
    )
    missing = [c for c in (spec.x, spec.y, *spec.by) if c is not None and len(rows.columns) and c not in rows]
    if missing or not lines:
        note = (
            f"plot: no column {', '.join(missing)}; columns are {', '.join(map(str, rows.columns))}"
            if missing
            else "waiting for data"
        )
        return (
            head + f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" fill="#757575">'
            f"{html.escape(note)}</text></svg>"
        )
    allx = pd.concat([s["x"] for _, s in lines])
    ally = pd.concat([s["y"] for _, s in lines])
    x0, x1 = _num(allx.min()), _num(allx.max())
    y0, y1 = min(0.0, float(ally.min())), max(0.0, float(ally.max()))
    pw, ph = width - LEFT - RIGHT, height - TOP - BOTTOM

    def px(v) -> float:
        return LEFT + (pw / 2 if x1 == x0 else (_num(v) - x0) / (x1 - x0) * pw)

    def py(v) -> float:
        return TOP + ph - (0.0 if y1 == y0 else (v - y0) / (y1 - y0) * ph)

    out = [
        head,
        f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#e0e0e0"/>',
        _label(LEFT - 6, TOP + 4, _fmt(y1), "end"),
        _label(LEFT - 6, TOP + ph, _fmt(y0), "end"),
        _label(LEFT, height - 10, _xlabel(allx.min()), "start"),
        _label(LEFT + pw, height - 10, _xlabel(allx.max(), allx.min()), "end"),
        f'<text x="{LEFT + pw / 2:.0f}" y="{height - 10}" text-anchor="middle" fill="#757575">'
        f"{html.escape(spec.x)}</text>",
    ]
    for i, (key, points) in enumerate(lines):
        color = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(points["x"], points["y"]))
        last_x, last_y = points["x"].iloc[-1], points["y"].iloc[-1]
        out.append(
            f'<g class="sf-series" data-key="{html.escape(key, quote=True)}">'
            f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"/>'
            f'<circle cx="{px(last_x):.1f}" cy="{py(last_y):.1f}" r="2.5" fill="{color}"/></g>'
        )
        out.append(
            f'<text x="{LEFT + pw + 10}" y="{TOP + 10 + 14 * i}" fill="{color}">'
            f"{html.escape(_short(key or y))}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _num(v) -> float:
    if isinstance(v, pd.Timestamp):
        return float(v.value) / 1e6  # epoch ms
    return float(v)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:,.3g}"


def _xlabel(v, other=None) -> str:
    if isinstance(v, pd.Timestamp):
        ts = v.tz_convert("UTC").tz_localize(None) if v.tzinfo is not None else v
        same_day = other is not None and isinstance(other, pd.Timestamp) and other.date() == v.date()
        return ts.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")
    return _fmt(float(v))


def _label(x, y, text: str, anchor: str) -> str:
    return f'<text x="{x}" y="{y}" text-anchor="{anchor}" fill="#616161">{html.escape(text)}</text>'


def _short(text: str, limit: int = 16) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
