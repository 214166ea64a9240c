"""The live view, asserted on the widgets' synced state (no browser): it follows a running query, holds
its update rate, formats numbers and windows, sorts by a header click, draws one chart trace per key,
shows a failure in one line with its traceback behind a toggle, never starts a second consumer, and
degrades to a static HTML/text snapshot."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

import streamframe as sf
from streamframe import session
from streamframe.display import explain_html, show, view
from streamframe.display.chart import PlotSpec, chart_svg
from streamframe.display.live import LiveView
from streamframe.display.throttle import Pacer
from streamframe.errors import ConfigError

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def own_queries():
    """Stop the queries and close the views a test started (and only those)."""
    before = {id(q) for q in session.queries()}
    views: list = []
    yield views
    for v in views:
        v.close()
    for q in session.queries():
        if id(q) not in before and q.status == "running":
            q.stop()


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    return InteractiveShell.instance()


def wait_for(check, timeout: float = 10.0, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def trades(n: int = 40, symbols: str = "ABC", start: str = "2024-01-01") -> pd.DataFrame:
    return pd.DataFrame({"symbol": [symbols[i % len(symbols)] for i in range(n)],
                         "qty": [(i * 7) % 50 + 1 for i in range(n)],
                         "ts": pd.date_range(start, periods=n, freq="3s")})


def slowly(seconds: float):
    def fn(batch: pd.DataFrame) -> pd.DataFrame:
        time.sleep(seconds)
        return batch

    return fn


def counting(widget, trait: str = "value") -> list[float]:
    stamps: list[float] = []
    widget.observe(lambda change: stamps.append(time.monotonic()), trait)
    return stamps


# --- a live query ------------------------------------------------------------------------------------
def test_table_changes_while_the_query_runs(own_queries):
    frame = sf.from_pandas(trades(30, "WXYZ"), timestamp="ts").map(slowly(0.04))
    query = frame.start(batch_size=3)
    v = LiveView(query, live=True, rate=20)
    own_queries.append(v)
    seen = []
    v.grid.count.observe(lambda change: seen.append(change["new"]), "value")
    wait_for(lambda: "30 rows" in v.grid.count.value)
    assert len(set(seen)) >= 3  # the grid followed the query batch by batch, not only its end
    wait_for(lambda: "finished" in v.status.value)  # in-memory input: the query ends with its input
    assert "30 in" in v.status.value


def test_windowed_table_shows_newest_windows_first_and_a_chart(own_queries):
    t = (sf.from_pandas(trades(24, "PQ"), timestamp="ts")
         .groupby("symbol").window(tumbling="10s").agg(volume=("qty", "sum")))
    v = view(t, live=False)
    own_queries.append(v)
    assert v.grid.sort_by == "window_start" and v.grid.descending is True
    shown = v._shown()
    assert list(shown.columns) == ["symbol", "window_start", "window_end", "volume"]
    assert shown["window_start"].is_monotonic_decreasing
    # one compact window column, newest first, its header marked as the sort
    assert [h.description for h in v.grid.headers] == ["symbol", "window ▼", "volume"]
    assert v.grid.cells("window")[:2] == ["00:01:00–00:01:10"] * 2
    assert sorted(v.chart.keys) == ["P", "Q"]  # one trace each
    svg = ET.fromstring(v.render()["chart"].removeprefix('<div class="sf-chart">').removesuffix("</div>"))
    assert len(svg.findall(f".//{SVG}polyline")) == 2  # the static fallback draws them too


def test_sort_controls_resort_the_table(own_queries):
    t = sf.from_pandas(pd.DataFrame({"k": list("abcdef"), "x": [3, 9, 1, 7, 5, 2]})).groupby("k")["x"].sum()
    v = view(t, rows=3, live=False)
    own_queries.append(v)
    assert [h.description for h in v.grid.headers] == ["k", "x"]
    x = v.grid.headers[1]
    x.click()  # ascending
    assert v.grid.cells("x") == ["1", "2", "3"] and x.description == "x ▲"
    x.click()  # descending
    assert v.grid.cells("x") == ["9", "7", "5"] and x.description == "x ▼"
    assert "3 of 6 rows" in v.grid.count.value
    assert "9" in v.snapshot_text().splitlines()[2]  # the static snapshot follows the sort
    x.click()  # back to arrival order
    assert v.grid.cells("k") == ["a", "b", "c"] and x.description == "x"
    v.grid.headers[0].click()
    v.grid.headers[0].click()
    assert v.grid.cells("k") == ["f", "e", "d"]


def test_a_stream_shows_its_latest_rows(own_queries):
    s = sf.from_pandas(pd.DataFrame({"n": range(50)}))
    v = view(s, rows=5, live=False)
    own_queries.append(v)
    assert v._shown()["n"].tolist() == [45, 46, 47, 48, 49]
    assert v.chart is None  # not windowed, no plot= asked for


# --- throttling --------------------------------------------------------------------------------------
def test_updates_are_throttled(own_queries):
    frame = sf.from_pandas(pd.DataFrame({"x": range(100_000)})).peek(lambda b: time.sleep(0.001))
    query = frame.start(batch_size=50)  # 2000 small batches over a few seconds: metrics change all the time
    v = LiveView(query, live=True, rate=4)
    own_queries.append(v)
    status, table = counting(v.status), counting(v.grid.count)
    time.sleep(1.6)
    assert 2 <= len(status) <= 8  # at most 4 per second (+ slack for the interval edges)
    assert len(table) <= 8
    gaps = [b - a for a, b in zip(status, status[1:])]
    assert all(g > 0.15 for g in gaps)  # nominal 0.25 s


def test_pacer_backs_off_when_rendering_is_costly():
    pacer = Pacer(rate=4, share=0.1)
    assert pacer.delay(0.001) == 0.25
    assert pacer.delay(0.2) == pytest.approx(1.8)  # rendering takes at most 10% of the time
    with pytest.raises(ConfigError):
        Pacer(rate=0)


# --- end of a query, closing the view ----------------------------------------------------------------
def test_a_failed_query_shows_its_error_in_one_line(own_queries):
    def boom(batch):
        raise ValueError("price feed broke\n  at line two")

    frame = sf.from_pandas(pd.DataFrame({"x": range(5)}), on_error="fail").map(boom)
    v = view(frame, live=True, rate=20)
    own_queries.append(v)
    wait_for(lambda: "failed" in v.status.value)
    assert "price feed broke" in v.status.value
    assert "line two" not in v.status.value and "Traceback" not in v.status.value
    line = [ln for ln in v.snapshot_text().splitlines() if "failed" in ln]
    assert len(line) == 1 and "error:" in line[0]
    # the view shows the error, and its traceback behind a toggle that starts closed
    wait_for(lambda: "sf-failure" in v.failure.value)
    box = v.failure.value
    summary, details = box.index("<summary"), box.index("<details>")
    assert "price feed broke" in box[:details]
    assert "Traceback (most recent call last)" in box[summary:] and "line two" in box[summary:]
    assert "<details open" not in box
    wait_for(lambda: not v.updating, timeout=3)  # the final state is shown, then updates stop


def test_updates_stop_when_the_query_stops(own_queries):
    query = sf.from_pandas(pd.DataFrame({"x": range(100)})).map(slowly(0.05)).start(batch_size=5)
    v = LiveView(query, live=True, rate=20)
    own_queries.append(v)
    assert v.updating
    wait_for(lambda: query.metrics["records_out"] >= 10)
    query.stop()
    wait_for(lambda: not v.updating, timeout=3)
    assert "stopped" in v.status.value and f"{query.metrics['records_out']} rows" in v.grid.count.value


def test_updates_stop_when_the_widget_closes(own_queries):
    query = sf.from_pandas(pd.DataFrame({"x": range(100)})).map(slowly(0.05)).start(batch_size=5)
    v = LiveView(query, live=True, rate=20)
    assert v.updating
    v.close()
    wait_for(lambda: not v.updating, timeout=3)
    assert query.status == "running"  # closing a view does not stop its query
    query.stop()


def test_outside_a_kernel_the_view_does_not_update():
    v = view(sf.from_pandas(pd.DataFrame({"x": range(4)})))
    try:
        assert not v.updating and "4 rows" in v.grid.count.value
    finally:
        v.close()


# --- no duplicate consumers, the displayed bundle ------------------------------------------------------
def test_displaying_a_frame_twice_starts_one_query(shell, own_queries):
    from IPython.display import display
    from IPython.utils.capture import capture_output

    slow = sf.from_pandas(trades(12, "MN"), timestamp="ts").map(slowly(1.0))  # still running below
    t = slow.groupby("symbol")["qty"].sum()
    before = len(session.queries())
    with capture_output() as out:
        display(t)
        display(t)
        show(t)
    assert len(session.queries()) == before + 1
    running = [q for q in session.queries() if q.name == t.default_name()]
    assert len(running) == 1 and running[0].status in ("running", "finished")  # done with its input
    assert sum(th.name == f"streamframe-{t.default_name()}" for th in threading.enumerate()) <= 1
    bundles = [o.data for o in out.outputs]
    assert len(bundles) == 3
    assert len({b["application/vnd.jupyter.widget-view+json"]["model_id"] for b in bundles}) == 1  # one view
    own_queries.append(view(t))


def test_the_bundle_has_the_widget_and_static_fallbacks(own_queries):
    t = sf.from_pandas(pd.DataFrame({"k": ["a", "b", "a"], "x": [1, 2, 3]})).groupby("k")["x"].sum()
    v = view(t, live=False)
    own_queries.append(v)
    bundle = v._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.jupyter.widget-view+json", "text/plain", "text/html"}
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == v.model_id
    name = t.default_name()
    # deterministic (nbval compares it): no records/s, no wall-clock stream time
    assert bundle["text/plain"] == (
        f"finished {name} · 3 in · lag 0 · late drops 0 · dead letters 0 · errors 0\nk  x\na  4\nb  2"
    )
    assert "<table" in bundle["text/html"] and "sf-status" in bundle["text/html"]
    assert repr(v) == bundle["text/plain"]


def test_an_in_memory_windowed_snapshot_is_complete_and_repeatable(own_queries):
    t = (
        sf.from_pandas(trades(60, "ABCD", "2024-03-01"), timestamp="ts")
        .groupby("symbol")
        .window(tumbling="30s")
        .agg(volume=("qty", "sum"))
    )
    expected = t.run()
    v = view(t)
    own_queries.append(v)
    text = v._repr_mimebundle_()["text/plain"]
    assert "stream time 2024-03-01 00:02:57" in text and "records/s" not in text
    assert f"{len(expected)} rows" in v.grid.count.value
    assert text == view(t)._repr_mimebundle_()["text/plain"]


# --- the chart ---------------------------------------------------------------------------------------
def test_the_chart_has_one_polyline_per_top_key():
    starts = pd.date_range("2024-01-01", periods=4, freq="1min", tz="UTC")
    rows = pd.DataFrame(
        [
            {"symbol": s, "window_start": w, "volume": v * (i + 1)}
            for i, s in enumerate("ABCDEFG")
            for v, w in enumerate(starts, 1)
        ]
    )
    svg = ET.fromstring(chart_svg(rows, PlotSpec(y="volume", by=("symbol",), top=3)))
    series = svg.findall(f".//{SVG}g[@class='sf-series']")
    assert [g.get("data-key") for g in series] == ["G", "F", "E"]  # the biggest totals
    assert all(len(g.findall(f"{SVG}polyline")) == 1 for g in series)
    assert len(series[0].find(f"{SVG}polyline").get("points").split()) == 4


def test_plot_chooses_x_y_and_by(own_queries):
    t = (
        sf.from_pandas(trades(30, "AB"), timestamp="ts")
        .groupby("symbol")
        .window(tumbling="10s")
        .agg(volume=("qty", "sum"), trades=("qty", "count"))
    )
    v = view(t, plot=dict(y="trades", by="symbol", top=1), live=False)
    own_queries.append(v)
    figure = v.chart.figure
    assert figure.layout.title.text == "trades by symbol" and figure.layout.xaxis.type == "date"
    assert v.chart.keys == ["A"]  # top=1: the key with most trades (ties: by name)
    expected = t.run().xs("A", level="symbol")["trades"]
    assert figure.data[0].y.tolist() == expected.sort_index().astype(float).tolist()
    svg = ET.fromstring(v.render()["chart"].removeprefix('<div class="sf-chart">').removesuffix("</div>"))
    assert "trades by symbol over window_start" in svg.find(f".//{SVG}title").text
    assert len(svg.findall(f".//{SVG}polyline")) == 1
    bad = view(t, plot=dict(y="nope"), live=False)
    own_queries.append(bad)
    assert "no column nope" in bad.chart.figure.layout.title.text
    assert "no column nope" in bad.render()["chart"]


# --- explain() in HTML -------------------------------------------------------------------------------
def test_explain_draws_the_topology():
    s = sf.from_pandas(pd.DataFrame({"x": [1, 2]}))
    frame = s[s.x > 1].assign(y=s.x * 2)
    drawing = frame.explain()._repr_html_()
    assert drawing == explain_html(frame._node)
    svg = ET.fromstring(drawing[drawing.index("<svg") : drawing.index("</svg>") + 6])
    names = [g.get("data-name") for g in svg.findall(f"{SVG}g[@class='sf-op']")]
    assert names == [n.name for n in frame._node.walk()] + ["result"]
    assert len(svg.findall(f"{SVG}line")) == 3  # source -> filter -> assign -> result
    assert "&lt;pre&gt;" not in drawing and "(x &gt; 1)" in drawing


def test_an_in_memory_snapshot_waits_for_a_slow_last_batch(own_queries):
    frame = sf.from_pandas(pd.DataFrame({"k": list("abcab"), "x": range(5)})).peek(lambda b: time.sleep(0.15))
    v = view(frame.groupby("k")["x"].sum(), live=False)
    own_queries.append(v)
    assert "3 rows" in v.grid.count.value and "5 in" in v.snapshot_text()


# --- in a real kernel ----------------------------------------------------------------------------------
KERNEL_CODE = """
import time, pandas as pd, streamframe as sf
df = pd.DataFrame({"symbol": list("AB") * 30, "qty": range(60),
                   "ts": pd.date_range("2024-01-01", periods=60, freq="3s")})
slow = sf.from_pandas(df, timestamp="ts").peek(lambda b: time.sleep(0.1))  # ~3 s: a dozen samples
t = slow.groupby("symbol").window(tumbling="10s").agg(volume=("qty", "sum"))
from streamframe.display.live import LiveView
LiveView(t.start(batch_size=2))   # not settled first, so the cell's output starts before the input ends
"""


def test_in_a_kernel_the_widget_updates_from_its_sampler_thread():
    """A real ipykernel: the cell's output is the widget plus fallbacks, and the table widget keeps
    receiving state updates after the cell has finished (sent by the sampler thread)."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.execute(KERNEL_CODE)
        shown, updates, deadline = None, [], time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                msg = kc.get_iopub_msg(timeout=0.5)
            except Exception:  # noqa: BLE001 - queue.Empty: keep waiting until the deadline
                continue
            kind, content = msg["msg_type"], msg["content"]
            assert kind != "error", content
            if kind in ("display_data", "execute_result"):
                shown = content["data"]
            elif kind == "comm_msg" and shown is not None:
                value = content["data"].get("state", {}).get("value", "")
                if 'class="sf-col' in value:  # a column of the grid
                    updates.append(value)
                    if len(set(updates)) >= 3:
                        break
        assert shown is not None and {
            "application/vnd.jupyter.widget-view+json",
            "text/plain",
            "text/html",
        } <= set(shown)
        assert len(set(updates)) >= 3
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# --- how values read -----------------------------------------------------------------------------------
def test_numbers_windows_and_times_are_formatted_for_reading():
    from streamframe.display.static import format_table, table_html, table_text

    starts = pd.to_datetime(["2026-12-05 13:43:05", "2026-12-05 13:43:00"], utc=True)
    rows = pd.DataFrame({"symbol": ["AAPL", "MSFT"], "window_start": starts,
                         "window_end": starts + pd.Timedelta(seconds=5), "volume": [1234567, 7],
                         "vwap": [425.234, 1.5],
                         "ts": pd.to_datetime(["2026-12-05 13:43:05.120", "2026-12-05 13:43:01.000"])})
    columns = {c.label: c for c in format_table(rows)}
    assert list(columns) == ["symbol", "window", "volume", "vwap", "ts"]
    assert columns["window"].cells == ("13:43:05–13:43:10", "13:43:00–13:43:05")
    assert columns["window"].sort_key == "window_start"
    assert columns["volume"].cells == ("1,234,567", "7") and columns["volume"].numeric
    assert columns["vwap"].cells == ("425.23", "1.50")
    assert columns["ts"].cells == ("2026-12-05 13:43:05.120", "2026-12-05 13:43:01")
    text = table_text(rows, 2).splitlines()
    assert text[1].endswith("1,234,567  425.23  2026-12-05 13:43:05.120")
    assert text[2].index("      7") < text[1].index("1,234,567") + 9  # right-aligned under its header
    assert 'text-align:right;padding:2px 8px;white-space:nowrap">1,234,567<' in table_html(rows, 2)


def test_windows_across_days_keep_their_dates():
    from streamframe.display.static import format_table

    starts = pd.to_datetime(["2024-01-01", "2024-01-02"])
    rows = pd.DataFrame({"window_start": starts, "window_end": starts + pd.Timedelta(days=1)})
    assert format_table(rows)[0].cells == ("2024-01-01 00:00:00–2024-01-02 00:00:00",
                                           "2024-01-02 00:00:00–2024-01-03 00:00:00")
    one = pd.DataFrame({"window_start": starts[:1], "window_end": starts[:1] + pd.Timedelta(days=1)})
    assert format_table(one)[0].cells == ("2024-01-01 00:00:00–2024-01-02 00:00:00",)  # a day-long window
    late = pd.DataFrame({"window_start": [pd.Timestamp("2024-01-01 23:59:55")],
                         "window_end": [pd.Timestamp("2024-01-02 00:00:00")]})
    assert format_table(late)[0].cells == ("23:59:55–00:00:00",)  # the midnight that closes the day
