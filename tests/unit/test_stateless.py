"""Stateless operations, each checked against pandas doing the same thing on the whole input.

Every test builds a frame over `sf.stream("in")`, pipes records through TestDriver and compares the
result table with the pandas oracle (the same operation on a DataFrame of the input records).
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

import streamframe as sf
from streamframe.testing import TestDriver

SYMBOLS = ["AAPL", "MSFT", "AAPL", "GOOG", "MSFT", "AAPL", "TSLA", "GOOG", "AAPL", "MSFT"]
TRADES = [
    {"symbol": s, "qty": q, "price": p, "side": side}
    for s, q, p, side in zip(
        SYMBOLS,
        [50, 200, 300, 10, 150, 75, 500, 120, 99, 101],
        [10.0, 20.5, 30.25, 100.0, 21.0, 11.5, 250.0, 99.5, 12.0, 20.0],
        ["buy", "sell", "buy", "buy", "sell", "sell", "buy", "sell", "buy", "buy"],
    )
]
KEYS = [f"k{i}" for i in range(len(TRADES))]
STAMPS = [1_700_000_000_000 + 1000 * i for i in range(len(TRADES))]
HEADERS = [[("source", f"n{i}".encode())] if i % 3 == 0 else None for i in range(len(TRADES))]


def trades():
    return sf.stream("in")


def pipe_trades(drive, frame, **kwargs):
    return drive(frame, TRADES, keys=KEYS, timestamps=STAMPS, headers=HEADERS, **kwargs)


def trades_input(as_input, **kwargs):
    return as_input(TRADES, keys=KEYS, timestamps=STAMPS, headers=HEADERS, **kwargs)


def values_of(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[[c for c in frame.columns if not c.startswith("_")]]


def reindexed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.reset_index(drop=True)


# --- filters ---------------------------------------------------------------------------------

def test_boolean_mask_filter_matches_pandas(drive, as_input):
    s = trades()
    driver = pipe_trades(drive, s[(s.qty > 100) & (s.side == "buy")])
    df = trades_input(as_input)
    expected = df[(df.qty > 100) & (df.side == "buy")]
    assert_frame_equal(driver.output(metadata=True), reindexed(expected))


def test_filter_with_sf_col_and_series_methods(drive, as_input):
    s = trades()
    driver = pipe_trades(drive, s[sf.col("symbol").isin(["AAPL", "GOOG"]) & ~s.symbol.str.startswith("G")])
    df = trades_input(as_input)
    assert_frame_equal(driver.output(), reindexed(values_of(df[df.symbol.isin(["AAPL"])])))


def test_filter_with_a_callable_mask(drive, as_input):
    driver = pipe_trades(drive, trades()[lambda df: df.qty * df.price > 3000])
    df = trades_input(as_input)
    assert_frame_equal(driver.output(metadata=True), reindexed(df[df.qty * df.price > 3000]))


def test_query_string_matches_pandas_query(drive, as_input):
    text = "qty > 100 and symbol != 'TSLA' or price < 11"
    driver = pipe_trades(drive, trades().query(text))
    expected = values_of(trades_input(as_input)).query(text)
    assert len(expected) > 0
    assert_frame_equal(driver.output(), reindexed(expected))


def test_filter_that_keeps_nothing_outputs_no_rows(drive):
    s = trades()
    driver = pipe_trades(drive, s[s.qty > 10_000])
    assert len(driver.output()) == 0
    assert driver.records() == []
    assert driver.metrics["records_in"] == len(TRADES)
    assert driver.metrics["records_out"] == 0


# --- metadata columns ------------------------------------------------------------------------

def test_metadata_columns_are_usable_in_expressions(drive, as_input):
    s = trades()
    frame = s[(s._key != "k3") & (s._offset % 2 == 0) & (s._partition == 4)
              & (s._timestamp >= pd.Timestamp(STAMPS[2], unit="ms", tz="UTC"))]
    driver = pipe_trades(drive, frame, partition=4)
    df = trades_input(as_input, partition=4)
    expected = df[(df._key != "k3") & (df._offset % 2 == 0) & (df._timestamp >= df._timestamp.iloc[2])]
    assert expected._key.tolist() == ["k2", "k4", "k6", "k8"]
    assert_frame_equal(driver.output(metadata=True), reindexed(expected))


def test_headers_are_usable_in_expressions(drive, as_input):
    s = trades()
    driver = pipe_trades(drive, s[s._headers.notna()])
    df = trades_input(as_input)
    assert_frame_equal(driver.output(metadata=True), reindexed(df[df._headers.notna()]))
    assert driver.output(metadata=True)["_headers"].tolist() == [h for h in HEADERS if h is not None]


def test_query_string_can_use_metadata_columns(drive, as_input):
    driver = pipe_trades(drive, trades().query("_key in ['k1', 'k5'] or _offset == 9"))
    df = trades_input(as_input)
    assert_frame_equal(driver.output(metadata=True),
                       reindexed(df[df._key.isin(["k1", "k5"]) | (df._offset == 9)]))


def test_metadata_is_kept_through_a_chain_of_operations(drive, as_input):
    s = trades()
    frame = (
        s[s.qty > 60]
        .assign(notional=s.qty * s.price)[["symbol", "notional", "qty"]]
        .rename(columns={"qty": "quantity"})
        .astype({"quantity": "float64"})
        .drop(columns="symbol")
    )
    driver = pipe_trades(drive, frame)
    df = trades_input(as_input)
    df = df[df.qty > 60].assign(notional=lambda d: d.qty * d.price)
    meta = ["_key", "_timestamp", "_partition", "_offset", "_headers"]
    expected = (
        df[["symbol", "notional", "qty", *meta]]
        .rename(columns={"qty": "quantity"})
        .astype({"quantity": "float64"})
        .drop(columns="symbol")
    )
    assert_frame_equal(driver.output(metadata=True), reindexed(expected))


# --- column selection, assign ------------------------------------------------------------------


def test_column_selection_keeps_requested_order(drive, as_input):
    driver = pipe_trades(drive, trades()[["price", "symbol"]])
    assert_frame_equal(driver.output(), reindexed(trades_input(as_input)[["price", "symbol"]]))


def test_selecting_a_metadata_column_makes_it_a_value_column(drive, as_input):
    driver = pipe_trades(drive, trades()[["symbol", "_key"]])
    out = driver.output(metadata=True)
    assert out["_key"].tolist() == KEYS
    assert out["symbol"].tolist() == SYMBOLS


def test_assign_expressions_callables_and_constants_match_pandas(drive, as_input):
    s = trades()
    frame = s.assign(
        notional=s.qty * s.price,
        big=lambda df: df.notional > 3000,  # later columns see earlier ones, as in pandas
        venue="XNAS",
        sym=s.symbol.str.lower(),
        rounded=(s.price / 3).round(2),
    )
    driver = pipe_trades(drive, frame)
    expected = values_of(trades_input(as_input)).assign(
        notional=lambda d: d.qty * d.price,
        big=lambda d: d.notional > 3000,
        venue="XNAS",
        sym=lambda d: d.symbol.str.lower(),
        rounded=lambda d: (d.price / 3).round(2),
    )
    assert_frame_equal(driver.output(), reindexed(expected))


def test_assign_replaces_an_existing_column(drive, as_input):
    s = trades()
    driver = pipe_trades(drive, s.assign(qty=s.qty * 10))
    expected = values_of(trades_input(as_input)).assign(qty=lambda d: d.qty * 10)
    assert_frame_equal(driver.output(), reindexed(expected))


def test_assign_can_use_metadata(drive, as_input):
    s = trades()
    driver = pipe_trades(
        drive, s.assign(where=s._key + "@" + s._offset.astype(str), hour=s._timestamp.dt.minute)
    )
    df = trades_input(as_input)
    out = driver.output()
    assert out["where"].tolist() == [f"{k}@{i}" for i, k in enumerate(KEYS)]
    assert out["hour"].tolist() == df._timestamp.dt.minute.tolist()


def test_assign_of_metadata_other_than_key_is_refused():
    s = trades()
    with pytest.raises(sf.ConfigError, match="_timestamp is a metadata column"):
        s.assign(_timestamp=s.qty)


# --- map, peek, explode ----------------------------------------------------------------------


def test_map_returns_a_new_frame_and_metadata_is_restored(drive, as_input):
    def notional(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"symbol": df.symbol, "notional": df.qty * df.price})

    s = trades()
    driver = pipe_trades(drive, s[s.qty > 99].map(notional))
    df = trades_input(as_input)
    df = df[df.qty > 99]
    expected = notional(df).join(df[["_key", "_timestamp", "_partition", "_offset", "_headers"]])
    assert_frame_equal(driver.output(metadata=True), reindexed(expected))
    assert [r[0] for r in driver.records()] == df._key.tolist()


def test_map_that_filters_and_returns_a_series(drive, as_input):
    driver = pipe_trades(drive, trades().map(lambda df: df.loc[df.side == "sell", "price"] * 2))
    df = trades_input(as_input)
    sells = df[df.side == "sell"]
    out = driver.output(metadata=True)
    assert out["price"].tolist() == (sells.price * 2).tolist()
    assert out["_key"].tolist() == sells._key.tolist()
    assert out["_offset"].tolist() == sells._offset.tolist()


def test_map_that_returns_something_else_dead_letters_the_records(drive):
    driver = pipe_trades(drive, trades().map(lambda df: len(df)))
    assert driver.output().empty
    assert len(driver.dead_letters) == len(TRADES)
    assert "must return a DataFrame" in driver.dead_letters[0]["reason"]


def test_map_or_peek_editing_its_batch_in_place_does_not_leak_into_another_branch(drive, as_input):
    def scribble(df):
        df["scribbled"] = True
        df["qty"] = -1
        return df

    s = trades()
    for branch in (s.map(scribble), s.peek(scribble)):
        driver = pipe_trades(drive, sf.concat([branch[["symbol"]], s[s.qty > 100]]))
        df = trades_input(as_input)
        expected = reindexed(values_of(df[df.qty > 100]))
        untouched = driver.output().iloc[len(TRADES) :][expected.columns]
        assert_frame_equal(reindexed(untouched), expected, check_dtype=False)  # concat widens qty to float


def test_peek_sees_each_batch_and_passes_rows_unchanged(drive, as_input):
    seen: list[pd.DataFrame] = []
    s = trades()
    driver = TestDriver(s.peek(seen.append)[s.qty > 100])
    driver.pipe("in", TRADES[:4], keys=KEYS[:4], timestamps=STAMPS[:4], headers=HEADERS[:4])
    driver.pipe("in", TRADES[4:], keys=KEYS[4:], timestamps=STAMPS[4:], headers=HEADERS[4:])
    assert [len(b) for b in seen] == [4, len(TRADES) - 4]
    df = trades_input(as_input)
    assert_frame_equal(pd.concat(seen, ignore_index=True), df)
    assert_frame_equal(driver.output(metadata=True), reindexed(df[df.qty > 100]))


def test_explode_matches_pandas_and_repeats_metadata(drive, as_input):
    rows = [
        {"order": 1, "items": ["a", "b", "c"]},
        {"order": 2, "items": []},
        {"order": 3, "items": ["d"]},
        {"order": 4, "items": None},
        {"order": 5, "items": ["e", "f"]},
    ]
    keys = ["o1", "o2", "o3", "o4", "o5"]
    driver = drive(sf.stream("in").explode("items"), rows, keys=keys)
    expected = as_input(rows, keys=keys).explode("items")
    assert_frame_equal(driver.output(metadata=True), reindexed(expected))
    assert [r[0] for r in driver.records()] == ["o1", "o1", "o1", "o2", "o3", "o4", "o5", "o5"]


def test_explode_numbers_then_compute(drive, as_input):
    rows = [{"id": i, "ns": list(range(i))} for i in range(5)]
    s = sf.stream("in").explode("ns")
    driver = drive(s[s.ns.notna()].assign(sq=s.ns.astype("int64") ** 2), rows)
    df = as_input(rows).explode("ns")
    df = df[df.ns.notna()].assign(sq=lambda d: d.ns.astype("int64") ** 2)
    assert_frame_equal(driver.output(), reindexed(values_of(df)), check_dtype=False)
    assert driver.output()["sq"].tolist() == [0, 0, 1, 0, 1, 4, 0, 1, 4, 9]


# --- rekey, split, concat ----------------------------------------------------------------------


def test_rekey_changes_the_output_key(drive):
    driver = pipe_trades(drive, trades().rekey("symbol"))
    assert [k for k, _, _ in driver.records()] == SYMBOLS
    assert [v for _, v, _ in driver.records()] == TRADES
    assert [t for _, _, t in driver.records()] == STAMPS


def test_rekey_by_expression_callable_and_number(drive):
    s = trades()
    by_expr = pipe_trades(drive, s.rekey(s.symbol.str.lower() + "-" + s.side))
    assert [k for k, _, _ in by_expr.records()] == [f"{t['symbol'].lower()}-{t['side']}" for t in TRADES]
    by_fn = pipe_trades(drive, s.rekey(lambda df: df.qty // 100))
    assert [k for k, _, _ in by_fn.records()] == [str(t["qty"] // 100) for t in TRADES]
    by_int = pipe_trades(drive, s.rekey("qty"))
    assert by_int.output(metadata=True)["_key"].tolist() == [t["qty"] for t in TRADES]


def test_assign_key_is_a_rekey(drive):
    s = trades()
    driver = pipe_trades(drive, s.assign(_key=s.symbol + "/" + s.side))
    assert [k for k, _, _ in driver.records()] == [f"{t['symbol']}/{t['side']}" for t in TRADES]


def test_key_is_kept_when_not_rekeyed(drive):
    s = trades()
    driver = pipe_trades(drive, s[s.qty > 100][["symbol"]])
    assert driver.records() == [
        (k, {"symbol": t["symbol"]}, ts) for k, t, ts in zip(KEYS, TRADES, STAMPS) if t["qty"] > 100
    ]


def test_split_gives_complementary_halves(drive, as_input):
    rows = TRADES + [{"symbol": "NULL", "qty": None, "price": 1.0, "side": "buy"}]
    keys = KEYS + ["knull"]
    s = sf.stream("in")
    big, rest = s.split(s.qty > 100)
    out_big = drive(big, rows, keys=keys).output(metadata=True)
    out_rest = drive(rest, rows, keys=keys).output(metadata=True)
    df = as_input(rows, keys=keys)
    mask = df.qty > 100
    assert_frame_equal(out_big, reindexed(df[mask]))
    assert_frame_equal(out_rest, reindexed(df[~mask]))
    # together they are the input, each record exactly once
    both = pd.concat([out_big, out_rest]).sort_values("_offset")
    assert_frame_equal(reindexed(both), df)
    assert set(out_big._offset).isdisjoint(out_rest._offset)


@pytest.mark.parametrize("dtype", ["float64", "Int64", "Float64"])
def test_split_on_missing_values_is_complementary_for_every_numeric_dtype(drive, as_input, dtype):
    rows = [{"x": 1, "n": "a"}, {"x": None, "n": "b"}, {"x": 5, "n": "c"}, {"x": 3, "n": "d"}]
    s = sf.stream("in", schema={"x": dtype, "n": "str"})
    big, rest = s.split(s.x > 2)
    out_big, out_rest = drive(big, rows), drive(rest, rows)
    df = pd.DataFrame(rows).astype({"x": dtype, "n": "str"})
    mask = (df.x > 2).fillna(False).astype(bool)  # a missing value is not > 2, as with NaN
    assert_frame_equal(out_big.output(), reindexed(df[mask]))
    assert_frame_equal(out_rest.output(), reindexed(df[~mask]))
    assert out_big.dead_letters == [] and out_rest.dead_letters == []


def test_split_merged_back_with_concat_is_the_input(drive, as_input):
    s = trades()
    big, small = s.split(s.qty * s.price > 2000)
    merged = sf.concat([big.assign(kind="big"), small.assign(kind="small")])
    driver = pipe_trades(drive, merged)
    df = trades_input(as_input)
    out = driver.output(metadata=True).sort_values("_offset")
    assert out._offset.tolist() == list(range(len(TRADES)))
    expected_kind = ["big" if q * p > 2000 else "small" for q, p in zip(df.qty, df.price)]
    assert out["kind"].tolist() == expected_kind


def test_concat_of_two_topics(drive, as_input):
    trades_a = [{"sym": "A", "qty": i} for i in range(3)]
    trades_b = [{"sym": "B", "qty": 10 * i} for i in range(4)]
    a, b = sf.stream("a"), sf.stream("b")
    merged = sf.concat([a[a.qty > 0], b])
    driver = TestDriver(merged.assign(double=merged.qty * 2))
    driver.pipe("a", trades_a[:2], keys=["a0", "a1"], timestamps=[1, 2])
    driver.pipe("b", trades_b, keys=["b0", "b1", "b2", "b3"], timestamps=[3, 4, 5, 6], partition=1)
    driver.pipe("a", trades_a[2:], keys=["a2"], timestamps=[7])
    part_a1 = as_input(trades_a[:2], keys=["a0", "a1"], timestamps=[1, 2])
    part_b = as_input(trades_b, keys=["b0", "b1", "b2", "b3"], timestamps=[3, 4, 5, 6], partition=1)
    part_a2 = as_input(trades_a[2:], keys=["a2"], timestamps=[7], first_offset=2)
    expected = pd.concat([part_a1[part_a1.qty > 0], part_b, part_a2]).assign(double=lambda d: d.qty * 2)
    cols = ["sym", "qty", "double", "_key", "_timestamp", "_partition", "_offset", "_headers"]
    assert_frame_equal(driver.output(metadata=True), reindexed(expected[cols]))


def test_concat_needs_frames():
    with pytest.raises(sf.ConfigError, match="concat"):
        sf.concat([])
    with pytest.raises(sf.ConfigError, match="concat"):
        sf.concat([sf.stream("a"), "b"])


def test_driver_refuses_a_topic_the_frame_does_not_read():
    with pytest.raises(sf.ConfigError, match="does not read topic 'other'"):
        TestDriver(sf.stream("in")).pipe("other", [{"x": 1}])


# --- drop, rename, astype, dropna, fillna ------------------------------------------------------


def test_drop_matches_pandas(drive, as_input):
    df = values_of(trades_input(as_input))
    assert_frame_equal(
        pipe_trades(drive, trades().drop(columns=["side", "price"])).output(),
        df.drop(columns=["side", "price"]),
    )
    assert_frame_equal(pipe_trades(drive, trades().drop("side")).output(), df.drop(columns="side"))


def test_rename_matches_pandas(drive, as_input):
    df = values_of(trades_input(as_input))
    driver = pipe_trades(drive, trades().rename(columns={"qty": "quantity", "price": "px"}))
    assert_frame_equal(driver.output(), df.rename(columns={"qty": "quantity", "price": "px"}))


def test_rename_with_a_function_leaves_metadata_alone(drive, as_input):
    driver = pipe_trades(drive, trades().rename(columns=str.upper))
    df = trades_input(as_input)
    expected = df.rename(columns=lambda c: c if c.startswith("_") else c.upper())
    assert_frame_equal(driver.output(metadata=True), expected)
    assert [k for k, _, _ in driver.records()] == KEYS


def test_astype_matches_pandas(drive, as_input):
    df = values_of(trades_input(as_input))
    by_column = {"qty": "float64", "price": "int64", "symbol": "category"}
    assert_frame_equal(pipe_trades(drive, trades().astype(by_column)).output(), df.astype(by_column))
    assert_frame_equal(pipe_trades(drive, trades().astype(str)).output(), df.astype(str))


def test_astype_keeps_metadata_types(drive, as_input):
    driver = pipe_trades(drive, trades()[["qty"]].astype(str))
    out = driver.output(metadata=True)
    df = trades_input(as_input)
    assert_frame_equal(
        out.drop(columns="qty"), df[["_key", "_timestamp", "_partition", "_offset", "_headers"]]
    )
    assert out["qty"].tolist() == [str(t["qty"]) for t in TRADES]


GAPPY = [
    {"a": 1.0, "b": "x", "c": None},
    {"a": None, "b": "y", "c": 2.0},
    {"a": 3.0, "b": None, "c": 3.0},
    {"a": None, "b": None, "c": None},
    {"a": 5.0, "b": "z", "c": 5.0},
]


@pytest.mark.parametrize("kwargs", [{}, {"subset": ["a"]}, {"how": "all"}, {"thresh": 2}])
def test_dropna_matches_pandas(drive, as_input, kwargs):
    driver = drive(sf.stream("in").dropna(**kwargs), GAPPY)
    df = as_input(GAPPY)
    values = values_of(df).columns.tolist()
    expected = df.dropna(**{"subset": values, **kwargs})
    assert_frame_equal(driver.output(metadata=True), reindexed(expected))


def test_dropna_never_looks_at_metadata(drive, as_input):
    # every record has _key None and _headers None; dropna() must still keep complete records
    driver = drive(sf.stream("in").dropna(), GAPPY)
    assert driver.output()["a"].tolist() == [5.0]


@pytest.mark.parametrize("value", [0.0, {"a": -1.0, "c": 7.5}])
def test_fillna_matches_pandas(drive, as_input, value):
    rows = [{"a": r["a"], "c": r["c"]} for r in GAPPY]
    driver = drive(sf.stream("in").fillna(value), rows, keys=[None, "k", None, "k", None])
    df = as_input(rows, keys=[None, "k", None, "k", None])
    out = driver.output(metadata=True)
    assert_frame_equal(values_of(out), values_of(df).fillna(value))
    assert out["_key"].tolist() == [None, "k", None, "k", None]  # metadata is not filled


def test_fillna_per_column_with_strings_matches_pandas(drive, as_input):
    value = {"a": -1.0, "b": "?"}
    driver = drive(sf.stream("in").fillna(value), GAPPY)
    assert_frame_equal(driver.output(), values_of(as_input(GAPPY)).fillna(value))


def test_drop_or_rename_of_metadata_is_refused():
    s = trades()
    with pytest.raises(sf.ConfigError, match="metadata"):
        s.drop(columns="_key")
    with pytest.raises(sf.ConfigError, match="metadata"):
        s.drop(["qty", "_timestamp"])
    with pytest.raises(sf.ConfigError, match="metadata"):
        s.rename(columns={"_offset": "offset"})
    with pytest.raises(sf.ConfigError, match="metadata"):
        s.rename(columns={"qty": "_partition"})


# --- frames are lazy and immutable -------------------------------------------------------------


def test_operations_return_new_frames_and_leave_the_original_alone(drive, as_input):
    s = trades()
    _ = s[s.qty > 100].assign(x=1).drop(columns="side")
    assert_frame_equal(pipe_trades(drive, s).output(), values_of(trades_input(as_input)))


def test_records_split_over_batches_give_the_same_result_as_one_batch(as_input):
    s = trades()
    frame = s[s.qty > 60].assign(notional=s.qty * s.price).rekey("symbol")
    driver = TestDriver(frame)
    for lo, hi in [(0, 3), (3, 4), (4, 10)]:
        driver.pipe("in", TRADES[lo:hi], keys=KEYS[lo:hi], timestamps=STAMPS[lo:hi])
    df = as_input(TRADES, keys=KEYS, timestamps=STAMPS)
    expected = df[df.qty > 60].assign(
        notional=lambda d: d.qty * d.price, _key=lambda d: d.symbol.astype(object)
    )
    assert_frame_equal(
        driver.output(metadata=True), reindexed(expected[driver.output(metadata=True).columns])
    )


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "x": st.integers(-1000, 1000),
                "y": st.floats(-1e6, 1e6, allow_nan=False),
                "g": st.sampled_from(["a", "b", "c"]),
            }
        ),
        min_size=1,
        max_size=60,
    ),
    cuts=st.lists(st.integers(0, 60), max_size=4),
)
def test_pipeline_over_any_batching_equals_pandas_on_the_whole_input(rows, cuts):
    s = sf.stream("in")
    frame = (
        s[(s.x % 3 != 0) | (s.g == "a")]
        .assign(z=s.x * s.y, w=s.g.str.upper())
        .query("z >= -1e8")[["g", "x", "z", "w"]]
    )
    driver = TestDriver(frame)
    bounds = sorted({0, len(rows), *[c for c in cuts if c < len(rows)]})
    for lo, hi in zip(bounds, bounds[1:]):
        driver.pipe("in", rows[lo:hi])
    df = pd.DataFrame(rows)
    expected = (
        df[(df.x % 3 != 0) | (df.g == "a")]
        .assign(z=lambda d: d.x * d.y, w=lambda d: d.g.str.upper())
        .query("z >= -1e8")[["g", "x", "z", "w"]]
    )
    out = driver.output()
    if expected.empty:
        assert out.empty
    else:
        assert_frame_equal(out, reindexed(expected))
