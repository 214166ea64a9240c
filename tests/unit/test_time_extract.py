"""Event time: `timestamp=` a column of epoch ms, ISO strings or datetimes; bad times are dead-lettered;
the extracted time is the record's `_timestamp` and the timestamp of the output record."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_series_equal

import streamframe as sf
from streamframe.time.extract import ms_to_datetime, to_epoch_ms

EPOCHS = [1_700_000_000_000, 1_700_000_000_500, 1_600_000_000_123, 0, 1_800_000_000_999]
ISO = ["2024-01-01T00:00:00Z", "2024-01-01T01:30:00+01:00", "2024-02-29T12:00:00.250Z",
       "2024-03-10 08:15:00", "2023-12-31T23:59:59.999-05:00"]


def pandas_ms(values) -> list[int]:
    """The oracle: pandas' own ISO 8601 parsing, to UTC epoch milliseconds."""
    parsed = pd.to_datetime(pd.Series(values), utc=True, format="ISO8601")
    return parsed.astype("datetime64[ms, UTC]").astype("int64").tolist()


def test_epoch_ms_column_becomes_the_record_timestamp(drive):
    rows = [{"id": i, "ts": t} for i, t in enumerate(EPOCHS)]
    driver = drive(sf.stream("in", timestamp="ts"), rows, timestamps=[5] * len(rows))
    out = driver.output(metadata=True)
    assert out["_timestamp"].tolist() == pd.to_datetime(EPOCHS, unit="ms", utc=True).tolist()
    assert str(out["_timestamp"].dtype) == "datetime64[ms, UTC]"
    assert [t for _, _, t in driver.records()] == EPOCHS
    assert driver.metrics["stream_time"] == pd.Timestamp(max(EPOCHS), unit="ms", tz="UTC")


def test_iso_strings_match_pandas_parsing(drive):
    rows = [{"id": i, "ts": t} for i, t in enumerate(ISO)]
    driver = drive(sf.stream("in", timestamp="ts"), rows)
    assert [t for _, _, t in driver.records()] == pandas_ms(ISO)
    assert driver.dead_letters == []


def test_epoch_ms_and_iso_strings_mixed_in_one_batch(drive):
    stamps = [EPOCHS[0], ISO[1], EPOCHS[1], ISO[2]]
    driver = drive(sf.stream("in", timestamp="ts"), [{"ts": t} for t in stamps])
    assert [t for _, _, t in driver.records()] == [EPOCHS[0], pandas_ms([ISO[1]])[0], EPOCHS[1],
                                                   pandas_ms([ISO[2]])[0]]


def test_float_epoch_ms(drive):
    driver = drive(sf.stream("in", timestamp="ts"), [{"ts": 1.7e12}, {"ts": 1_700_000_000_123.0}])
    assert [t for _, _, t in driver.records()] == [1_700_000_000_000, 1_700_000_000_123]


def test_timestamp_record_uses_the_kafka_timestamp(drive):
    rows = [{"ts": 1}, {"ts": 2}]
    for ts in (None, "record"):
        driver = drive(sf.stream("in", timestamp=ts), rows, timestamps=[1000, 2000])
        assert [t for _, _, t in driver.records()] == [1000, 2000]


def test_timestamp_from_a_function_of_the_batch(drive):
    rows = [{"day": "2024-05-01", "hour": 3}, {"day": "2024-05-02", "hour": 23}]
    s = sf.stream(
        "in", timestamp=lambda df: pd.to_datetime(df.day, utc=True) + pd.to_timedelta(df.hour, unit="h")
    )
    driver = drive(s, rows)
    assert [t for _, _, t in driver.records()] == pandas_ms(["2024-05-01T03:00:00Z", "2024-05-02T23:00:00Z"])


def test_timestamp_from_a_column_expression(drive):
    s = sf.stream("in", timestamp=sf.col("secs") * 1000)
    driver = drive(s, [{"secs": 1_700_000_000}, {"secs": 1_700_000_001}])
    assert [t for _, _, t in driver.records()] == [1_700_000_000_000, 1_700_000_001_000]


@pytest.mark.parametrize("bad", ["soon", "", None, -5, "2024-13-45T00:00:00Z", True, [1]])
def test_invalid_timestamps_are_dead_lettered_alone(drive, bad):
    rows = [{"id": 0, "ts": EPOCHS[0]}, {"id": 1, "ts": bad}, {"id": 2, "ts": EPOCHS[1]}]
    driver = drive(sf.stream("in", timestamp="ts"), rows, keys=["a", "b", "c"])
    assert driver.output()["id"].tolist() == [0, 2]
    assert [t for _, _, t in driver.records()] == [EPOCHS[0], EPOCHS[1]]
    [letter] = driver.dead_letters
    assert letter["offset"] == 1 and letter["key"] == b"b"
    assert "no valid timestamp" in letter["reason"] and "ts" in letter["reason"]


def test_a_record_without_the_timestamp_field_is_dead_lettered(drive):
    driver = drive(sf.stream("in", timestamp="ts"), [{"ts": EPOCHS[0]}, {"id": 1}, {"ts": EPOCHS[2]}])
    assert [t for _, _, t in driver.records()] == [EPOCHS[0], EPOCHS[2]]
    assert [d["offset"] for d in driver.dead_letters] == [1]


def test_a_batch_without_the_timestamp_column_is_dead_lettered_whole(drive):
    driver = drive(sf.stream("in", timestamp="ts"), [{"id": 1}, {"id": 2}])
    assert len(driver.output()) == 0
    assert [d["offset"] for d in driver.dead_letters] == [0, 1]


def test_timestamps_kept_through_operations(drive):
    rows = [{"v": i, "ts": t} for i, t in enumerate(EPOCHS)]
    s = sf.stream("in", timestamp="ts")
    frame = s[s.v != 2].assign(w=s.v * 2).rekey("v")[["w"]]
    driver = drive(frame, rows)
    assert driver.records() == [(str(i), {"w": 2 * i}, t) for i, t in enumerate(EPOCHS) if i != 2]


def test_timestamp_usable_in_expressions(drive):
    rows = [{"ts": t} for t in ISO]
    s = sf.stream("in", timestamp="ts")
    driver = drive(s.assign(year=s._timestamp.dt.year, minute=s._timestamp.dt.minute), rows)
    parsed = pd.to_datetime(pd.Series(ISO), utc=True, format="ISO8601")
    assert driver.output()["year"].tolist() == parsed.dt.year.tolist()
    assert driver.output()["minute"].tolist() == parsed.dt.minute.tolist()


# --- from_pandas with datetimes ---------------------------------------------------------------


@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Paris"])
def test_from_pandas_datetime_column(tz):
    times = pd.date_range("2024-03-30 22:00", periods=6, freq="37min", tz=tz)
    df = pd.DataFrame({"x": range(6), "when": times})
    out = sf.from_pandas(df, timestamp="when").run(metadata=True)
    expected = times.tz_localize("UTC") if tz is None else times.tz_convert("UTC")
    assert_series_equal(
        out["_timestamp"], pd.Series(expected, name="_timestamp").astype("datetime64[ms, UTC]")
    )


def test_from_pandas_missing_datetime_is_dead_lettered():
    df = pd.DataFrame({"x": [1, 2, 3], "when": pd.to_datetime(["2024-01-01", None, "2024-01-03"])})
    frame = sf.from_pandas(df, timestamp="when")
    with pytest.warns(sf.DroppedRecordsWarning, match="1 of 3 records went to pandas.dlq: no valid time"):
        out = frame.run(metadata=True)
    assert out["x"].tolist() == [1, 3]
    assert out["_timestamp"].tolist() == pd.to_datetime(["2024-01-01", "2024-01-03"], utc=True).tolist()


def test_from_pandas_python_datetimes():
    when = [
        dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc),
        dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(2024, 1, 2, 8, 30),
    ]
    df = pd.DataFrame({"x": [1, 2, 3], "when": pd.Series(when, dtype=object)})
    out = sf.from_pandas(df, timestamp="when").run(metadata=True)
    assert out["_timestamp"].tolist() == [
        pd.Timestamp("2024-01-01T12:00Z"),
        pd.Timestamp("2024-01-01T10:00Z"),
        pd.Timestamp("2024-01-02T08:30Z"),
    ]


# --- to_epoch_ms directly -----------------------------------------------------------------------


def test_to_epoch_ms_on_each_kind_of_column():
    cases = [
        (pd.Series(EPOCHS), EPOCHS, [True] * 5),
        (pd.Series([1.5e12, np.nan, np.inf]), [1_500_000_000_000, -1, -1], [True, False, False]),
        (pd.Series(ISO), pandas_ms(ISO), [True] * 5),
        (pd.Series(pd.to_datetime(ISO, utc=True, format="ISO8601")), pandas_ms(ISO), [True] * 5),
        (pd.Series(pd.to_datetime(["2024-01-01", None])), [1_704_067_200_000, -1], [True, False]),
        (pd.Series([True, False]), [-1, -1], [False, False]),
        (
            pd.Series([5, "1970-01-01T00:00:01Z", "x", None, True], dtype=object),
            [5, 1000, -1, -1, -1],
            [True, True, False, False, False],
        ),
    ]
    for series, ms, ok in cases:
        got_ms, got_ok = to_epoch_ms(series)
        assert got_ms.tolist() == ms, series
        assert got_ok.tolist() == ok, series


def test_ms_to_datetime_round_trips():
    ms = np.array(EPOCHS, dtype="int64")
    again, ok = to_epoch_ms(pd.Series(ms_to_datetime(ms)))
    assert again.tolist() == EPOCHS and ok.all()


def test_a_timestamp_function_that_fails_on_one_record_dead_letters_only_that_record(drive):
    days = ["2024-01-01", "2024-01-02", "not a day", "2024-01-04", "2024-01-05"]
    s = sf.stream("in", timestamp=lambda df: pd.to_datetime(df.day, utc=True, format="ISO8601"))
    driver = drive(s, [{"day": d} for d in days])
    good = [d for d in days if d != "not a day"]
    assert [t for _, _, t in driver.records()] == pandas_ms(good)
    [letter] = driver.dead_letters
    assert letter["offset"] == 2
    assert "no valid timestamp" in letter["reason"] and "not a day" in letter["reason"]


def test_from_pandas_timestamp_function_that_fails_on_one_row():
    df = pd.DataFrame({"day": ["2024-01-01", "bad", "2024-01-03"], "x": [1, 2, 3]})
    frame = sf.from_pandas(df, timestamp=lambda d: pd.to_datetime(d.day, utc=True, format="ISO8601"))
    with pytest.warns(sf.DroppedRecordsWarning, match="1 of 3 records went to pandas.dlq: no valid time"):
        out = frame.run()
    assert out["x"].tolist() == [1, 3]


def test_explain_with_a_timestamp_expression():
    text = sf.stream("in", timestamp=sf.col("secs") * 1000).explain()
    assert "timestamp: (secs * 1000)" in text
