"""Bad records go where `on_error` says — dead letter (default), skip, or fail — and only the bad ones.

Failures to decode and failures to evaluate (a user function raising for one row, a cast that does not
fit one value) are isolated to exactly the failing records; every other record comes out as pandas
would compute it.
"""

from __future__ import annotations

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import streamframe as sf
from streamframe.testing import TestDriver

ROWS = [{"id": i, "qty": i % 7, "name": f"n{i}"} for i in range(40)]
BAD = b'{"id": 99, "qty": '


def with_bad_record(at: int = 3):
    values = [sf_json(r) for r in ROWS]
    values.insert(at, BAD)
    return values


def sf_json(row) -> bytes:
    import orjson

    return orjson.dumps(row)


def header_dict(letter) -> dict[str, bytes]:
    return dict(letter["headers"])


# --- the three policies ---------------------------------------------------------------------------

def test_dead_letter_is_the_default_and_is_counted(drive):
    values = with_bad_record(at=3)
    driver = drive(sf.stream("in"), values, keys=[f"k{i}" for i in range(len(values))], partition=1,
                   headers=[[("trace", b"t%d" % i)] for i in range(len(values))])
    assert_frame_equal(driver.output(), pd.DataFrame(ROWS))
    assert driver.metrics["dead_letters"] == 1
    assert driver.metrics["errors"] == 1
    assert driver.metrics["skipped"] == 0
    [letter] = driver.dead_letters
    assert letter["dead_letter_topic"] == "in.dlq"
    assert (letter["key"], letter["value"]) == (b"k3", BAD)
    headers = header_dict(letter)
    assert headers["trace"] == b"t3"  # the record's own headers are kept
    assert headers["streamframe.topic"] == b"in"
    assert headers["streamframe.partition"] == b"1"
    assert headers["streamframe.offset"] == b"3"
    assert headers["streamframe.error"].decode() == letter["reason"]
    assert headers["streamframe.error"].startswith(b"invalid JSON")


def test_dead_letter_topic_can_be_named(drive):
    driver = drive(sf.stream("in", dead_letter_topic="bad-input"), with_bad_record())
    assert [d["dead_letter_topic"] for d in driver.dead_letters] == ["bad-input"]


def test_skip_counts_and_keeps_no_dead_letters(drive):
    driver = drive(sf.stream("in", on_error="skip"), with_bad_record(at=10))
    assert_frame_equal(driver.output(), pd.DataFrame(ROWS))
    assert driver.metrics["skipped"] == 1
    assert driver.metrics["dead_letters"] == 0
    assert driver.metrics["errors"] == 1
    assert driver.dead_letters == []


def test_fail_raises_a_record_error_naming_topic_partition_and_offset():
    driver = TestDriver(sf.stream("orders", on_error="fail"))
    driver.pipe("orders", ROWS[:5], partition=2)  # offsets 0..4 of partition 2
    with pytest.raises(sf.RecordError) as info:
        driver.pipe("orders", [ROWS[5], BAD, ROWS[6]], partition=2)  # the bad one is offset 6
    message = str(info.value)
    assert "orders[2]@6" in message
    assert "invalid JSON" in message
    assert "on_error" in message
    assert isinstance(info.value, sf.StreamframeError)
    assert len(driver.output()) == 5


def test_fail_on_an_evaluation_error():
    s = sf.stream("in", on_error="fail")
    driver = TestDriver(s.assign(inv=lambda df: df.qty.map(lambda q: 1 / q)))
    with pytest.raises(sf.RecordError, match=r"in\[0\]@0 failed: .*ZeroDivisionError"):
        driver.pipe("in", ROWS[:3])


def test_bad_on_error_is_a_config_error():
    with pytest.raises(sf.ConfigError, match="on_error must be one of dead_letter, skip, fail"):
        sf.stream("in", on_error="ignore")


# --- evaluation errors are isolated to their records ----------------------------------------------

def test_assign_raising_for_one_row_dead_letters_only_that_row(drive):
    def inverse(df):
        return df.qty.map(lambda q: 10 / q)

    driver = drive(sf.stream("in").assign(inv=inverse), ROWS[1:8])  # qty 1..6 then 0 at id 7
    expected = pd.DataFrame(ROWS[1:7]).assign(inv=lambda d: 10 / d.qty)
    assert_frame_equal(driver.output(), expected)
    [letter] = driver.dead_letters
    assert letter["offset"] == 6
    assert "ZeroDivisionError" in letter["reason"]
    assert letter["reason"].startswith("assign-")  # names the operator that failed


def test_many_failing_rows_in_a_large_batch(drive):
    rows = [{"id": i, "qty": i % 97} for i in range(2000)]
    s = sf.stream("in")
    frame = s[s.id % 2 == 0].assign(inv=lambda df: df.qty.map(lambda q: 1 / q))
    driver = drive(frame, rows)
    df = pd.DataFrame(rows)
    df = df[(df.id % 2 == 0) & (df.qty != 0)]
    assert_frame_equal(driver.output(), df.assign(inv=1 / df.qty).reset_index(drop=True))
    expected_bad = [r["id"] for r in rows if r["id"] % 2 == 0 and r["qty"] == 0]
    assert [d["offset"] for d in driver.dead_letters] == expected_bad
    assert driver.metrics["dead_letters"] == len(expected_bad)


def test_astype_on_a_non_numeric_value(drive):
    rows = [{"id": 1, "n": "10"}, {"id": 2, "n": "ten"}, {"id": 3, "n": "30"}, {"id": 4, "n": "4.5x"}]
    driver = drive(sf.stream("in").astype({"n": "int64"}), rows)
    assert_frame_equal(driver.output(), pd.DataFrame([rows[0], rows[2]]).astype({"n": "int64"}))
    assert [d["offset"] for d in driver.dead_letters] == [1, 3]
    assert all(d["reason"].startswith("astype-") for d in driver.dead_letters)


def test_astype_int_on_a_whole_frame(drive):
    rows = [{"a": "1", "b": 2.0}, {"a": "x", "b": 3.0}, {"a": "5", "b": None}, {"a": "7", "b": 8.0}]
    driver = drive(sf.stream("in").astype(int), rows)
    assert driver.output().to_dict("records") == [{"a": 1, "b": 2}, {"a": 7, "b": 8}]
    assert [d["offset"] for d in driver.dead_letters] == [1, 2]


def test_filter_raising_for_one_row(drive):
    def picky(df):
        if (df.name == "n13").any():
            raise ValueError("n13 is cursed")
        return df.qty > 3

    driver = drive(sf.stream("in")[picky], ROWS)
    df = pd.DataFrame(ROWS)
    expected = df[(df.qty > 3) & (df.name != "n13")]
    assert_frame_equal(driver.output(), expected.reset_index(drop=True))
    [letter] = driver.dead_letters
    assert letter["offset"] == 13 and "n13 is cursed" in letter["reason"]


def test_map_raising_for_one_row(drive):
    def checked(df):
        if (df.id == 21).any():
            raise RuntimeError("no 21s")
        return df.assign(twice=df.qty * 2)

    driver = drive(sf.stream("in").map(checked), ROWS)
    df = pd.DataFrame([r for r in ROWS if r["id"] != 21])
    assert_frame_equal(driver.output(), df.assign(twice=df.qty * 2))
    assert [d["offset"] for d in driver.dead_letters] == [21]


def test_a_column_missing_from_some_records_is_missing_data(drive):
    rows = [{"id": 1, "qty": 5}, {"id": 2}, {"id": 3, "qty": 1}]
    s = sf.stream("in")
    driver = drive(s[s.qty > 2], rows)
    assert driver.output()["id"].tolist() == [1]
    assert driver.dead_letters == []


def test_a_column_no_record_of_the_first_batch_has_is_a_mistake_not_bad_data():
    s = sf.stream("in")
    driver = TestDriver(s[s.nme == "n1"])
    with pytest.raises(sf.UnknownColumnError) as info:
        driver.pipe("in", ROWS[:3])
    assert str(info.value) == ("no column 'nme': filter (nme == 'n1') reads it, but none of the first 3 "
                               "records has it (columns: id, qty, name); did you mean 'name'?")
    assert isinstance(info.value, KeyError) and driver.dead_letters == []


def test_a_later_batch_lacking_a_column_dead_letters_with_a_clear_reason(drive):
    s = sf.stream("in")
    driver = drive(s[s.price > 2], [{"id": 0, "price": 3.0}])
    driver.pipe("in", ROWS[:3])  # offsets 1..3: these records lack the price the first one had
    assert driver.output()["id"].tolist() == [0]
    assert [d["offset"] for d in driver.dead_letters] == [1, 2, 3]
    assert "MissingColumnError: missing column 'price'" in driver.dead_letters[0]["reason"]


def test_errors_after_explode_name_the_original_record(drive):
    rows = [{"order": 1, "qty": [1, 2]}, {"order": 2, "qty": [3, 0]}, {"order": 3, "qty": [5]}]
    s = sf.stream("in").explode("qty")
    driver = drive(s.assign(inv=lambda df: df.qty.map(lambda q: 1 / int(q))), rows, keys=["a", "b", "c"])
    assert [d["key"] for d in driver.dead_letters] == [b"b"]
    assert driver.dead_letters[0]["value"] == sf_json(rows[1])
    assert 1 in driver.output()["order"].tolist() and 3 in driver.output()["order"].tolist()


def test_each_source_routes_by_its_own_policy():
    a, b = sf.stream("a", on_error="skip"), sf.stream("b")
    driver = TestDriver(sf.concat([a, b]))
    driver.pipe("a", [{"x": 1}, b"{oops", {"x": 2}])
    driver.pipe("b", [{"x": 3}, b"[broken", {"x": 4}])
    assert driver.output()["x"].tolist() == [1, 2, 3, 4]
    assert driver.metrics["skipped"] == 1
    assert [(d["topic"], d["offset"], d["dead_letter_topic"])
            for d in driver.dead_letters] == [("b", 1, "b.dlq")]


def test_a_failed_batch_never_stops_later_batches(drive):
    driver = TestDriver(sf.stream("in").astype({"qty": "int64"}))
    driver.pipe("in", [{"qty": "x"}])
    driver.pipe("in", [{"qty": "1"}, {"qty": "2"}])
    assert driver.output()["qty"].tolist() == [1, 2]
    assert driver.metrics["dead_letters"] == 1
    assert driver.metrics["records_in"] == 3


# --- from_pandas sources -------------------------------------------------------------------------


def test_from_pandas_dead_letters_failing_rows_and_returns_the_rest():
    df = pd.DataFrame({"a": ["1", "two", "3"]})
    with pytest.warns(sf.DroppedRecordsWarning, match="1 of 3 records went to pandas.dlq"):
        assert sf.from_pandas(df).astype(int).run()["a"].tolist() == [1, 3]


def test_from_pandas_fail_raises():
    df = pd.DataFrame({"a": ["1", "two", "3"]})
    with pytest.raises(sf.RecordError, match=r"pandas:\d+\[0\]@1 failed: astype"):
        sf.from_pandas(df, on_error="fail").astype(int).run()


# --- nothing unexplained: the warning after a bounded run, and the last reason --------------------

def test_last_error_holds_the_latest_reason(drive):
    driver = drive(sf.stream("in").astype({"qty": "int64"}), [{"qty": "1"}, {"qty": "x"}, {"qty": "2"}])
    assert "astype" in driver.metrics["last_error"] and "'x'" in driver.metrics["last_error"]
    driver.pipe("in", [b"{oops"])
    assert driver.metrics["last_error"].startswith("invalid JSON")
    assert driver.metrics["errors"] == 2


def test_last_error_is_none_while_nothing_failed(drive):
    assert drive(sf.stream("in"), ROWS[:3]).metrics["last_error"] is None


def test_a_bounded_run_that_dead_lettered_warns_once_by_reason():
    df = pd.DataFrame({"a": ["1", "two", "3", "x", "5"]})
    with pytest.warns(sf.DroppedRecordsWarning) as caught:
        out = sf.from_pandas(df).astype(int).run()
    assert out["a"].tolist() == [1, 3, 5]  # the run still returns the good rows
    [w] = caught
    message = str(w.message)
    assert message.startswith("2 of 5 records went to pandas.dlq: ValueError in astype-")
    assert message.endswith("(2)") and "\n" not in message
    assert w.filename == __file__  # points at the caller's line, not into streamframe


def test_the_warning_counts_each_kind_of_reason_most_common_first():
    df = pd.DataFrame({"q": [1, 0, 2, 0, 0], "t": [1000, 2000, "never", 4000, 5000]})
    s = sf.from_pandas(df, timestamp="t")
    with pytest.warns(sf.DroppedRecordsWarning) as caught:
        s.assign(inv=lambda d: d.q.map(lambda q: 1 / q)).run()
    kinds = str(caught[0].message).split(": ", 1)[1]
    assert kinds.startswith("ZeroDivisionError in assign-") and kinds.endswith(
        "(3), no valid timestamp in 't' (1)")
    assert str(caught[0].message).startswith("4 of 5 records went to pandas.dlq")


def test_skipped_and_late_records_are_named_too():
    df = pd.DataFrame({"k": ["a"] * 4, "t": [10_000, 20_000, 1_000, 2_000], "n": ["1", "2", "3", "x"]})
    s = sf.from_pandas(df, timestamp="t", on_error="skip").astype({"n": int})
    with pytest.warns(sf.DroppedRecordsWarning) as caught:
        s.groupby("k").window(tumbling="5s").count().run()
    message = str(caught[0].message)
    assert message.startswith("1 of 4 records was skipped: ValueError in astype-")
    assert message.endswith("; 1 late drop (records past their window's end + grace; "
                            "see metrics['late_drops'])")


def test_late_records_routed_to_the_dead_letter_topic_are_not_counted_twice():
    df = pd.DataFrame({"k": ["a"] * 3, "t": [10_000, 20_000, 1_000]})
    s = sf.from_pandas(df, timestamp="t")
    with pytest.warns(sf.DroppedRecordsWarning) as caught:
        s.groupby("k").window(tumbling="5s", late="dead_letter").count().run()
    assert str(caught[0].message) == "1 of 3 records went to pandas.dlq: late record (1)"


def test_a_clean_run_does_not_warn():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sf.from_pandas(pd.DataFrame({"a": [1, 2]})).run()["a"].tolist() == [1, 2]


def test_a_live_query_keeps_its_last_error_in_metrics():
    q = sf.from_pandas(pd.DataFrame({"a": ["1", "two"]})).astype(int).start()
    q.wait(30)
    assert q.status == "finished" and q.metrics["dead_letters"] == 1
    assert q.metrics["last_error"].startswith("astype-") and "'two'" in q.metrics["last_error"]
    assert q.dropped().startswith("1 of 2 records went to pandas.dlq: ValueError in astype-")


# --- a column no record has is a mistake in the frame, judged on the first batch -----------------

TRADES = [{"symbol": "A", "qty": 5, "price": 1.5}, {"symbol": "B", "qty": 1, "price": 2.0}]


@pytest.mark.parametrize("build, column, closest", [
    (lambda s: s.groupby("symbl").count(), "symbl", "symbol"),
    (lambda s: s.groupby("symbol").agg(total=("qtty", "sum")), "qtty", "qty"),
    (lambda s: s.groupby("symbol")["prices"].sum(), "prices", "price"),
    (lambda s: s.assign(n=s.qty * s.Price), "Price", "price"),
    (lambda s: s[["symbol", "qyt"]], "qyt", "qty"),
    (lambda s: s.rekey("sym"), "sym", "symbol"),
    (lambda s: s[s.qty > 1].assign(x=s.zzz + 1), "zzz", None),
])
def test_expressions_groupbys_and_aggregations_name_the_column_and_the_closest(build, column, closest):
    driver = TestDriver(build(sf.stream("in")))
    with pytest.raises(sf.UnknownColumnError) as info:
        driver.pipe("in", TRADES)
    message = str(info.value)
    assert message.startswith(f"no column {column!r}: ")
    assert "(columns: symbol, qty, price)" in message
    assert message.endswith(f"; did you mean {closest!r}?" if closest else "(columns: symbol, qty, price)")
    assert driver.dead_letters == [] and driver.metrics["errors"] == 0


def test_columns_made_on_the_way_and_metadata_are_not_mistaken_for_typos(drive):
    s = sf.stream("in")
    frame = s.assign(n=s.qty * s.price, m=lambda d: d.n * 2).assign(k=s.n + 1)
    frame = frame[(frame.n > 0) & (frame._partition == 0)]
    out = drive(frame.groupby("_key").agg(total=("k", "sum")), TRADES, keys=["x", "x"]).table()
    assert out["total"].tolist() == [5 * 1.5 + 1 + 1 * 2.0 + 1]


def test_a_first_batch_that_decoded_no_record_judges_nothing_yet():
    s = sf.stream("in")
    driver = TestDriver(s[s.qty > 1])
    driver.pipe("in", [b"{broken", b"[1,"])  # nothing decoded: no columns to judge by
    assert driver.metrics["dead_letters"] == 2
    with pytest.raises(sf.UnknownColumnError, match="did you mean 'qty'"):
        TestDriver(s[s.qtty > 1]).pipe("in", [b"{broken", *[sf_json(r) for r in TRADES]])


def test_a_live_query_fails_with_the_error_in_its_status():
    s = sf.from_pandas(pd.DataFrame(TRADES))
    q = s[s["qtty"] > 1].start()  # by name: s.qtty itself is refused, the DataFrame shows its columns
    with pytest.raises(sf.UnknownColumnError):
        q.wait(30)
    assert q.status == "failed"
    assert "did you mean 'qty'?" in q.metrics["last_error"]
    assert q.metrics["dead_letters"] == 0


def test_a_group_key_that_is_not_utf8_is_dead_lettered_saying_so():
    """Bytes that are not UTF-8 cannot be a text group key (no store or output topic could encode it):
    only those records go, with the reason in the user's words, and the rest equal pandas."""
    driver = TestDriver(sf.stream("in").groupby("_key").agg(n=("qty", "count"), qty=("qty", "sum")))
    rows = ROWS[:10]
    keys = [b"\xff\xfe\x00k" if i in (2, 7) else f"k{i % 3}".encode() for i in range(len(rows))]
    driver.pipe("in", [sf_json(r) for r in rows], keys=keys, timestamps=list(range(len(rows))))
    good = pd.DataFrame([r | {"_key": k.decode()} for r, k in zip(rows, keys) if not k.startswith(b"\xff")])
    gold = good.groupby("_key").agg(n=("qty", "count"), qty=("qty", "sum"))
    assert_frame_equal(driver.table().sort_index(), gold.sort_index(), check_dtype=False, check_names=False)
    assert [d["key"] for d in driver.dead_letters] == [keys[2], keys[7]]  # the original bytes
    assert all(d["reason"].endswith("group key (_key) is not UTF-8 text") for d in driver.dead_letters)
