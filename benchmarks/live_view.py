"""What one update of the live view costs the kernel, for each candidate chart and grid (issue 16 item 3).

The view updates up to 4 times a second from a thread of the kernel, so what matters is the kernel's own
time per update: building the new state, the widget library's serialisation, and the JSON the kernel's
session would write to the front end (measured here by a comm that serialises what it is sent, as
ipykernel's does, and counts the bytes). No front end is connected: what the browser then does is proved
by tests/browser, not timed here.

Chart workload: 10 series x 200 points over `window_start`; each update moves every series one window on
and changes every value. Grid workload: a 500-row windowed table of which the view shows 20, sorted; each
update changes the values.

    .venv/bin/pip install bqplot ipydatagrid altair     # the peers (plotly ships with streamframe)
    .venv/bin/python benchmarks/live_view.py            # ~1 min; figures: benchmarks/README.md
    .venv/bin/python benchmarks/live_view.py --updates 20 --only plotly,svg
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import comm
import numpy as np
import pandas as pd
from comm.base_comm import BaseComm
from jupyter_client.jsonutil import json_default

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SERIES, POINTS, RATE = 10, 200, 4.0
TABLE_ROWS, SHOWN = 500, 20


class CountingComm(BaseComm):
    """A comm that serialises every message as a kernel would and counts the bytes; sends nothing."""

    sent_bytes = 0
    messages = 0

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        text = json.dumps(data or {}, default=json_default)
        CountingComm.sent_bytes += len(text) + sum(len(memoryview(b).cast("B")) for b in buffers or ())
        CountingComm.messages += 1


# bqplot warns that numpy datetimes carry no zone; the times here are UTC
warnings.filterwarnings("ignore", message="no explicit representation of timezones")
comm.create_comm = lambda *args, **kwargs: CountingComm(*args, **kwargs)


def chart_rows(step: int) -> pd.DataFrame:
    """The windowed table a chart draws at update `step`: 10 keys x the last 200 five-second windows."""
    rng = np.random.default_rng(step)
    starts = pd.date_range("2026-12-07 09:00", periods=POINTS, freq="5s", tz="UTC") + pd.Timedelta(
        seconds=5 * step
    )
    return pd.DataFrame(
        {
            "symbol": np.repeat([f"S{i:02d}" for i in range(SERIES)], POINTS),
            "window_start": np.tile(starts, SERIES),
            "volume": rng.integers(100, 10_000, SERIES * POINTS),
        }
    )


def table_rows(step: int) -> pd.DataFrame:
    rng = np.random.default_rng(step)
    starts = pd.date_range("2026-12-07 09:00", periods=TABLE_ROWS // SERIES, freq="5s", tz="UTC")
    return pd.DataFrame(
        {
            "symbol": np.repeat([f"S{i:02d}" for i in range(SERIES)], TABLE_ROWS // SERIES),
            "window_start": np.tile(starts, SERIES),
            "window_end": np.tile(starts + pd.Timedelta(seconds=5), SERIES),
            "volume": rng.integers(100, 100_000, TABLE_ROWS),
            "trades": rng.integers(1, 500, TABLE_ROWS),
            "high": rng.uniform(100, 500, TABLE_ROWS).round(2),
        }
    )


def by_key(rows: pd.DataFrame):
    return [(k, g) for k, g in rows.groupby("symbol", sort=True)]


# --- charts: each returns (make(rows), update(widget, rows)) ------------------------------------------
def plotly_chart():
    import plotly.graph_objects as go

    def make(rows):
        fig = go.FigureWidget()
        for key, g in by_key(rows):
            fig.add_scatter(x=g["window_start"], y=g["volume"], mode="lines", name=key)
        return fig

    def update(fig, rows):
        with fig.batch_update():
            for trace, (_, g) in zip(fig.data, by_key(rows)):
                trace.x, trace.y = g["window_start"], g["volume"]

    return make, update


def plotly_numeric_chart():
    """plotly with x sent as epoch milliseconds on a date axis: numpy arrays go as binary, not text."""
    import plotly.graph_objects as go

    def arrays(g):
        return g["window_start"].to_numpy().astype("datetime64[ms]").astype("int64"), g["volume"].to_numpy(
            float
        )

    def make(rows):
        fig = go.FigureWidget(layout={"xaxis": {"type": "date"}})
        for key, g in by_key(rows):
            x, y = arrays(g)
            fig.add_scatter(x=x, y=y, mode="lines", name=key)
        return fig

    def update(fig, rows):
        with fig.batch_update():
            for trace, (_, g) in zip(fig.data, by_key(rows)):
                trace.x, trace.y = arrays(g)

    return make, update


def plotly_isostr_chart():
    """plotly with x as ISO text made by numpy in one call (np.datetime_as_string)."""
    import plotly.graph_objects as go

    def arrays(g):
        ms = g["window_start"].dt.tz_localize(None).to_numpy().astype("datetime64[ms]")
        return np.datetime_as_string(ms, unit="ms"), g["volume"].to_numpy(float)

    def make(rows):
        fig = go.FigureWidget(layout={"xaxis": {"type": "date"}})
        for key, g in by_key(rows):
            x, y = arrays(g)
            fig.add_scatter(x=x, y=y, mode="lines", name=key)
        return fig

    def update(fig, rows):
        with fig.batch_update():
            for trace, (_, g) in zip(fig.data, by_key(rows)):
                trace.x, trace.y = arrays(g)

    return make, update


def plotly_restyle_chart():
    """plotly-numeric, but every trace's x and y in one Plotly.restyle call (no per-trace validation)."""
    make, _ = plotly_numeric_chart()

    def update(fig, rows):
        groups = by_key(rows)
        xs = [g["window_start"].to_numpy().astype("datetime64[ms]").astype("int64") for _, g in groups]
        fig.plotly_restyle(
            {"x": xs, "y": [g["volume"].to_numpy(float) for _, g in groups]},
            trace_indexes=list(range(len(groups))),
        )

    return make, update


def bqplot_marks_chart():
    """bqplot with one Lines mark per key (so each legend entry and tooltip is its own mark)."""
    import bqplot as bq

    def make(rows):
        sx, sy = bq.DateScale(), bq.LinearScale()
        marks = [
            bq.Lines(
                x=g["window_start"].to_numpy().astype("datetime64[ms]"),
                y=g["volume"].to_numpy(),
                scales={"x": sx, "y": sy},
                labels=[k],
                display_legend=True,
            )
            for k, g in by_key(rows)
        ]
        return bq.Figure(marks=marks, axes=[bq.Axis(scale=sx), bq.Axis(scale=sy, orientation="vertical")])

    def update(fig, rows):
        with fig.hold_sync():
            for mark, (_, g) in zip(fig.marks, by_key(rows)):
                with mark.hold_sync():
                    mark.x = g["window_start"].to_numpy().astype("datetime64[ms]")
                    mark.y = g["volume"].to_numpy()

    return make, update


def view_chart():
    """What the live view ships: plot.LiveChart (plotly, ISO-text x, one trace per key, batch_update)."""
    from streamframe.display.chart import PlotSpec
    from streamframe.display.plot import LiveChart

    def make(rows):
        chart = LiveChart(PlotSpec(y="volume", by=("symbol",), top=SERIES, points=POINTS))
        chart.show(rows)
        return chart

    def update(chart, rows):
        chart.show(rows)

    return make, update


def bqplot_chart():
    import bqplot as bq

    def make(rows):
        groups = by_key(rows)
        x = groups[0][1]["window_start"].to_numpy().astype("datetime64[ms]")
        lines = bq.Lines(
            x=x,
            y=np.vstack([g["volume"].to_numpy() for _, g in groups]),
            scales={"x": bq.DateScale(), "y": bq.LinearScale()},
            labels=[k for k, _ in groups],
            display_legend=True,
        )
        return bq.Figure(marks=[lines], axes=[bq.Axis(scale=lines.scales["x"])])

    def update(fig, rows):
        groups = by_key(rows)
        lines = fig.marks[0]
        with lines.hold_sync():
            lines.x = groups[0][1]["window_start"].to_numpy().astype("datetime64[ms]")
            lines.y = np.vstack([g["volume"].to_numpy() for _, g in groups])

    return make, update


def altair_chart():
    import altair as alt

    def spec(rows):
        pick = alt.selection_point(fields=["symbol"], bind="legend")
        return (
            alt.Chart(rows.assign(window_start=rows["window_start"].dt.tz_localize(None)))
            .mark_line()
            .encode(
                x="window_start:T",
                y="volume:Q",
                color="symbol:N",
                opacity=alt.condition(pick, alt.value(1), alt.value(0.15)),
                tooltip=["symbol", "volume"],
            )
            .add_params(pick, alt.selection_interval(bind="scales"))
        )

    def make(rows):
        return alt.JupyterChart(spec(rows))

    def update(widget, rows):
        widget.chart = spec(rows)

    return make, update


def svg_chart():
    """The hand-drawn SVG in an HTML widget (what the view had before; kept as the static fallback)."""
    import ipywidgets as widgets

    from streamframe.display.chart import PlotSpec, chart_svg

    spec = PlotSpec(y="volume", by=("symbol",), top=SERIES, points=POINTS)

    def make(rows):
        return widgets.HTML(chart_svg(rows, spec))

    def update(widget, rows):
        widget.value = chart_svg(rows, spec)

    return make, update


# --- grids ---------------------------------------------------------------------------------------------
def datagrid_grid():
    from ipydatagrid import DataGrid

    def make(rows):
        return DataGrid(rows, base_column_size=110)

    def update(grid, rows):
        grid.data = rows  # the grid sorts in the browser, so it is sent every row

    return make, update


def native_grid():
    """The view's own grid (ipywidgets: header buttons, one HTML column each): the kernel sorts, sends 20."""
    from streamframe.display.grid import Grid

    def make(rows):
        grid = Grid(rows=SHOWN)
        grid.show(rows)
        return grid

    def update(grid, rows):
        grid.show(rows)

    return make, update


CANDIDATES = {
    "plotly": ("chart", plotly_chart),
    "plotly-numeric": ("chart", plotly_numeric_chart),
    "plotly-restyle": ("chart", plotly_restyle_chart),
    "plotly-isostr": ("chart", plotly_isostr_chart),
    "bqplot": ("chart", bqplot_chart),
    "bqplot-marks": ("chart", bqplot_marks_chart),
    "altair": ("chart", altair_chart),
    "svg": ("chart", svg_chart),
    "view-chart": ("chart", view_chart),
    "ipydatagrid": ("grid", datagrid_grid),
    "native-grid": ("grid", native_grid),
}


def measure(name: str, updates: int) -> dict:
    kind, factory = CANDIDATES[name]
    make, update = factory()
    data = chart_rows if kind == "chart" else table_rows
    before, began = CountingComm.sent_bytes, time.perf_counter()
    widget = make(data(0))
    made_ms, made_kb = (time.perf_counter() - began) * 1000, (CountingComm.sent_bytes - before) / 1024
    inputs = [data(i) for i in range(1, updates + 1)]
    update(widget, inputs[0])  # warm up (imports, caches)
    times, sizes = [], []
    for rows in inputs[1:]:
        before = CountingComm.sent_bytes
        began = time.perf_counter()
        update(widget, rows)
        times.append(time.perf_counter() - began)
        sizes.append(CountingComm.sent_bytes - before)
    ms = statistics.median(times) * 1000
    return {
        "candidate": name,
        "kind": kind,
        "median_ms": ms,
        "p90_ms": sorted(times)[int(len(times) * 0.9)] * 1000,
        "kb": statistics.median(sizes) / 1024,
        "share_at_4_per_s": ms / 1000 * RATE,
        "made_ms": made_ms,
        "made_kb": made_kb,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--only", default=",".join(CANDIDATES))
    args = parser.parse_args(argv)
    head = ("candidate", "kind", "median ms", "p90 ms", "KB/update", "kernel share at 4/s", "made: ms, KB")
    print(f"{head[0]:<15} {head[1]:<6} {head[2]:>10} {head[3]:>8} {head[4]:>10} {head[5]:>20} {head[6]:>16}")
    for name in args.only.split(","):
        try:
            r = measure(name, args.updates)
        except ImportError as e:  # a peer not installed: say so, measure the others
            print(f"{name:<15} not installed ({e.name}): pip install it to compare")
            continue
        print(
            f"{r['candidate']:<15} {r['kind']:<6} {r['median_ms']:>10.2f} {r['p90_ms']:>8.2f}"
            f" {r['kb']:>10.1f} {r['share_at_4_per_s']:>20.1%} {r['made_ms']:>7.0f} {r['made_kb']:>8,.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
