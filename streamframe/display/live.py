"""The live view of a query: status line, its error if it failed, a grid of the current state whose
headers sort it, and a chart for windows.

One ipywidgets VBox. A daemon sampler thread reads `query.metrics` and `query.sink.result()` a few
times per second (never the query's thread; the sinks hand out copies under their own short lock),
and pushes what changed in one `hold_sync()` batch: the status line (HTML), the grid (grid.Grid) and
the chart (plot.LiveChart, a plotly FigureWidget). It stops when the query ends (after showing the
final state) or when the widget is closed. Front ends without widgets get `static` HTML/text and the
SVG of `chart.chart_svg` instead.

    >>> v = LiveView(frame.start(), live=True)      # doctest: +SKIP
    >>> v.status.value, v.grid.cells("volume")       # the synced state a front end shows  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import threading
import time

import ipywidgets as widgets
import pandas as pd

from streamframe.display import static
from streamframe.display.chart import PlotSpec, chart_svg, plot_spec
from streamframe.display.grid import Grid
from streamframe.display.throttle import Pacer, Sampler

ENDED = ("stopped", "failed", "finished")
REREAD_S = 2.0


class LiveView(widgets.VBox):
    """A query shown live. Parts (each a widget whose state tests and front ends read): `status`,
    `failure` (the error and its traceback behind a toggle, once the query failed), `grid` (sorted by
    clicking its headers; `grid.sort(column, descending)` does it from code) and `chart` (a LiveChart,
    whose `figure` is shown; None when there is no plot).

    `rows`: how many rows the grid shows; `plot`: dict(x=, y=, by=, top=) or True for a chart
    (windowed tables get one by default, plot=False turns it off); `rate`: most updates per second;
    `live`: run the sampler (default: only inside a kernel, where a front end can be listening).
    """

    def __init__(self, query, *, rows: int = 20, plot=None, top: int = 5, rate: float = 4.0,
                 live: bool | None = None, settle: float = 0.0):
        self.query = query
        index = list(getattr(query.sink, "index_names", None) or [])
        self.windowed = "window_start" in index
        self.is_table = bool(index)
        self.key_columns = [c for c in index if c not in static.WINDOW]
        self.rows = int(rows)
        if plot is None:
            plot = self.windowed
        self.spec: PlotSpec | None = plot_spec(plot, self.key_columns, top=top) if plot is not False else None
        sources = query.root.sources()
        # what a snapshot leaves out so an in-memory run reads the same every time (nbval compares it)
        self.unstable: tuple[str, ...] = ()
        if query.in_memory:
            wall_clock = any(s.timestamp is None for s in sources)
            self.unstable = ("records_per_s", "stream_time") if wall_clock else ("records_per_s",)
        self._lock = threading.RLock()  # the sampler and a header click both render
        self._mark = None
        self._version, self._charted = 0, -1
        self._read_at = 0.0
        self._rows = pd.DataFrame()
        self._sampler: Sampler | None = None

        self.status = widgets.HTML()
        self.failure = widgets.HTML()
        # newest windows first, until the user sorts; a stream shows what arrived last
        self.grid = Grid(rows=self.rows, latest=not self.is_table, lock=self._lock,
                         sort_by="window_start" if self.windowed else None, descending=self.windowed)
        self.chart = None
        if self.spec is not None:
            from streamframe.display.plot import LiveChart

            self.chart = LiveChart(self.spec)
        parts = [self.status, self.failure, self.grid]
        super().__init__(children=parts + ([self.chart.figure] if self.chart is not None else []))
        self.add_class("sf-view")

        if settle:
            wait_settled(query, settle)
        self.refresh()
        if live is None:
            live = in_kernel()
        if live and not self.ended:
            self._sampler = Sampler(self._sample, Pacer(rate), name=f"streamframe-view-{query.name}").start()

    # --- state -------------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self.query.status in ENDED

    @property
    def updating(self) -> bool:
        """True while the sampler thread runs (a live query, an open widget)."""
        return self._sampler is not None and self._sampler.alive

    def refresh(self, force: bool = False) -> None:
        """Sample the query now and push what changed (one batch of widget messages)."""
        with self._lock:
            metrics = self.query.metrics
            mark = tuple(
                metrics.get(k)
                for k in (
                    "status",
                    "broker_unreachable_s",  # the status line counts the outage's seconds
                    "records_in",
                    "records_out",
                    "late_drops",
                    "errors",
                    "dead_letters",
                    "stream_time",
                )
            )
            now = time.monotonic()
            # re-read on any change, and now and then regardless (a restored table fills its sink
            # without moving a counter)
            if force or mark != self._mark or now - self._read_at > REREAD_S:
                self._read_at = now
                rows = _result(self.query)
                if rows is not None:
                    self._rows = static.as_rows(rows)
                    self._version += 1
                self._mark = mark
            status = static.status_html(self.query.name, metrics, self.query.exception)
            failure = self._failure_html(metrics)
            with contextlib.ExitStack() as held:
                for w in (self.status, self.failure):
                    held.enter_context(w.hold_sync())
                if self.status.value != status:
                    self.status.value = status
                if self.failure.value != failure:
                    self.failure.value = failure
                if self._version != self.grid.version:
                    self.grid.show(self._rows, version=self._version)
                if self.chart is not None and self._charted != self._version:
                    self.chart.show(self._rows)
                    self._charted = self._version

    def render(self, metrics: dict | None = None, skip=()) -> dict[str, str]:
        """The static HTML of each part for the rows last sampled: {"status", "failure", "table"[, "chart"]}
        (what the snapshot shows where there are no widgets)."""
        metrics = self.query.metrics if metrics is None else metrics
        out = {"status": static.status_html(self.query.name, metrics, self.query.exception, skip),
               "failure": self._failure_html(metrics),
               "table": static.table_html(self._shown(), len(self._rows))}
        if self.spec is not None:
            out["chart"] = f'<div class="sf-chart">{chart_svg(self._rows, self.spec)}</div>'
        return out

    def _failure_html(self, metrics: dict) -> str:
        if metrics.get("status") != "failed" or self.query.exception is None:
            return ""
        return static.failure_html(self.query.exception)

    def _shown(self) -> pd.DataFrame:
        return static.top_rows(self._rows, self.grid.sort_by, self.grid.descending, self.rows,
                               latest=not self.is_table)

    def _sample(self) -> bool:
        if self.comm is None:  # closed
            return False
        ended = self.ended
        self.refresh()
        return not ended  # the final state is shown once, then the sampler ends

    # --- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Stop updating and close the widget and its parts (the query keeps running)."""
        if self._sampler is not None:
            self._sampler.stop()
        if self.chart is not None:
            self.chart.close()
        for w in (self.status, self.failure, self.grid, *self.children):
            w.close()
        super().close()

    # --- how it shows --------------------------------------------------------------------------
    def snapshot_text(self) -> str:
        with self._lock:
            metrics = self.query.metrics
            lines = [
                static.status_text(self.query.name, metrics, self.query.exception, self.unstable),
                static.table_text(self._shown(), len(self._rows)),
            ]
        return "\n".join(lines)

    def snapshot_html(self) -> str:
        with self._lock:
            parts = self.render(skip=self.unstable)
        return f'<div class="sf-view">{"".join(parts.values())}</div>'

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        """The widget for front ends that show widgets, and a static snapshot (HTML and text) for those
        that do not: nbval, nbconvert, a terminal, a saved notebook opened without the kernel."""
        data = {"text/plain": self.snapshot_text(), "text/html": self.snapshot_html()}
        if self.comm is not None and self._view_name is not None:
            data["application/vnd.jupyter.widget-view+json"] = {
                "version_major": 2,
                "version_minor": 0,
                "model_id": self.model_id,
            }
        return data

    def __repr__(self) -> str:
        return self.snapshot_text()

    def __str__(self) -> str:
        return self.snapshot_text()


def _result(query) -> pd.DataFrame | None:
    result = getattr(query.sink, "result", None)
    if result is None:
        return None
    try:
        return result()
    except Exception:  # noqa: BLE001 - a sink mid-update or unreadable: show the last rows we had
        return None


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where a widget front end may be listening)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def wait_settled(query, timeout: float) -> None:
    """Give an in-memory query up to `timeout` s to process its whole input (it then finishes by
    itself), so its first snapshot — what nbval compares — shows the complete result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and query.status == "running":
        time.sleep(0.01)
