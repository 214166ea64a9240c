"""The live view's chart: a plotly FigureWidget, one line per key, with hover, zoom and legend toggling.

Chosen by the cost of an update (benchmarks/live_view.py, figures in benchmarks/README.md): with one
series per key it costs the kernel half what bqplot does, and hover, zoom and a clickable legend come
with it in the browser, where Vega-Lite re-sends its whole spec. x goes as ISO text made by numpy in
one call: half the time of epoch milliseconds (which plotly checks and encodes), and epoch milliseconds
drew a number axis in JupyterLab once traces were added to a figure on screen. A key keeps its trace while it
stays in the top keys, so what the user hid in the legend stays hidden; `uirevision` keeps the zoom.
The static snapshot draws chart.chart_svg.

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
from streamframe.display.static import WINDOW

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
                hoverdistance=-1,  # the nearest window wherever the pointer is, not only near a point
                uirevision="streamframe",  # keep the user's zoom and legend choices across updates
                legend=dict(title=dict(text=", ".join(spec.by))),
                # a window bound is a time; other x columns get their axis type from the first rows
                xaxis=dict(title=dict(text=spec.x), type="date" if spec.x in WINDOW else None),
                template="plotly_white",
            )
        )
        self.figure.add_class("sf-chart")
        self._slots: dict[str, int] = {}  # key -> trace index

    @property
    def keys(self) -> list[str]:
        """The keys drawn now, in the order they first appeared (the legend's order)."""
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
        if lines and fig.layout.xaxis.type is None:  # before the traces: the front end draws them on it
            fig.layout.xaxis.type = "date" if _is_time(lines[0][1]["x"]) else "linear"
        drawn = {key: points for key, points in lines}
        # a new key's trace comes with its points (one addTraces message), before the batch of updates
        fresh = [key for key, _ in lines if key not in self._slots]
        for key, points in lines:
            if key in fresh:
                index = self._slots[key] = len(fig.data)
                fig.add_scatter(
                    name=key or y,
                    x=_x(points["x"]),
                    y=points["y"].to_numpy(float),
                    mode="lines+markers",
                    marker=dict(size=4),
                    line=dict(color=PALETTE[index % len(PALETTE)]),
                )
        with fig.batch_update():
            fig.layout.title.text = title
            fig.layout.yaxis.title.text = y or ""
            for key, index in self._slots.items():
                if key in fresh:
                    continue
                trace = fig.data[index]
                points = drawn.get(key)
                if points is None:  # out of the top keys: no line, no legend entry (its choice is kept)
                    trace.x, trace.y, trace.showlegend = [], [], False
                    continue
                trace.x, trace.y = _x(points["x"]), points["y"].to_numpy(float)
                trace.showlegend = True

    def close(self) -> None:
        self.figure.close()


def _is_time(values: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(values)


def _x(values: pd.Series) -> np.ndarray:
    if _is_time(values):  # naive UTC (chart.series made it so)
        # ISO text made by numpy in one call: a date axis reads it as is, whatever the axis type the
        # front end settled on, and plotly passes a string array through without checking each value
        return np.datetime_as_string(values.to_numpy().astype("datetime64[ms]"), unit="ms")
    return values.to_numpy(float)
