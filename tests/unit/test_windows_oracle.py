"""Property tests: final windowed results equal a brute-force evaluation of Kafka Streams' rules.

The oracle (tests/oracle/rules.py) replays each partition record by record with Kafka Streams' window,
grace, stream-time and suppression rules; streamframe runs the same input through the TestDriver in
batches of random sizes, with out-of-order and late records, on two partitions.
"""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import streamframe as sf
from streamframe.operators.partitioner import partition_for
from streamframe.testing import TestDriver
from tests.oracle.rules import final_windows

KEYS = ["a", "b", "c", "d"]

records = st.lists(
    st.tuples(st.sampled_from(KEYS), st.integers(0, 150), st.integers(-5, 50)),  # key, ts, amount
    min_size=1, max_size=60,
)


def _frame(recs) -> pd.DataFrame:
    df = pd.DataFrame(recs, columns=["key", "ts", "amount"])
    df["partition"] = [partition_for(k.encode(), 2) for k in df["key"]]  # keyed, as a producer does
    return df


def _run(table, df: pd.DataFrame, cuts: list[int]) -> pd.DataFrame:
    driver = TestDriver(table, partitions=2)
    for part, rows in df.groupby("partition", sort=False):
        bounds = sorted({0, len(rows), *[c % (len(rows) + 1) for c in cuts]})
        for lo, hi in zip(bounds, bounds[1:]):
            chunk = rows.iloc[lo:hi]
            driver.pipe("in", chunk[["ts", "amount"]].to_dict("records"), keys=chunk["key"].tolist(),
                        timestamps=chunk["ts"].tolist(), partition=int(part))
    got = driver.table().reset_index()
    if got.empty:
        return pd.DataFrame(columns=["key", "window_start", "window_end", "count", "sum"])
    got = got.rename(columns={"_key": "key", "n": "count", "total": "sum"})
    for c in ("window_start", "window_end"):
        got[c] = got[c].astype("datetime64[ms, UTC]").astype("int64")
    return got[["key", "window_start", "window_end", "count", "sum"]].sort_values(
        ["key", "window_start", "window_end"], kind="mergesort").reset_index(drop=True)


def _check(window_kwargs, oracle_kwargs, recs, cuts):
    df = _frame(recs)
    table = (sf.stream("in", timestamp="ts").groupby("_key").window(**window_kwargs)
             .agg(n=("amount", "count"), total=("amount", "sum")).emit("final"))
    got = _run(table, df, cuts)
    # As a table (the output topic read as a changelog): the last value per windowed key. Kafka Streams
    # can emit one session twice when a late-but-accepted record recreates an already final session.
    want = final_windows(df, **oracle_kwargs).drop_duplicates(
        ["key", "window_start", "window_end"], keep="last"
    )
    want = want.reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(records, st.integers(1, 50), st.integers(0, 40), st.lists(st.integers(0, 60), max_size=4))
@example([("a", 0, 1), ("a", 15, 1), ("a", 5, 1)], 10, 5, [])  # window end == stream time - grace: late
def test_tumbling(recs, size, grace, cuts):
    _check(
        {"tumbling": size, "grace": grace},
        {"window": "tumbling", "size_ms": size, "grace_ms": grace},
        recs,
        cuts,
    )


@SETTINGS
@given(
    records,
    st.integers(1, 30),
    st.integers(1, 4),
    st.integers(0, 60),
    st.lists(st.integers(0, 60), max_size=4),
)
def test_hopping(recs, advance, hops, grace, cuts):
    size = advance * hops + (advance // 2 if hops > 1 else 0)
    _check(
        {"hopping": size, "every": advance, "grace": grace},
        {"window": "hopping", "size_ms": size, "advance_ms": advance, "grace_ms": grace},
        recs,
        cuts,
    )


@SETTINGS
@given(records, st.integers(1, 40), st.integers(0, 40), st.lists(st.integers(0, 60), max_size=4))
@example([("a", 0, 1), ("a", 10, 1), ("b", 10, 1), ("a", 10, 1)], 10, 0, [])  # a final session is not merged
def test_session(recs, gap, grace, cuts):
    _check(
        {"session": gap, "grace": grace}, {"window": "session", "gap_ms": gap, "grace_ms": grace}, recs, cuts
    )


def _drift(steps) -> list:
    """(key, step, lag, amount) -> (key, ts, amount): event time drifting forward, some records late."""
    out, clock = [], 0
    for key, step, lag, amount in steps:
        clock += step
        out.append((key, max(0, clock - lag), amount))
    return out


# Sliding windows depend on which records are near each other: also draw dense, mostly ordered input.
drifting = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        st.integers(0, 8),
        st.sampled_from([0, 0, 0, 1, 3, 10, 25, 60]),
        st.integers(-5, 50),
    ),
    min_size=1,
    max_size=80,
).map(_drift)


@SETTINGS
@given(
    st.one_of(records, drifting),
    st.integers(1, 40),
    st.integers(0, 40),
    st.lists(st.integers(0, 60), max_size=4),
)
@example([("a", 100, 1), ("a", 95, 2), ("a", 120, 4)], 10, 0, [])  # [90,100] final at once, then updated
@example([("a", 2, 1), ("a", 8, 2), ("a", 5, 4), ("a", 13, 8)], 10, 0, [])  # early records share [0, 10]
# The window store (retention 2*2+1) no longer shows a:[27,29] when a@30 comes: no window a:[30,32].
@example([("a", 29, 1), ("b", 31, 1), ("b", 33, 1), ("a", 30, 1)], 2, 1, [])
@example(
    [("a", 9, 1), ("a", 12, 1), ("a", 20, 1), ("a", 40, 1)], 5, 5, []
)  # 12's right window [13,18] misses 20
def test_sliding(recs, size, grace, cuts):
    _check(
        {"sliding": size, "grace": grace},
        {"window": "sliding", "size_ms": size, "grace_ms": grace},
        recs,
        cuts,
    )
