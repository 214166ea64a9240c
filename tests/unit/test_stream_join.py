"""Stream–stream windowed joins through the TestDriver: each Kafka Streams rule on tiny hand-checked
inputs (the examples of tests/oracle/joins.py, checked there on a broker), then property tests against
the record-by-record model of the rules (tests/oracle/joins_rules.py) and a restart from the changelog.

The TestDriver processes records in the order they are piped (one task per partition), as Kafka
Streams' task does in its timestamp-merge order; the broker comparison is
tests/integration/test_join_oracle.py.
"""

from __future__ import annotations

import collections
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamframe as sf
from streamframe.runtime.query import Query
from streamframe.testing import TestDriver
from streamframe.time.extract import datetime_to_ms
from tests.oracle.joins_rules import stream_stream_join

L, R = "clicks", "views"


def _join(how="inner", within=10, grace=0, **kw):
    return sf.stream(L).join(sf.stream(R), how=how, within=within, grace=grace, **kw)


def _pipe(driver, events):
    """events: (topic, key, value, ts[, partition]) one record per pipe, in processing order."""
    for ev in events:
        topic, key, value, ts = ev[:4]
        driver.pipe(topic, [value], keys=[key], timestamps=[ts], partition=ev[4] if len(ev) > 4 else 0)


def _clean(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _rows(driver) -> list[tuple]:
    """Output as (key, {non-null values}, timestamp ms), in emission order."""
    out = driver.output(metadata=True)
    if out.empty:
        return []
    values = [c for c in out.columns if not c.startswith("_")]
    rows = []
    for key, row, t in zip(out["_key"], out[values].to_dict("records"), datetime_to_ms(out["_timestamp"])):
        row = {c: _clean(v) for c, v in row.items() if _clean(v) is not None}
        rows.append((_clean(key), row, int(t)))
    return rows


def _run(events, **kw) -> list[tuple]:
    driver = TestDriver(_join(**kw))
    _pipe(driver, events)
    return _rows(driver)


# --- the match rule ----------------------------------------------------------------------------------
def test_match_bounds_are_inclusive_and_the_timestamp_is_the_later_one():
    events = [(R, "a", {"r": 1}, 89), (R, "a", {"r": 2}, 90), (L, "a", {"l": 1}, 100),
              (R, "a", {"r": 3}, 110), (R, "a", {"r": 4}, 111), (R, "b", {"r": 5}, 100)]
    assert _run(events) == [("a", {"l": 1, "r": 2}, 100), ("a", {"l": 1, "r": 3}, 110)]


def test_output_columns_left_then_right_with_clashing_names_suffixed():
    driver = TestDriver(_join(how="outer"))
    _pipe(driver, [(L, "a", {"v": 1, "l": 7}, 100), (R, "a", {"v": 2, "r": 8}, 101)])
    out = driver.output(metadata=True)
    assert list(out.columns[:4]) == ["v", "l", "v_right", "r"]
    assert out[["v", "l", "v_right", "r"]].values.tolist() == [[1, 7, 2, 8]]
    assert out["_key"].tolist() == ["a"] and datetime_to_ms(out["_timestamp"]).tolist() == [101]
    custom = sf.stream(L).join(sf.stream(R), within=10, suffixes=("", "_v"))
    driver = TestDriver(custom)
    _pipe(driver, [(L, "a", {"v": 1}, 100), (R, "a", {"v": 2}, 101)])
    assert driver.output().columns.tolist() == ["v", "v_v"]


def test_matches_come_in_the_other_sides_timestamp_order_duplicates_in_arrival_order():
    events = [
        (R, "a", {"r": 1}, 105),
        (R, "a", {"r": 2}, 103),
        (R, "a", {"r": 3}, 103),
        (L, "a", {"l": 0}, 104),
    ]
    got = _run(events)
    assert [row["r"] for _, row, _ in got] == [2, 3, 1]
    assert [t for *_, t in got] == [104, 104, 105]


def test_each_side_sees_the_other_within_the_same_bounds():
    # a right record joins left records up to `within` before and after it, like a left record does
    events = [
        (L, "a", {"l": 1}, 90),
        (L, "a", {"l": 2}, 89),
        (L, "a", {"l": 3}, 110),
        (R, "a", {"r": 1}, 100),
    ]
    assert _run(events, within=10, grace=30) == [("a", {"l": 1, "r": 1}, 100), ("a", {"l": 3, "r": 1}, 110)]


def test_window_store_retention_is_measured_from_that_sides_max_timestamp():
    # (iii) grace 5, retention 10 + 10 + 5 = 25: right n@125 hides right k@100 from a later left k@109
    hidden = [
        (R, "k", {"r": 1}, 100),
        (R, "n", {"r": 2}, 125),
        (L, "j", {"l": 1}, 126),
        (L, "k", {"l": 2}, 109),
    ]
    assert _run(hidden, grace=5) == []
    shown = [
        (R, "k", {"r": 1}, 100),
        (R, "n", {"r": 2}, 124),
        (L, "j", {"l": 1}, 126),
        (L, "k", {"l": 2}, 109),
    ]
    assert _run(shown, grace=5) == [("k", {"l": 2, "r": 1}, 109)]


def test_a_late_record_still_joins_what_the_other_store_shows():
    # right a@95 comes after stream time 112 (later than within + grace): left a@100 is still retained
    events = [
        (L, "a", {"l": 1}, 100),
        (R, "x", {"r": 0}, 104),
        (L, "z", {"l": 0}, 112),
        (R, "a", {"r": 1}, 95),
    ]
    assert _run(events, within=10, grace=0) == [("a", {"l": 1, "r": 1}, 100)]
    gone = [(L, "a", {"l": 1}, 100), (R, "x", {"r": 0}, 104), (L, "z", {"l": 0}, 121), (R, "a", {"r": 1}, 95)]
    assert _run(gone, within=10, grace=0) == []  # left max 121 - retention 20: a@100 is not shown


# --- left / outer: when the non-joined result comes ---------------------------------------------------
def test_non_joined_left_record_waits_until_stream_time_passes_its_window_and_grace():
    # (i) within 10, grace 5: a@100 closes only at stream time > 115 (strict)
    base = [(L, "a", {"l": 1}, 100)]
    assert _run(base + [(R, "x", {"r": 1}, 114), (R, "y", {"r": 2}, 115)], how="left", grace=5) == []
    assert _run(base + [(R, "x", {"r": 1}, 114), (R, "y", {"r": 2}, 116)], how="left", grace=5) == [
        ("a", {"l": 1}, 100)
    ]


def test_a_match_before_the_window_closes_removes_the_pending_record():
    events = [(L, "a", {"l": 1}, 100), (R, "a", {"r": 1}, 108), (R, "x", {"r": 2}, 200)]
    assert _run(events, how="left") == [("a", {"l": 1, "r": 1}, 108)]


def test_min_time_quirk_delays_an_older_closed_record():
    # (ii): c@108 pending makes minTime 108 after the scan at x@111, so b@105 is not emitted at y@116;
    # the late right b@104 then joins it, and no non-joined b appears
    events = [
        (L, "a", {"l": 1}, 100),
        (L, "b", {"l": 2}, 105),
        (L, "c", {"l": 3}, 108),
        (L, "x", {"l": 4}, 111),
        (L, "y", {"l": 5}, 116),
        (R, "w", {"r": 1}, 117),
        (R, "b", {"r": 2}, 104),
        (L, "z", {"l": 6}, 119),
    ]
    assert _run(events, how="left") == [
        ("a", {"l": 1}, 100),
        ("b", {"l": 2, "r": 2}, 105),
        ("c", {"l": 3}, 108),
    ]
    without_c = [e for e in events if e[1] != "c"]
    assert _run(without_c, how="left") == [
        ("a", {"l": 1}, 100),
        ("b", {"l": 2}, 105),
        ("b", {"l": 2, "r": 2}, 105),
    ]


def test_a_record_already_past_its_window_is_emitted_at_once_ignoring_grace_and_can_still_join():
    # (iv) grace 50: q@150 arrives at stream time 170 > 150 + 10: non-joined at once; then right q@155
    events = [
        (L, "h", {"l": 1}, 170),
        (L, "q", {"l": 2}, 150),
        (R, "g", {"r": 1}, 171),
        (R, "q", {"r": 2}, 155),
    ]
    assert _run(events, how="left", grace=50) == [("q", {"l": 2}, 150), ("q", {"l": 2, "r": 2}, 155)]


def test_outer_join_emits_right_only_before_left_only_at_one_timestamp():
    # (v) the outer store iterates by timestamp, then right before left, then key bytes
    events = [(L, "b", {"l": 1}, 100), (R, "a", {"r": 1}, 100), (L, "c", {"l": 2}, 111)]
    assert _run(events, how="outer") == [("a", {"r": 1}, 100), ("b", {"l": 1}, 100)]
    keys = [
        (L, "b", {"l": 1}, 100),
        (L, "a", {"l": 2}, 100),
        (L, "C", {"l": 3}, 100),
        (L, "z", {"l": 4}, 111),
    ]
    assert [k for k, *_ in _run(keys, how="outer")] == ["C", "a", "b"]


def test_records_of_one_timestamp_and_key_are_emitted_in_arrival_order_and_matched_together():
    events = [(L, "a", {"l": 1}, 100), (L, "a", {"l": 2}, 100), (L, "z", {"l": 3}, 111)]
    assert _run(events, how="left") == [("a", {"l": 1}, 100), ("a", {"l": 2}, 100)]
    matched = [
        (L, "a", {"l": 1}, 100),
        (L, "a", {"l": 2}, 100),
        (R, "a", {"r": 1}, 101),
        (L, "z", {"l": 3}, 120),
    ]
    assert _run(matched, how="left") == [("a", {"l": 1, "r": 1}, 101), ("a", {"l": 2, "r": 1}, 101)]


def test_right_side_of_a_left_join_emits_pending_left_records_but_never_its_own():
    events = [
        (L, "a", {"l": 1}, 100),
        (R, "b", {"r": 1}, 105),
        (R, "x", {"r": 2}, 111),
        (R, "y", {"r": 3}, 200),
    ]
    assert _run(events, how="left") == [("a", {"l": 1}, 100)]
    assert _run(events, how="outer") == [("a", {"l": 1}, 100), ("b", {"r": 1}, 105), ("x", {"r": 2}, 111)]


def test_only_records_at_stream_time_trigger_emission():
    # the null value at 120 moves stream time past a@100's window without a scan (it is skipped first);
    # y@115 is out of order: no scan either; z@120 ties stream time, which counts as in order
    events = [(L, "a", {"l": 1}, 100), (R, "x", None, 120), (R, "y", {"r": 1}, 115)]
    assert _run(events, how="left") == []
    assert _run(events + [(R, "z", {"r": 2}, 120)], how="left") == [("a", {"l": 1}, 100)]


def test_inner_join_never_emits_unmatched_records_and_nothing_comes_at_the_end_of_input():
    events = [(L, "a", {"l": 1}, 100), (R, "b", {"r": 1}, 105)]
    assert _run(events, how="inner") == []
    assert _run(events, how="left") == []  # a@100's window is still open at the last record
    assert _run(events, how="outer") == []
    driver = TestDriver(_join(how="left"))
    _pipe(driver, events)
    driver.advance_wall_clock(3600)  # wall-clock time alone never emits
    assert _rows(driver) == []


# --- null keys and values --------------------------------------------------------------------------
def test_null_values_and_keys_advance_the_shared_stream_time():
    # the right null value at 200 moves stream time past b@150's window: b is emitted at once and,
    # being out of order, b does not run the scan, so a@100 stays pending
    events = [(L, "a", {"l": 1}, 100), (R, "x", None, 200), (L, "b", {"l": 2}, 150)]
    assert _run(events, how="left") == [("b", {"l": 2}, 150)]
    null_key = [(L, "a", {"l": 1}, 100), (R, None, {"r": 1}, 200), (L, "b", {"l": 2}, 150)]
    assert _run(null_key, how="left") == [("b", {"l": 2}, 150)]
    without = [(L, "a", {"l": 1}, 100), (L, "b", {"l": 2}, 150)]
    assert _run(without, how="left") == [("a", {"l": 1}, 100)]


def test_null_values_never_join_and_null_keys_join_with_nothing_on_an_outer_side():
    events = [
        (L, "a", None, 100),
        (R, "a", {"r": 1}, 101),
        (L, None, {"l": 2}, 102),
        (R, None, {"r": 3}, 103),
    ]
    assert _run(events, how="inner") == []
    assert _run(events, how="left") == [(None, {"l": 2}, 102)]  # KIP-962: at once, with its own time
    assert _run(events, how="outer") == [(None, {"l": 2}, 102), (None, {"r": 3}, 103)]


# --- tasks, columns, arguments -------------------------------------------------------------------
def test_each_partition_is_a_task_with_its_own_stream_time():
    events = [(L, "a", {"l": 1}, 100, 0), (R, "x", {"r": 1}, 500, 1), (L, "b", {"l": 2}, 102, 0)]
    assert _run(events, how="left") == []
    events.append((R, "y", {"r": 2}, 111, 0))
    assert _run(events, how="left") == [("a", {"l": 1}, 100)]


def test_join_on_a_column():
    j = sf.stream(L).join(sf.stream(R), on="ad", how="outer", within="10ms")
    driver = TestDriver(j)
    driver.pipe(L, [{"ad": 7, "l": 1}], keys=["u1"], timestamps=[100])
    driver.pipe(R, [{"ad": 7, "r": 2}, {"ad": 8, "r": 3}], keys=["u2", "u3"], timestamps=[105, 106])
    driver.pipe(L, [{"ad": 9, "l": 4}], keys=["u4"], timestamps=[200])
    out = driver.output(metadata=True)
    assert out.columns.tolist()[:3] == ["ad", "l", "r"]
    assert out[["ad", "l", "r"]].fillna(-1).values.tolist() == [[7, 1, 2], [8, -1, 3]]
    assert out["_key"].tolist() == [7, 8]


def test_durations_and_arguments():
    j = sf.stream(L).join(sf.stream(R), within="5min", grace="1min", how="left")
    assert (j._node.within, j._node.grace, j._node.join) == (300_000, 60_000, "stream_stream")
    assert "stream-stream, left, within 300000 ms, grace 60000 ms" in str(j.explain())
    with pytest.raises(sf.ConfigError, match="within="):
        sf.stream(L).join(sf.stream(R))
    with pytest.raises(sf.ConfigError, match="'inner', 'left' or 'outer'"):
        sf.stream(L).join(sf.stream(R), within=10, how="right")
    with pytest.raises(sf.ConfigError, match="stream-stream"):
        sf.stream(L).join(sf.table(R), within=10)
    with pytest.raises(sf.ConfigError, match="within"):
        sf.stream(L).join(sf.stream(R), within="soon")
    with pytest.raises(sf.ConfigError, match="one column"):
        sf.stream(L).join(sf.stream(R), within=10, on=["a", "b"])


# --- against the model of the rules ----------------------------------------------------------------
KEYS = ["a", "b", "c", None]


@st.composite
def _inputs(draw):
    n = draw(st.integers(1, 40))
    records, t = [], 1000
    for i in range(n):
        t += draw(st.integers(0, 8))
        ts = t - draw(st.sampled_from([0, 0, 0, 3, 12, 30]))  # some out of order, some very late
        side = draw(st.sampled_from(["left", "right"]))
        key = draw(st.sampled_from(KEYS))
        value = None if draw(st.integers(0, 15)) == 0 else {"l" if side == "left" else "r": i, "v": i % 3}
        records.append(
            {"side": side, "key": key, "value": value, "ts": ts, "task": draw(st.sampled_from([0, 0, 0, 1]))}
        )
    return records


def _model_rows(records, how, within, grace):
    rows = []
    for key, left, right, ts in stream_stream_join(records, how, within, grace):
        row = dict(left or {})
        row.update({("v_right" if c == "v" else c): v for c, v in (right or {}).items()})
        rows.append((key, row, ts))
    return rows


def _right_v(row: tuple) -> tuple:
    """A right-only row's `v` as `v_right`: streamframe suffixes the right columns the left stream has
    had so far, so one emitted before any left record was seen keeps `v` (the model always suffixes)."""
    key, values, ts = row
    if "l" not in values and "v" in values:
        values = {("v_right" if c == "v" else c): v for c, v in values.items()}
    return key, values, ts


def _pipe_records(driver, records, batched: bool):
    """One pipe per record, or runs of records of one topic and partition piped as one batch."""
    runs: list[list] = []
    for r in records:
        if batched and runs and (runs[-1][0]["side"], runs[-1][0]["task"]) == (r["side"], r["task"]):
            runs[-1].append(r)
        else:
            runs.append([r])
    for run in runs:
        driver.pipe(
            L if run[0]["side"] == "left" else R,
            [r["value"] for r in run],
            keys=[r["key"] for r in run],
            timestamps=[r["ts"] for r in run],
            partition=run[0]["task"],
        )


def _per_task(rows_with_task):
    out = collections.defaultdict(list)
    for task, row in rows_with_task:
        out[task].append(row)
    return dict(out)


@settings(max_examples=150, deadline=None)
@given(
    records=_inputs(),
    how=st.sampled_from(["inner", "left", "outer"]),
    within=st.sampled_from([0, 5, 10]),
    grace=st.sampled_from([0, 4, 20]),
    batched=st.booleans(),
)
def test_equals_the_model_of_kafka_streams_rules(records, how, within, grace, batched):
    driver = TestDriver(_join(how=how, within=within, grace=grace))
    _pipe_records(driver, records, batched)
    out = driver.output(metadata=True)
    got = _per_task(zip(out["_partition"].tolist(), map(_right_v, _rows(driver)))) if len(out) else {}
    want = _per_task(
        (task, row)
        for task in (0, 1)
        for row in _model_rows([r for r in records if r["task"] == task], how, within, grace)
    )
    assert got == want


# --- restart ----------------------------------------------------------------------------------------
def _restart_from_changelog(monkeypatch, driver, frame):
    """A new driver whose stores are rebuilt from the changelog records `driver`'s checkpoint writes."""
    logs: dict = collections.defaultdict(list)
    driver.query.stores.checkpoint({}, lambda topic, records: logs[topic].extend(records))
    opened = Query.open_topology

    def open_restoring(self, partitions):
        self.stores.attach(None, "streamframe", lambda topic: logs.get(topic, []))
        opened(self, partitions)

    monkeypatch.setattr(Query, "open_topology", open_restoring)
    try:
        return TestDriver(frame)
    finally:
        monkeypatch.setattr(Query, "open_topology", opened)


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
def test_state_survives_a_restart_from_the_changelog(monkeypatch, how):
    import numpy as np

    rng = np.random.default_rng(5)
    records, t = [], 1000
    for i in range(120):
        t += int(rng.integers(0, 6))
        records.append(
            {
                "side": str(rng.choice(["left", "right"])),
                "key": str(rng.choice(["a", "b", "c"])),
                "value": {"n": i},
                "ts": t - int(rng.choice([0, 0, 4, 15])),
                "task": 0,
            }
        )
    frame = _join(how=how, within=8, grace=3)
    whole = TestDriver(frame)
    _pipe_records(whole, records, batched=False)
    for cut in (1, 37, 80):
        first = TestDriver(frame)
        _pipe_records(first, records[:cut], batched=False)
        second = _restart_from_changelog(monkeypatch, first, frame)
        _pipe_records(second, records[cut:], batched=False)
        assert _rows(first) + _rows(second) == _rows(whole)
    assert len(_rows(whole)) > 20


def test_store_rows_are_dropped_once_no_record_can_see_them():
    driver = TestDriver(_join(how="left", within=10, grace=5))
    _pipe(driver, [(L, "a", {"l": i}, 100 + 10 * i) for i in range(50)])
    op = next(op for op in driver.query.topology.ops.values() if type(op).__name__ == "StreamStreamJoinOp")
    assert len(op.window_store) == 3  # 570, 580, 590: newer than the max 590 - retention 25
    assert len(op.outer_store) == 2  # 580, 590 still open
    assert len(driver.output()) == 48
