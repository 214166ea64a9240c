"""The live view of a query: status line, sortable table of the current state, chart for windows.

One ipywidgets VBox. A daemon sampler thread reads `query.metrics` and `query.sink.result()` a few
times per second (never the query's thread; the sinks hand out copies under their own short lock),
renders the parts with `static` and `chart`, and pushes them in one `hold_sync()` batch. It stops when
the query ends (after showing the final state) or when the widget is closed.

    >>> v = LiveView(frame.start(), live=True)      # doctest: +SKIP
    >>> v.status.value, v.table.value                # the synced state a front end shows  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import threading
import time

import ipywidgets as widgets
import pandas as pd

from streamframe.display import static
from streamframe.display.chart import PlotSpec, chart_svg, plot_spec
from streamframe.display.throttle import Pacer, Sampler

NO_SORT = "(arrival)"
ENDED = ("stopped", "failed", "finished")
REREAD_S = 2.0


class LiveView(widgets.VBox):
    """A query shown live. Parts (each a widget whose state tests and front ends read): `status`,
    `sort_by` and `descending` (the sort controls), `table`, and `chart` (None when there is no plot).

    `rows`: how many rows the table shows; `plot`: dict(x=, y=, by=, top=) or True for a chart
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
        self._lock = threading.RLock()  # the sampler and the sort controls both render
        self._mark = None
        self._drawn, self._parts, self._version = None, {}, 0
        self._read_at = 0.0
        self._rows = pd.DataFrame()
        self._sampler: Sampler | None = None
        self._quiet = False  # set while the view changes its own controls
        self._preferred = (
            "window_start" if self.windowed else None
        )  # newest windows first, until the user sorts

        self.status = widgets.HTML()
        self.sort_by = widgets.Dropdown(
            options=[NO_SORT], value=NO_SORT, description="sort by", layout=widgets.Layout(width="auto")
        )
        self.descending = widgets.Checkbox(
            value=self.windowed, description="descending", indent=False, layout=widgets.Layout(width="auto")
        )
        self.table = widgets.HTML()
        self.chart = widgets.HTML() if self.spec is not None else None
        parts = [self.status, widgets.HBox([self.sort_by, self.descending]), self.table]
        super().__init__(children=parts + ([self.chart] if self.chart is not None else []))
        self.add_class("sf-view")

        if settle:
            wait_settled(query, settle)
        self.refresh()
        self.sort_by.observe(self._resort, "value")
        self.descending.observe(self._resort, "value")
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
                self._sync_sort_options()
            parts = self.render(metrics)
            targets = {"status": self.status, "table": self.table, "chart": self.chart}
            with contextlib.ExitStack() as held:
                for w in targets.values():
                    if w is not None:
                        held.enter_context(w.hold_sync())
                for key, value in parts.items():
                    w = targets[key]
                    if w is not None and w.value != value:
                        w.value = value

    def render(self, metrics: dict | None = None, skip=()) -> dict[str, str]:
        """The HTML of each part for the rows last sampled: {"status", "table"[, "chart"]}."""
        metrics = self.query.metrics if metrics is None else metrics
        out = {"status": static.status_html(self.query.name, metrics, self.query.exception, skip)}
        drawn = (self._version, self.sort_by.value, self.descending.value)
        if drawn != self._drawn:  # the rows or the sort changed: redraw the table and the chart
            shown = self._shown()
            self._parts = {"table": static.table_html(shown, len(self._rows))}
            if self.spec is not None:
                self._parts["chart"] = f'<div class="sf-chart">{chart_svg(self._rows, self.spec)}</div>'
            self._drawn = drawn
        return {**out, **self._parts}

    def _shown(self) -> pd.DataFrame:
        sort_by = None if self.sort_by.value == NO_SORT else self.sort_by.value
        return static.top_rows(
            self._rows, sort_by, self.descending.value, self.rows, latest=not self.is_table
        )

    def _sync_sort_options(self) -> None:
        options = [NO_SORT] + [str(c) for c in self._rows.columns]
        if list(self.sort_by.options) != options and len(self._rows.columns):
            current = self.sort_by.value
            if current == NO_SORT and self._preferred in options:
                current = self._preferred
            self._quiet = True
            try:
                self.sort_by.options = options
                self.sort_by.value = current if current in options else NO_SORT
            finally:
                self._quiet = False

    def _resort(self, change) -> None:
        if not self._quiet:
            self._preferred = None  # the user chose
            self.refresh()

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
        for w in (self.status, self.sort_by, self.descending, self.table, self.chart, *self.children):
            if w is not None:
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
