"""The public surface: `sf.__all__`, explain(), bounded runs of `from_pandas`, and clear ConfigErrors."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import streamframe as sf
from streamframe.testing import TestDriver

DF = pd.DataFrame({
    "symbol": ["AAPL", "MSFT", "AAPL", "GOOG", "MSFT", "AAPL", "TSLA", "GOOG"],
    "qty": [50, 200, 300, 10, 150, 75, 500, 120],
    "price": [10.0, 20.5, 30.25, 100.0, 21.0, 11.5, 250.0, 99.5],
})


# --- __all__ ------------------------------------------------------------------------------------

def test_all_is_sorted_and_every_name_exists():
    assert sf.__all__ == sorted(sf.__all__)
    assert len(set(sf.__all__)) == len(sf.__all__)
    for name in sf.__all__:
        assert hasattr(sf, name), name


def test_every_public_error_is_a_streamframe_error():
    for name in sf.__all__:
        obj = getattr(sf, name)
        if isinstance(obj, type) and issubclass(obj, Warning):
            assert issubclass(obj, sf.StreamframeWarning) and not issubclass(obj, sf.StreamframeError), name
        elif isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, sf.StreamframeError), name
    assert issubclass(sf.DroppedRecordsWarning, UserWarning)
    assert issubclass(sf.UnknownColumnError, KeyError)
    assert issubclass(sf.ConfigError, ValueError)
    assert issubclass(sf.QueryTimeoutError, TimeoutError)


def test_testing_module_exports_the_driver():
    import streamframe.testing

    assert streamframe.testing.__all__ == ["TestDriver"]


# --- explain --------------------------------------------------------------------------------------

def test_explain_names_each_operator_in_order():
    a = sf.stream("trades", timestamp="ts")
    left = a[a.qty > 100].assign(notional=a.qty * a.price)[["symbol", "notional"]].rekey("symbol")
    b = sf.stream("more", value="csv", schema=["symbol", "qty", "tags"])
    right = (b.explode("tags").map(lambda df: df).peek(print).drop(columns="tags")
             .rename(columns={"qty": "q"}).astype({"q": float}).dropna().fillna(0).query("q > 1"))
    text = sf.concat([left, right]).explain()
    kinds = [line.split()[1] for line in text.splitlines()[1:] if not line.strip().startswith("-->")]
    assert kinds == ["Source", "Filter", "Assign", "Select", "Rekey",
                     "Source", "Explode", "Map", "Peek", "Pandas", "Pandas", "Pandas", "Pandas", "Pandas",
                     "Filter", "Concat"]
    assert text.startswith("Topology\n")
    for expected in ["topic: trades, key: text, value: json, timestamp: 'ts'", "(qty > 100)",
                     "notional = (qty * price)", "symbol, notional", "topic: more", "value: csv",
                     "drop(columns=['tags'])", "rename(columns={'qty': 'q'})", "dropna()", "fillna(0)",
                     "query('q > 1')", "--> result"]:
        assert expected in text, expected


def test_explain_wires_each_operator_to_the_next():
    s = sf.stream("in")
    frame = s[s.x > 1].assign(y=s.x * 2)
    lines = frame.explain().splitlines()[1:]
    names = [line.split()[0] for line in lines[::2]]
    targets = [line.split("-->")[1].strip() for line in lines[1::2]]
    assert len(names) == 3 and all(re.fullmatch(r"[a-z]+-\d+", n) for n in names)
    assert targets == [names[1], names[2], "result"]
    assert repr(frame.explain()) == str(frame.explain())  # shows as text in a notebook
    assert frame.explain() in repr(frame)


def test_split_branches_show_as_not():
    s = sf.stream("in")
    yes, no = s.split(s.x > 1)
    assert "(x > 1)" in yes.explain()
    assert "not (x > 1)" in no.explain()


# --- bounded runs of DataFrames --------------------------------------------------------------------

def test_run_without_a_broker_returns_the_frame():
    assert_frame_equal(sf.from_pandas(DF).run(), DF)


def test_run_until_n_gives_the_first_n_rows():
    for n in (0, 1, 3, len(DF), len(DF) + 5):
        out = sf.from_pandas(DF).run(until=n)
        if n == 0:
            assert len(out) == 0
        else:
            assert_frame_equal(out, DF.head(n))


def test_run_until_n_counts_input_records_like_head():
    s = sf.from_pandas(DF)
    out = s[s.qty > 100].run(until=5)
    head = DF.head(5)
    assert_frame_equal(out, head[head.qty > 100].reset_index(drop=True))


def test_run_over_many_small_batches_equals_pandas():
    s = sf.from_pandas(DF)
    frame = s[s.symbol != "TSLA"].assign(notional=s.qty * s.price)
    expected = DF[DF.symbol != "TSLA"].assign(notional=DF.qty * DF.price).reset_index(drop=True)
    assert_frame_equal(frame.run(batch_size=3), expected)
    assert_frame_equal(frame.run(), expected)


def test_from_pandas_metadata_key_and_timestamp():
    df = DF.assign(ts=pd.date_range("2024-01-01", periods=len(DF), freq="s", tz="UTC"))
    out = sf.from_pandas(df, key="symbol", timestamp="ts").run(metadata=True)
    assert out["_key"].tolist() == DF.symbol.tolist()
    assert out["_timestamp"].tolist() == df.ts.tolist()
    assert out["_offset"].tolist() == list(range(len(DF)))
    assert (out["_partition"] == 0).all()
    assert_frame_equal(out[df.columns], df)


def test_from_pandas_ignores_the_frames_index():
    df = DF.set_index(pd.Index(list("abcdefgh")))
    assert_frame_equal(sf.from_pandas(df).run(), DF)


def test_a_frame_can_run_twice_with_the_same_result():
    s = sf.from_pandas(DF)
    frame = s[s.qty > 60]
    assert_frame_equal(frame.run(), frame.run())


# --- bad arguments are ConfigErrors with a clear message ----------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: sf.stream("in", on_error="explode"), "on_error must be one of dead_letter, skip, fail"),
    (lambda: sf.stream("in", value="xml"), "unknown value format 'xml'"),
    (lambda: sf.stream("in", key="yaml"), "unknown key format 'yaml'"),
    (lambda: sf.stream(""), "needs a topic name"),
    (lambda: sf.stream("in").drop(columns="_key"), "cannot touch metadata columns"),
    (lambda: sf.stream("in").drop(columns=["a", "_offset"]), r"metadata columns \(_offset\)"),
    (lambda: sf.stream("in").drop(), "needs the columns"),
    (lambda: sf.stream("in").rename(["a"]), "columns="),
    (lambda: sf.stream("in").query(sf.col("x") > 1), "query\\(\\) takes a string"),
    (lambda: sf.stream("in").map("upper"), "map\\(\\) takes a function"),
    (lambda: sf.stream("in").peek(None), "peek\\(\\) takes a function"),
    (lambda: sf.from_pandas([1, 2]), "from_pandas\\(\\) takes a DataFrame"),
    (lambda: sf.from_pandas(DF).run(until=-1), "until= a count must be >= 0"),
])
def test_bad_arguments_are_config_errors(call, message):
    with pytest.raises(sf.ConfigError, match=message):
        call()


def test_an_unparseable_until_is_a_config_error():
    with pytest.raises(sf.ConfigError, match="until= must be 'end', a record count or a time"):
        sf.from_pandas(DF).run(until="tomorrow-ish")


def test_indexing_with_a_number_is_a_config_error():
    with pytest.raises(sf.ConfigError, match="cannot index a StreamFrame with int"):
        sf.stream("in")[5]


def test_indexing_with_a_number_says_what_to_do():
    with pytest.raises((TypeError, sf.ConfigError), match="s\\[s.qty > 100\\]"):
        sf.stream("in")[5]


def test_expressions_refuse_python_boolean_logic():
    s = sf.stream("in")
    with pytest.raises(TypeError, match="&, \\| and ~"):
        s[(s.x > 1) and (s.y < 2)]


def test_expressions_reject_unknown_series_attributes():
    with pytest.raises(AttributeError, match="no attribute 'not_a_method'"):
        sf.col("x").not_a_method()


def test_a_typo_in_a_column_name_fails_with_the_available_columns_and_the_closest():
    s = sf.stream("in")
    driver = TestDriver(s[s.qyt > 1])
    with pytest.raises(sf.UnknownColumnError, match=r"no column 'qyt': .*\(columns: qty, price\); "
                                                    r"did you mean 'qty'\?"):
        driver.pipe("in", [{"qty": 5, "price": 1.0}])
    assert driver.dead_letters == []


# --- the examples in docstrings run ---------------------------------------------------------------

@pytest.mark.parametrize("module", [
    "streamframe.frames.stream", "streamframe.frames.sources", "streamframe.plan.expr",
    "streamframe.serde", "streamframe.serde.json_encode", "streamframe.time.extract",
    "streamframe.runtime.testing", "streamframe.plan.explain", "streamframe.plan.columns",
    "streamframe.frames.schema", "streamframe.runtime.dead_letters", "streamframe.serde.avro",
    "streamframe.serde.wire", "streamframe.kafka.registry", "streamframe.serde.jsonschema",
])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
