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


def test_a_column_missing_from_a_whole_batch_dead_letters_with_a_clear_reason(drive):
    s = sf.stream("in")
    driver = drive(s[s.price > 2], ROWS[:3])
    assert len(driver.output()) == 0
    assert [d["offset"] for d in driver.dead_letters] == [0, 1, 2]
    assert "no column 'price'" in driver.dead_letters[0]["reason"]


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
    assert sf.from_pandas(df).astype(int).run()["a"].tolist() == [1, 3]


def test_from_pandas_fail_raises():
    df = pd.DataFrame({"a": ["1", "two", "3"]})
    with pytest.raises(sf.RecordError, match=r"pandas:\d+\[0\]@1 failed: astype"):
        sf.from_pandas(df, on_error="fail").astype(int).run()
