"""The live view against the real broker: it follows records as they are produced, counts dead letters,
shows a failure in one line, and re-displaying never starts a second consumer."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import orjson
import pytest

import streamframe as sf
from streamframe import session
from streamframe.display import view
from tests.integration.helpers import create_topic, produce

pytestmark = pytest.mark.integration
SVG = "{http://www.w3.org/2000/svg}"
BASE = 1_700_000_000_000


def wait_for(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def records(symbols: str, first_second: int, n: int) -> list[bytes]:
    return [
        orjson.dumps(
            {"symbol": symbols[i % len(symbols)], "qty": 10 + i, "ts": BASE + (first_second + i) * 1000}
        )
        for i in range(n)
    ]


def lines(v) -> int:
    """Series in the chart widget, once the static SVG fallback draws as many (-1 until then: the two
    are drawn one after the other by the view's thread)."""
    svg = v.render()["chart"].removeprefix('<div class="sf-chart">').removesuffix("</div>")
    drawn = len(ET.fromstring(svg).findall(f".//{SVG}polyline"))
    return drawn if drawn == len(v.chart.keys) else -1


def points(v) -> dict:
    return {t.name: (tuple(t.x), tuple(t.y)) for t in v.chart.figure.data if t.showlegend is not False}


def test_the_view_follows_a_live_topic(bootstrap, conn, topic_name):
    create_topic(bootstrap, topic_name, partitions=2)
    s = sf.stream(topic_name, value="json", timestamp="ts")
    t = s.groupby("symbol").window(tumbling="10s").agg(volume=("qty", "sum"))
    v = view(t, live=True, rate=10)
    try:
        assert v.query.status == "running" and v.updating
        produce(bootstrap, topic_name, records("AB", 0, 20))
        wait_for(lambda: "20 in" in v.status.value)
        wait_for(lambda: lines(v) == 2)
        assert v.grid.sort_by == "window_start" and v.grid.descending  # newest windows first
        first, drawn = v.grid.cells("volume"), points(v)
        assert v.grid.cells("window")[0] == "22:13:30–22:13:40"
        produce(bootstrap, topic_name, records("ABC", 20, 30))
        wait_for(lambda: "50 in" in v.status.value and lines(v) == 3)
        assert v.grid.cells("volume") != first and "C" in v.grid.cells("symbol")
        assert all(points(v)[k] != drawn[k] for k in "AB")  # the old series grew
        assert "lag 0" in v.status.value and "stream time 2023-11-14 22:14:09" in v.status.value

        queries = len(session.queries())
        assert view(t, live=True, rate=10) is v and t.start() is v.query  # re-display: same query, same view
        assert len(session.queries()) == queries
        v.query.stop()
        wait_for(lambda: not v.updating, timeout=10)
        assert "stopped" in v.status.value
    finally:
        v.close()
        v.query.stop()


def test_dead_letters_and_a_failure_show_in_the_status(bootstrap, conn, topic_name):
    create_topic(bootstrap, topic_name)
    produce(bootstrap, topic_name, records("A", 0, 3) + [b"not json"])
    lenient = view(sf.stream(topic_name, value="json"), live=True, rate=10)
    # named: the default name does not (yet) tell on_error apart, and would reuse the lenient query
    strict = view(
        sf.stream(topic_name, value="json", on_error="fail"), live=True, rate=10, name=f"strict-{topic_name}"
    )
    try:
        # the status line and the grid are updated one after the other
        wait_for(lambda: "dead letters 1" in lenient.status.value and "3 rows" in lenient.grid.count.value)
        assert "running" in lenient.status.value
        assert lenient.failure.value == ""
        wait_for(lambda: "failed" in strict.status.value)
        wait_for(lambda: "<details>" in strict.failure.value)  # the error, its traceback behind a toggle
        assert "error:" in strict.status.value and "\n" not in strict.status.value
        assert "Traceback" not in strict.snapshot_text()
        wait_for(lambda: not strict.updating, timeout=10)
    finally:
        for v in (lenient, strict):
            v.close()
            v.query.stop()
