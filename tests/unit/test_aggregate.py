"""Aggregations and tables through the TestDriver, against pandas over the whole input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import streamframe as sf
from streamframe.testing import TestDriver


def _rows(n=300, keys=7, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "k": [f"k{i}" for i in rng.integers(0, keys, n)],
        "g": rng.choice(["x", "y"], n),
        "qty": rng.integers(1, 50, n),
        "price": rng.normal(100, 10, n).round(2),
        "ts": np.arange(n) * 10,
    })


def _pipe(frame, df, batch=37, partitions=1, key_col=None):
    driver = TestDriver(frame, partitions=partitions)
    for lo in range(0, len(df), batch):
        part = df.iloc[lo:lo + batch]
        driver.pipe("in", part.to_dict("records"), keys=part[key_col].tolist() if key_col else None,
                    timestamps=part["ts"].tolist())
    return driver


@pytest.mark.parametrize("fn", ["sum", "mean", "min", "max", "count", "first", "last", "nunique"])
def test_unwindowed_builtin_equals_pandas(fn):
    df = _rows()
    s = sf.stream("in")
    driver = _pipe(getattr(s.groupby("k")["qty"], fn)(), df)
    expected = getattr(df.groupby("k")["qty"], fn)().to_frame()
    pd.testing.assert_frame_equal(driver.table(), expected, check_dtype=False)


def test_named_agg_by_two_keys_equals_pandas():
    df = _rows()
    s = sf.stream("in")
    t = s.groupby(["k", "g"]).agg(volume=("qty", "sum"), avg=("price", "mean"), n=("qty", "count"),
                                  spread=("price", lambda v: v.max() - v.min()))
    expected = df.groupby(["k", "g"]).agg(volume=("qty", "sum"), avg=("price", "mean"), n=("qty", "count"),
                                          spread=("price", lambda v: v.max() - v.min()))
    pd.testing.assert_frame_equal(_pipe(t, df).table(), expected, check_dtype=False)


def test_updates_emit_each_changed_group_per_batch_and_count_plain_records():
    df = _rows(50)
    driver = _pipe(sf.stream("in").groupby("k").count(), df, batch=10)
    out = driver.output()
    assert len(out) == sum(df.iloc[i:i + 10]["k"].nunique() for i in range(0, 50, 10))
    assert driver.table()["count"].to_dict() == df.groupby("k").size().to_dict()


def test_reduce_and_aggregate_fold_in_record_order():
    df = _rows(120)
    s = sf.stream("in")
    reduced = _pipe(s.groupby("k")["qty"].reduce(lambda a, b: a * 31 + b), df).table()
    for k, group in df.groupby("k"):
        expected = 0
        for i, v in enumerate(group["qty"]):
            expected = v if i == 0 else expected * 31 + v
        assert reduced.loc[k, "qty"] == expected
    agg = s.groupby("k").aggregate(lambda: {"n": 0, "last": None},
                                   lambda acc, row: {"n": acc["n"] + 1, "last": row["qty"]})
    table = _pipe(agg, df).table()
    assert table["n"].to_dict() == df.groupby("k").size().to_dict()
    assert table["last"].to_dict() == df.groupby("k")["qty"].last().to_dict()


def test_tumbling_final_equals_pandas_on_in_order_input():
    df = _rows()
    t = sf.stream("in", timestamp="ts").groupby("k").window(tumbling=200).agg(q=("qty", "sum")).emit("final")
    driver = _pipe(t, df)
    got = driver.table().reset_index()
    stream_time = df["ts"].max()
    df = df.assign(window_start=df.ts - df.ts % 200)
    closed = df[df.window_start + 200 <= stream_time]
    expected = closed.groupby(["k", "window_start"])["qty"].sum()
    got_series = got.assign(window_start=got.window_start.astype("datetime64[ms, UTC]").astype("int64")) \
        .set_index(["k", "window_start"])["q"]
    pd.testing.assert_series_equal(
        got_series.sort_index(), expected.rename("q").sort_index(), check_dtype=False
    )
    assert driver.metrics["late_drops"] == 0


def test_close_after_closes_windows_of_a_quiet_partition_on_wall_clock():
    t = (
        sf.stream("in", timestamp="ts")
        .groupby("k")
        .window(tumbling="10s", close_after="30s")
        .agg(n=("qty", "count"))
        .emit("final")
    )
    driver = TestDriver(t)
    driver.pipe("in", [{"k": "a", "qty": 1, "ts": 1_000}, {"k": "a", "qty": 2, "ts": 2_000}])
    assert driver.output().empty  # stream time 2s: the window [0, 10s) is open
    driver.advance_wall_clock(10)
    assert driver.output().empty  # quiet for 10 s only
    driver.advance_wall_clock(25)
    out = driver.output()
    assert out["n"].tolist() == [2] and out["k"].tolist() == ["a"]
    driver.pipe("in", [{"k": "a", "qty": 9, "ts": 3_000}])  # now late: the window was closed as final
    assert len(driver.output()) == 1 and driver.metrics["late_drops"] == 1


def test_late_records_can_go_to_dead_letters():
    t = (
        sf.stream("in", timestamp="ts")
        .groupby("k")
        .window(tumbling=100, late="dead_letter")
        .agg(n=("qty", "count"))
    )
    driver = TestDriver(t)
    driver.pipe("in", [{"k": "a", "qty": 1, "ts": 500}, {"k": "a", "qty": 1, "ts": 50}])
    assert driver.metrics["late_drops"] == 1
    [dead] = driver.dead_letters
    assert "late record" in dead["reason"] and dead["offset"] == 1


def test_null_group_key_is_dead_lettered_not_dropped_silently():
    driver = TestDriver(sf.stream("in").groupby("k").count())
    driver.pipe("in", [{"k": "a"}, {"k": None}, {"x": 1}])
    assert driver.table()["count"].to_dict() == {"a": 1}
    assert [d["offset"] for d in driver.dead_letters] == [1, 2]


def test_table_source_keeps_last_value_and_tombstones_delete():
    t = sf.table("in", key="symbol")
    driver = TestDriver(t)
    driver.pipe(
        "in",
        [{"symbol": "A", "p": 1}, {"symbol": "B", "p": 2}, {"symbol": "A", "p": 3}],
        keys=["A", "B", "A"],
    )
    driver.pipe("in", [None], keys=["B"])
    assert driver.table()["p"].to_dict() == {"A": 3}
    assert driver.output(metadata=True)["_tombstone"].tolist() == [False, False, True]


def test_table_filter_turns_non_matching_updates_into_deletes():
    t = sf.table("in", key="symbol")
    cheap = t[t.p < 10]
    driver = TestDriver(cheap)
    driver.pipe("in", [{"symbol": "A", "p": 1}, {"symbol": "B", "p": 2}], keys=["A", "B"])
    driver.pipe("in", [{"symbol": "A", "p": 50}], keys=["A"])
    assert driver.table()["p"].to_dict() == {"B": 2}


def test_table_regroup_moves_updated_rows_between_groups():
    t = sf.table("in", key="user")
    by_region = t.groupby("region").agg(users=("user", "count"), total=("score", "sum"))
    driver = TestDriver(by_region)
    driver.pipe(
        "in",
        [
            {"user": "u1", "region": "eu", "score": 5},
            {"user": "u2", "region": "eu", "score": 7},
            {"user": "u3", "region": "us", "score": 1},
        ],
        keys=["u1", "u2", "u3"],
    )
    driver.pipe("in", [{"user": "u2", "region": "us", "score": 8}], keys=["u2"])
    driver.pipe("in", [None], keys=["u1"])
    final = pd.DataFrame(
        [{"user": "u2", "region": "us", "score": 8}, {"user": "u3", "region": "us", "score": 1}]
    )
    expected = final.groupby("region").agg(users=("user", "count"), total=("score", "sum"))
    pd.testing.assert_frame_equal(driver.table(), expected, check_dtype=False)


def test_emit_and_window_arguments_are_checked():
    g = sf.stream("in").groupby("k")
    with pytest.raises(sf.ConfigError, match="exactly one"):
        g.window(tumbling="1s", session="1s")
    with pytest.raises(sf.ConfigError, match="every="):
        g.window(hopping="1min")
    with pytest.raises(sf.ConfigError, match="windowed aggregation"):
        g["qty"].sum().emit("final")
    with pytest.raises(sf.ConfigError, match="select the columns"):
        g.sum()
    with pytest.raises(sf.ConfigError, match="duration"):
        g.window(tumbling="soon")


def test_processing_time_stamps_records_with_the_wall_clock():
    import time

    before = int(time.time() * 1000)
    driver = TestDriver(sf.stream("in", timestamp="processing"))
    driver.pipe("in", [{"x": 1}], timestamps=[5])
    stamp = driver.output(metadata=True)["_timestamp"].astype("datetime64[ms, UTC]").astype("int64").iloc[0]
    assert before <= stamp <= int(time.time() * 1000)


def test_windowed_table_lookups_by_key_and_time_range():
    df = pd.DataFrame(
        {
            "k": ["a", "a", "b", "a"],
            "x": [1, 2, 3, 4],
            "ts": pd.to_datetime(
                ["2024-01-01 10:00:05", "2024-01-01 10:00:15", "2024-01-01 10:00:15", "2024-01-01 10:00:35"],
                utc=True,
            ),
        }
    )
    t = sf.from_pandas(df, timestamp="ts").groupby("k").window(tumbling="10s").agg(total=("x", "sum"))
    every = t.loc["a"]
    assert every["total"].tolist() == [1, 2, 4]
    some = t.loc["a", "2024-01-01 10:00:10":"2024-01-01 10:00:30"]
    assert some["total"].tolist() == [2, 4]  # both ends included, as pandas .loc slices are
    assert t["b"]["total"].tolist() == [3]
    with pytest.raises(KeyError):
        t.loc["zz"]


def test_changes_and_to_stream_show_upserts_and_deletes():
    df = pd.DataFrame({"user": ["u1", "u2", "u1"], "region": ["eu", "eu", "us"]})
    counts = sf.from_pandas(df).groupby("region").agg(users=("user", "count"))
    changes = pd.concat(list(counts.changes()))
    assert list(changes.columns) == ["region", "users", "op"] and set(changes["op"]) == {"upsert"}
    assert changes.groupby("region")["users"].last().to_dict() == {"eu": 2, "us": 1}
    stream = counts.to_stream()
    assert stream.run()["users"].tolist() == changes["users"].tolist()
