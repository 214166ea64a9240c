"""WindowStore and the columnar window operator against TableStore and AggregateOp: same outputs,
same state, same changes for checkpoints, on random batches; and memory stays bounded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamframe as sf
from streamframe.runtime import compile as compile_mod
from streamframe.state.durable import Changes
from streamframe.state.store import TableStore
from streamframe.state.window_store import WindowStore
from streamframe.testing import TestDriver

AGGS = {
    "count": ("amount", "count"), "size": ("amount", "size"), "sum": ("amount", "sum"),
    "mean": ("price", "mean"), "min": ("price", "min"), "max": ("amount", "max"),
    "first": ("price", "first"), "last": ("amount", "last"), "nunique": ("amount", "nunique"),
    "spread": ("amount", lambda v: v.max() - v.min()),
    "mean_int": ("amount", "mean"), "min_int": ("amount", "min"), "first_int": ("amount", "first"),
}
INT_AGGS = [
    "count",
    "size",
    "sum",
    "max",
    "last",
    "mean_int",
    "min_int",
    "first_int",
]  # NumPy's, on int amounts

records = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["x", "y"]),
        st.integers(0, 300),
        st.integers(-5, 50),
        st.one_of(st.none(), st.floats(0, 10, allow_nan=False)),
    ),
    min_size=1,
    max_size=60,
)


def _drive(frame, recs, cuts, two_keys):
    driver = TestDriver(frame, partitions=2)
    bounds = sorted({0, len(recs), *[c % (len(recs) + 1) for c in cuts]})
    for lo, hi in zip(bounds, bounds[1:]):
        chunk = recs[lo:hi]
        rows = [{"g": g, "ts": ts, "amount": amount, "price": price} for _, g, ts, amount, price in chunk]
        driver.pipe(
            "in", rows, keys=[k for k, *_ in chunk], timestamps=[r[2] for r in chunk], partition=lo % 2
        )
    [store] = driver.query.stores.stores.values()
    return driver, store


def _both(monkeypatch, make, recs, cuts, two_keys=False):
    results = []
    for columnar in (True, False):
        with monkeypatch.context() as m:
            if not columnar:
                m.setattr(compile_mod, "columnar", lambda node: False)
            driver, store = _drive(make(), recs, cuts, two_keys)
        assert isinstance(store, WindowStore) == columnar
        results.append((driver, store))
    return results


def _same_changes(a, b):
    ra, da = a.take_changes()
    rb, db = b.take_changes()
    pd.testing.assert_frame_equal(ra.sort_index(), rb.sort_index())
    assert sorted(da) == sorted(db)
    ca, cb = Changes.of(ra.sort_index(), sorted(da)), Changes.of(rb.sort_index(), sorted(db))
    assert ca == cb  # the bytes written to SQLite and the changelog


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    recs=records,
    cuts=st.lists(st.integers(0, 60), max_size=4),
    final=st.booleans(),
    hopping=st.booleans(),
    two_keys=st.booleans(),
    aggs=st.sets(st.sampled_from(sorted(AGGS)), min_size=1),
)
def test_columnar_window_aggregation_equals_the_table_store_path(
    monkeypatch, recs, cuts, final, hopping, two_keys, aggs
):
    window = dict(hopping=40, every=20, grace=10) if hopping else dict(tumbling=40, grace=10)

    def make():
        g = sf.stream("in", timestamp="ts").groupby(["_key", "g"] if two_keys else "_key").window(**window)
        return g.agg(**{a: AGGS[a] for a in sorted(aggs)}).emit("final" if final else "updates")

    (fast, fast_store), (slow, slow_store) = _both(monkeypatch, make, recs, cuts, two_keys)
    pd.testing.assert_frame_equal(fast.output(metadata=True), slow.output(metadata=True))
    pd.testing.assert_frame_equal(fast_store.frame, slow_store.frame)
    assert fast.metrics["late_drops"] == slow.metrics["late_drops"]
    _same_changes(fast_store, slow_store)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    recs=records,
    nulls=st.sets(st.integers(0, 59)),
    cuts=st.lists(st.integers(0, 60), max_size=4),
    final=st.booleans(),
    aggs=st.sets(st.sampled_from(INT_AGGS), min_size=1),
)
def test_columnar_window_aggregation_with_null_amounts_equals_the_table_store_path(
    monkeypatch, recs, nulls, cuts, final, aggs
):
    """A batch with a null amount has a float column (the pandas path), one without an int column
    (the NumPy path): the two take turns on the same stored rows."""
    recs = [
        (k, g, ts, None if i in nulls else amount, price) for i, (k, g, ts, amount, price) in enumerate(recs)
    ]

    def make():
        g = sf.stream("in", timestamp="ts").groupby("_key").window(tumbling=40, grace=10)
        return g.agg(**{a: AGGS[a] for a in sorted(aggs)}).emit("final" if final else "updates")

    (fast, fast_store), (slow, slow_store) = _both(monkeypatch, make, recs, cuts)
    pd.testing.assert_frame_equal(fast.output(metadata=True), slow.output(metadata=True))
    pd.testing.assert_frame_equal(fast_store.frame, slow_store.frame)
    _same_changes(fast_store, slow_store)


def _rows(keys, starts, values):
    index = pd.MultiIndex.from_arrays(
        [pd.Index(keys, dtype="str"), np.asarray(starts, dtype=np.int64)], names=["k", "window_start"]
    )
    return pd.DataFrame(
        {"n": np.asarray(values, dtype=np.int64), "done": np.zeros(len(keys), bool)}, index=index
    )


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("upsert"),
            st.lists(
                st.tuples(st.sampled_from("abcd"), st.sampled_from([0, 10, 20])),
                min_size=1,
                max_size=8,
                unique=True,
            ),
            st.integers(0, 9),
        ),
        st.tuples(
            st.just("delete"),
            st.lists(
                st.tuples(st.sampled_from("abcde"), st.sampled_from([0, 10, 30])), max_size=4, unique=True
            ),
            st.just(0),
        ),
        st.tuples(st.just("mark"), st.just([]), st.integers(0, 5)),
        st.tuples(st.just("take"), st.just([]), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(ops=ops)
def test_window_store_protocol_equals_table_store(ops):
    a, b = TableStore("s", ["k", "window_start"]), WindowStore("s", ["k", "window_start"])
    for op, keys, n in ops:
        if op == "upsert":
            rows = _rows([k for k, _ in keys], [w for _, w in keys], [n + i for i in range(len(keys))])
            a.upsert(rows)
            b.upsert(rows)
        elif op == "delete":
            index = pd.MultiIndex.from_tuples(keys, names=["k", "window_start"]) if keys else []
            a.delete(index)
            b.delete(index)
        elif op == "mark" and len(a):
            where = np.arange(len(a)) % (n + 1) == 0
            a.mark(where, "done", True)
            b.mark(where, "done", True)
        elif op == "take":
            _same_changes(a, b)
        pd.testing.assert_frame_equal(a.frame, b.frame, check_index_type=len(a) > 0)
        probe = pd.MultiIndex.from_tuples([("a", 0), ("e", 10), ("b", 20)], names=["k", "window_start"])
        pd.testing.assert_frame_equal(a.get(probe), b.get(probe))
    _same_changes(a, b)
    restored = WindowStore("s", ["k", "window_start"])
    restored.load(a.frame)
    pd.testing.assert_frame_equal(restored.frame, a.frame, check_index_type=len(a) > 0)


def test_dropped_windows_and_their_keys_do_not_accumulate():
    store = WindowStore("s", ["k", "window_start"])
    for w in range(200):
        keys = pd.Series([f"k{w}-{i}" for i in range(100)])  # new keys in every window
        codes = (store.window_ids(np.full(100, w * 10)) << 32) | store.key_ids([keys])
        store.write(codes, pd.DataFrame({"n": np.ones(100, dtype=np.int64)}))
        store.drop(store.column("n") >= 0)  # every window purged once written
        store.take_changes()  # a checkpoint clears the pending changes
    assert len(store) == 0
    assert len(store._keys) <= 2 * 100 + 1024 and len(store._windows) <= 1024 + 2


@pytest.mark.parametrize("agg", ["reduce", "unwindowed", "session"])
def test_folds_unwindowed_and_session_aggregations_stay_on_the_table_store(agg):
    s = sf.stream("in", timestamp="ts")
    frame = {
        "reduce": lambda: s.groupby("k").window(tumbling=10)["x"].reduce(lambda a, b: a + b),
        "unwindowed": lambda: s.groupby("k")["x"].sum(),
        "session": lambda: s.groupby("k").window(session=10).agg(n=("x", "count")),
    }[agg]()
    driver = TestDriver(frame)
    driver.pipe("in", [{"k": "a", "x": 1, "ts": 1}])
    [store] = driver.query.stores.stores.values()
    assert type(store) is TableStore


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3000)), min_size=1, max_size=80))
def test_code_factorize_equals_pandas(pairs):
    """The table-indexed factorize (small id spans) and its hashing fallback (large ones) both give
    pd.factorize's groups, in order of first appearance, and each group's first position."""
    from streamframe.operators.window_columnar import _factorize

    codes = np.array([(w << 32) | k for w, k in pairs], dtype=np.int64)
    gid, groups, first = _factorize(codes)
    want_gid, want_groups = pd.factorize(codes)
    np.testing.assert_array_equal(gid, want_gid)
    np.testing.assert_array_equal(groups, want_groups)
    np.testing.assert_array_equal(
        first, [int(np.flatnonzero(want_gid == g)[0]) for g in range(len(want_groups))]
    )


def test_records_are_the_dicts_to_dict_builds_for_every_kind_of_column():
    import datetime
    import decimal
    import pickle

    from streamframe.state.durable import records

    n = 5
    frame = pd.DataFrame(
        {
            "i": np.arange(n),
            "u8": np.arange(n, dtype="uint8"),
            "f32": np.linspace(0, 1, n, dtype="float32"),
            "f": [0.5, np.nan, 2.0, -0.0, 1e300],
            "b": [True, False, True, True, False],
            "s": pd.array(["a", None, "é", "", "x"], dtype="str"),
            "sp": pd.array(["a", None, "b", "", "x"], dtype=pd.StringDtype("python")),
            "sa": pd.array(["a", None, "b", "", "x"], dtype=pd.StringDtype("pyarrow", na_value=pd.NA)),
            "o": ["a", np.int64(3), None, 2.5, {"k": [1]}],
            "I": pd.array([1, None, 3, 4, 5], dtype="Int64"),
            "B": pd.array([True, None, False, True, None], dtype="boolean"),
            "t": pd.date_range("2024-01-01", periods=n, freq="s"),
            "tz": pd.date_range("2024-01-01", periods=n, freq="ms", tz="UTC"),
            "td": pd.to_timedelta(np.arange(n), unit="s"),
            "c": pd.Categorical(["a", "b", "a", None, "b"]),
            "d": [decimal.Decimal("1.5")] * n,
            "dt": [datetime.date(2024, 1, i + 1) for i in range(n)],
        },
        index=pd.Index([f"k{i}" for i in range(n)], name="key"),
    )
    want, got = frame.to_dict("records"), records(frame)
    assert [pickle.dumps(r) for r in got] == [pickle.dumps(r) for r in want]
    assert records(frame.iloc[:, :0]) == frame.iloc[:, :0].to_dict("records") == [{}] * n
    assert records(frame.iloc[:0]) == []
