"""The live view's chart: a plotly FigureWidget, one line per key, with hover, zoom and legend toggling.

Chosen by the cost of an update (benchmarks/live_view.py, figures in benchmarks/README.md): with one
series per key it costs the kernel what bqplot does, and hover, zoom and a clickable legend come with
it in the browser, where Vega-Lite re-sends its whole spec. x goes as epoch milliseconds on a date axis
(binary arrays, not text). A key keeps its trace while it stays in the top keys, so what the user hid
in the legend stays hidden; `uirevision` keeps the zoom. The static snapshot draws chart.chart_svg.

    >>> import pandas as pd
    >>> from streamframe.display.chart import PlotSpec
    >>> rows = pd.DataFrame({"k": ["a", "a", "b"], "window_start": pd.to_datetime([0, 5, 0], unit="s"),
    ...                      "n": [1, 2, 5]})
    >>> c = LiveChart(PlotSpec(y="n", by=("k",)))
    >>> c.show(rows)
    >>> [(t.name, t.y.tolist()) for t in c.figure.data]
    [('b', [5.0]), ('a', [1.0, 2.0])]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from streamframe.display.chart import PALETTE, PlotSpec, series

HEIGHT = 300


class LiveChart:
    """`figure` (the FigureWidget a view shows) drawn from a table's rows by `show(rows)`."""

    def __init__(self, spec: PlotSpec):
        import plotly.graph_objects as go

        self.spec = spec
        self.figure = go.FigureWidget(
            layout=dict(
                height=HEIGHT,
                margin=dict(l=60, r=20, t=36, b=40),
                hovermode="x unified",
                uirevision="streamframe",  # keep the user's zoom and legend choices across updates
                legend=dict(title=dict(text=", ".join(spec.by))),
                xaxis=dict(title=dict(text=spec.x)),
                template="plotly_white",
            )
        )
        self.figure.add_class("sf-chart")
        self._slots: dict[str, int] = {}  # key -> trace index

    @property
    def keys(self) -> list[str]:
        """The keys drawn now, biggest first."""
        return [t.name for t in self.figure.data if t.showlegend is not False]

    def show(self, rows: pd.DataFrame) -> None:
        y, lines = series(rows, self.spec)
        spec, fig = self.spec, self.figure
        missing = [
            c for c in (spec.x, spec.y, *spec.by) if c is not None and len(rows.columns) and c not in rows
        ]
        if missing:
            title = f"plot: no column {', '.join(missing)}; columns are {', '.join(map(str, rows.columns))}"
        else:
            title = f"{y or '?'} by {', '.join(spec.by) or 'row'}" if lines else "waiting for data"
        with fig.batch_update():
            fig.layout.title.text = title
            fig.layout.yaxis.title.text = y or ""
            for key, _ in lines:
                if key not in self._slots:
                    index = self._slots[key] = len(fig.data)
                    fig.add_scatter(
                        name=key or y,
                        mode="lines+markers",
                        marker=dict(size=4),
                        line=dict(color=PALETTE[index % len(PALETTE)]),
                    )
            drawn = {key: points for key, points in lines}
            for key, index in self._slots.items():
                trace = fig.data[index]
                points = drawn.get(key)
                if points is None:  # out of the top keys: no line, no legend entry (its choice is kept)
                    trace.x, trace.y, trace.showlegend = [], [], False
                    continue
                trace.x, trace.y = _x(points["x"]), points["y"].to_numpy(float)
                trace.showlegend = True
                if fig.layout.xaxis.type != ("date" if _is_time(points["x"]) else "linear"):
                    fig.layout.xaxis.type = "date" if _is_time(points["x"]) else "linear"

    def close(self) -> None:
        self.figure.close()


def _is_time(values: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(values)


def _x(values: pd.Series) -> np.ndarray:
    if _is_time(values):
        values = pd.to_datetime(values)
        if values.dt.tz is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return values.to_numpy().astype("datetime64[ms]").astype("int64")  # a date axis reads epoch ms
    return values.to_numpy(float)
