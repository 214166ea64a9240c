"""Value and key formats through a frame: json, csv, text, bytes; bad records are dead-lettered alone.

Decoding is checked against pandas/orjson reading the same records; the Arrow JSON encoder is checked
by a round trip through orjson on random frames.
"""

from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

import streamframe as sf
from streamframe.operators.partitioner import Partitioner, partition_for
from streamframe.runtime.repartition import join_keys
from streamframe.serde import encode_keys, key_bytes, value_format
from streamframe.serde.json_encode import encode_json_rows
from streamframe.testing import TestDriver

GOOD = [{"user": f"u{i}", "clicks": i * 3, "score": i / 4, "vip": i % 2 == 0} for i in range(8)]


def raw_json(rows) -> list[bytes]:
    return [orjson.dumps(r) for r in rows]


# --- JSON ---------------------------------------------------------------------------------------

def test_json_decodes_like_pandas(drive):
    driver = drive(sf.stream("in"), GOOD)
    assert_frame_equal(driver.output(), pd.DataFrame(GOOD))
    assert driver.dead_letters == []


def test_malformed_json_dead_letters_exactly_that_record(drive):
    values = raw_json(GOOD)
    bad = b'{"user": "u?", "clicks": '
    values.insert(5, bad)
    keys = [f"k{i}" for i in range(len(values))]
    driver = drive(sf.stream("in"), values, keys=keys, partition=2)
    assert_frame_equal(driver.output(), pd.DataFrame(GOOD))
    assert driver.output(metadata=True)["_offset"].tolist() == [0, 1, 2, 3, 4, 6, 7, 8]
    [letter] = driver.dead_letters
    assert letter["value"] == bad  # the original bytes, untouched
    assert letter["key"] == b"k5"
    assert (letter["topic"], letter["partition"], letter["offset"]) == ("in", 2, 5)
    assert letter["reason"].startswith("invalid JSON")
    assert letter["dead_letter_topic"] == "in.dlq"
    assert driver.metrics["dead_letters"] == 1
    assert driver.metrics["records_out"] == len(GOOD)


@pytest.mark.parametrize(
    "bad", [b"", b"not json", b'{"a": 1} trailing', b'{"a": }', b"\xff\xfe{}", b'{"a": 1']
)
def test_every_kind_of_malformed_json_is_isolated(drive, bad):
    values = raw_json(GOOD[:3]) + [bad] + raw_json(GOOD[3:])
    driver = drive(sf.stream("in"), values)
    assert_frame_equal(driver.output(), pd.DataFrame(GOOD))
    assert [d["offset"] for d in driver.dead_letters] == [3]
    assert driver.dead_letters[0]["value"] == bad


def test_invalid_utf8_inside_a_json_string_is_dead_lettered_alone(drive):
    # Arrow's reader passes a string's bytes through unchecked: the column held bytes pandas cannot read.
    bad = b'{"user": "\xff\xfe", "clicks": 9}'
    values = raw_json(GOOD[:2]) + [bad] + raw_json(GOOD[2:])
    driver = drive(sf.stream("in"), values)
    assert_frame_equal(driver.output(), pd.DataFrame(GOOD))
    [letter] = driver.dead_letters
    assert letter["offset"] == 2 and letter["value"] == bad and "UTF-8" in letter["reason"]
    accented = [{"user": "José", "clicks": 1}]  # valid UTF-8 beyond ASCII decodes as before
    assert_frame_equal(drive(sf.stream("in"), accented).output(), pd.DataFrame(accented))


def test_pretty_printed_json_with_newlines_is_one_record(drive):
    values = [b'{\n  "user": "a",\n  "clicks": 1\n}', b'{"user": "b", "clicks": 2}']
    driver = drive(sf.stream("in"), values)
    assert_frame_equal(
        driver.output(), pd.DataFrame([{"user": "a", "clicks": 1}, {"user": "b", "clicks": 2}])
    )


def test_fields_whose_types_disagree_keep_every_record(drive):
    rows = [{"id": 1, "v": 1}, {"id": 2, "v": "one"}, {"id": 3, "v": [1]}, {"id": 4}]
    driver = drive(sf.stream("in"), rows)
    out = driver.output()
    assert driver.dead_letters == []
    assert out["id"].tolist() == [1, 2, 3, 4]
    assert out["v"].tolist()[:3] == [1, "one", [1]]
    assert pd.isna(out["v"].iloc[3])


@pytest.mark.parametrize(
    "value, expected",
    [
        (b"5", 5),
        (b"-2.5", -2.5),
        (b'"hello"', "hello"),
        (b"true", True),
        (b"[1, 2]", [1, 2]),
    ],
)
def test_non_object_json_lands_in_a_value_column(drive, value, expected):
    driver = drive(sf.stream("in"), [value, value])
    assert driver.output()["value"].tolist() == [expected, expected]


def test_objects_and_non_objects_mix(drive):
    driver = drive(sf.stream("in"), [{"a": 1}, 7, b'"x"', {"a": 2, "value": 8}])
    out = driver.output()
    assert out.columns.tolist() == ["a", "value"]
    assert out["a"].tolist()[0] == 1 and out["a"].tolist()[3] == 2
    assert out["value"].tolist()[1:] == [7, "x", 8]
    assert driver.dead_letters == []


def test_tombstones_are_rows_without_fields_and_keep_their_key(drive):
    driver = drive(sf.stream("in"), [{"a": 1, "b": "x"}, None, {"a": 3, "b": "z"}], keys=["k1", "k2", "k3"])
    out = driver.output(metadata=True)
    expected = pd.DataFrame([{"a": 1, "b": "x"}, {}, {"a": 3, "b": "z"}])
    assert_frame_equal(out[["a", "b"]], expected)
    assert out["_key"].tolist() == ["k1", "k2", "k3"]
    assert driver.dead_letters == []


def test_a_batch_of_only_tombstones(drive):
    driver = drive(sf.stream("in"), [None, None], keys=["gone1", "gone2"])
    out = driver.output(metadata=True)
    assert out["_key"].tolist() == ["gone1", "gone2"]
    assert [c for c in out.columns if not c.startswith("_")] == []


def test_json_schema_gives_columns_and_types(drive):
    schema = {"user": "str", "clicks": "int64", "score": "float64", "absent": "float64"}
    rows = [{**r, "extra": 1} for r in GOOD]
    driver = drive(sf.stream("in", schema=schema), rows)
    expected = pd.DataFrame(GOOD).reindex(columns=list(schema)).astype(schema)
    assert_frame_equal(driver.output(), expected)


def test_json_schema_dead_letters_records_that_do_not_fit(drive):
    schema = {"user": "str", "clicks": "int64"}
    rows = [{"user": "a", "clicks": 1}, {"user": "b", "clicks": "many"}, {"user": "c", "clicks": 3}]
    driver = drive(sf.stream("in", schema=schema), rows)
    assert_frame_equal(driver.output(), pd.DataFrame([rows[0], rows[2]]).astype(schema))
    assert [d["offset"] for d in driver.dead_letters] == [1]
    assert "schema" in driver.dead_letters[0]["reason"]


def test_json_schema_misfits_are_dead_lettered_even_when_the_whole_batch_parses(drive):
    # Arrow reads this batch fine (clicks is a string in every record); the schema still does not fit
    schema = {"user": "str", "clicks": "int64"}
    rows = [{"user": "a", "clicks": "1"}, {"user": "b", "clicks": "many"}, {"user": "c", "clicks": "3"}]
    driver = drive(sf.stream("in", schema=schema), rows)
    assert driver.output()["user"].tolist() == ["a", "c"]
    assert driver.output()["clicks"].tolist() == [1, 3]
    assert [d["offset"] for d in driver.dead_letters] == [1]


def test_json_schema_with_a_missing_required_integer(drive):
    schema = {"user": "str", "clicks": "int64"}
    rows = [{"user": "a", "clicks": 1}, {"user": "b"}]
    driver = drive(sf.stream("in", schema=schema), rows)
    assert driver.output()["user"].tolist() == ["a"]
    assert [d["offset"] for d in driver.dead_letters] == [1]


# --- CSV ----------------------------------------------------------------------------------------

CSV_LINES = ["AAPL,100,10.5", "MSFT,200,20.25", '"BRK,A",1,500000.0', "GOOG,50,99.0"]


def test_csv_with_a_schema_matches_pandas_read_csv(drive):
    import io

    names = ["symbol", "qty", "price"]
    driver = drive(sf.stream("in", value="csv", schema=names), CSV_LINES)
    expected = pd.read_csv(io.StringIO("\n".join(CSV_LINES)), names=names, header=None)
    assert_frame_equal(driver.output(), expected)


def test_csv_schema_with_dtypes(drive):
    schema = {"symbol": "str", "qty": "float64", "price": "float64"}
    driver = drive(sf.stream("in", value="csv", schema=schema), CSV_LINES)
    assert driver.output().dtypes.astype(str).tolist() == ["str", "float64", "float64"]
    assert driver.output()["qty"].tolist() == [100.0, 200.0, 1.0, 50.0]


def test_csv_without_schema_names_columns_by_position(drive):
    driver = drive(sf.stream("in", value="csv"), CSV_LINES)
    assert driver.output().columns.tolist() == ["c0", "c1", "c2"]
    assert driver.output()["c0"].tolist() == ["AAPL", "MSFT", "BRK,A", "GOOG"]


@pytest.mark.parametrize("bad", ["TSLA,5", "TSLA,5,1.0,extra"])
def test_csv_wrong_field_count_is_dead_lettered(drive, bad):
    lines = CSV_LINES[:2] + [bad] + CSV_LINES[2:]
    driver = drive(sf.stream("in", value="csv", schema=["symbol", "qty", "price"]), lines)
    import io

    expected = pd.read_csv(io.StringIO("\n".join(CSV_LINES)), names=["symbol", "qty", "price"], header=None)
    assert_frame_equal(driver.output(), expected)
    [letter] = driver.dead_letters
    assert letter["offset"] == 2
    assert letter["value"] == bad.encode()
    assert "expected 3" in letter["reason"]


def test_csv_schema_misfit_is_dead_lettered(drive):
    schema = {"symbol": "str", "qty": "int64", "price": "float64"}
    lines = ["AAPL,100,10.5", "MSFT,lots,20.25", "GOOG,50,99.0"]
    driver = drive(sf.stream("in", value="csv", schema=schema), lines)
    assert driver.output()["symbol"].tolist() == ["AAPL", "GOOG"]
    assert [d["offset"] for d in driver.dead_letters] == [1]


def test_csv_round_trips_through_its_encoder():
    fmt = value_format("csv", ["symbol", "qty", "price"])
    decoded = fmt.decode([line.encode() for line in CSV_LINES])
    again = fmt.decode(fmt.encode(decoded.frame))
    assert_frame_equal(again.frame, decoded.frame)


# --- text and bytes -------------------------------------------------------------------------------


def test_text_values_become_a_value_column(drive):
    lines = ["hello", "héllo wörld ✓", "", 'tab\tand "quotes"']
    driver = drive(sf.stream("in", value="text"), lines)
    assert driver.output()["value"].tolist() == lines
    assert driver.records(format="text") == [(None, line.encode(), i + 1) for i, line in enumerate(lines)]


def test_invalid_utf8_text_is_dead_lettered_alone(drive):
    driver = drive(sf.stream("in", value="text"), [b"ok", b"\xff\xfebad", b"fine"])
    assert driver.output()["value"].tolist() == ["ok", "fine"]
    [letter] = driver.dead_letters
    assert letter["offset"] == 1 and letter["value"] == b"\xff\xfebad"
    assert "UTF-8" in letter["reason"]


def test_text_tombstone_is_a_missing_value(drive):
    driver = drive(sf.stream("in", value="text"), ["a", None])
    out = driver.output()
    assert out["value"].iloc[0] == "a" and pd.isna(out["value"].iloc[1])


def test_text_can_be_filtered_with_string_methods(drive):
    lines = ["ERROR disk full", "INFO ok", "ERROR net down", "WARN slow"]
    s = sf.stream("in", value="text")
    driver = drive(s[s.value.str.startswith("ERROR")].assign(n=s.value.str.len()), lines)
    expected = pd.DataFrame({"value": lines})
    expected = expected[expected.value.str.startswith("ERROR")].assign(n=lambda d: d.value.str.len())
    assert_frame_equal(driver.output(), expected.reset_index(drop=True))


def test_bytes_values_are_untouched(drive):
    values = [b"\x00\x01\x02", b"\xff", b"", None, b"plain"]
    driver = drive(sf.stream("in", value="bytes"), values)
    assert driver.output()["value"].tolist() == values
    assert driver.dead_letters == []


# --- keys ----------------------------------------------------------------------------------------


def test_key_formats(drive):
    json_keys = drive(sf.stream("in", key="json"), [{"a": 1}, {"a": 2}], keys=[b'{"id": 7}', b"[1, 2]"])
    assert json_keys.output(metadata=True)["_key"].tolist() == [{"id": 7}, [1, 2]]
    raw_keys = drive(sf.stream("in", key="bytes"), [{"a": 1}, {"a": 2}], keys=[b"\x00\xff", None])
    assert raw_keys.output(metadata=True)["_key"].tolist() == [b"\x00\xff", None]
    text_keys = drive(sf.stream("in"), [{"a": 1}, {"a": 2}], keys=["ключ", None])
    assert text_keys.output(metadata=True)["_key"].tolist() == ["ключ", None]


# One key, written, partitioned or joined on: the same bytes on every path (a float column holding ints
# is an int column with a missing value; a key of several columns is JSON).
SAME_KEYS = [(3.0, 3, b"3"), (np.int64(3), 3, b"3"), ("ключ", "ключ", "ключ".encode()), (True, True, b"True"),
             (("a", 1.0), ("a", 1), b'["a",1]'), (b"\x00\xff", b"\x00\xff", b"\x00\xff")]


@pytest.mark.parametrize(("key", "twin", "expected"), SAME_KEYS)
def test_a_key_is_the_same_bytes_on_every_path(key, twin, expected):
    keys = pd.Series([key, None], dtype=object)
    written = [k.encode() if isinstance(k, str) else k for k in encode_keys(keys, "text")]
    assert written == [expected, None]
    assert join_keys(keys, "text").tolist() == [expected, None]
    assert key_bytes(key) == key_bytes(twin) == expected
    partitions = Partitioner(12)(pd.Series([key, twin], dtype=object))
    assert partitions.tolist() == [partition_for(expected, 12)] * 2
    driver = TestDriver(sf.stream("in", key="bytes"))
    driver.pipe("in", [{"a": 1}], keys=[key])
    assert driver.output(metadata=True)["_key"].tolist() == [expected]


def test_json_keys_are_json_on_every_path():
    keys = pd.Series([3.0, "a", None], dtype=object)
    assert encode_keys(keys, "json") == [b"3", b'"a"', None]
    assert join_keys(keys, "json").tolist() == [b"3", b'"a"', None]


def test_unknown_formats_are_config_errors():
    with pytest.raises(sf.ConfigError, match="unknown value format 'xml'.*json"):
        sf.stream("in", value="xml")
    with pytest.raises(sf.ConfigError, match="unknown key format 'avro-ish'"):
        sf.stream("in", key="avro-ish")


def test_piping_a_non_text_value_to_a_text_topic_is_refused():
    with pytest.raises(sf.ConfigError, match="str or bytes"):
        TestDriver(sf.stream("in", value="text")).pipe("in", [{"a": 1}])


# --- the Arrow JSON encoder -----------------------------------------------------------------------


def _plain(value):
    """What a cell should read back as from JSON."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
TRICKY_TEXT = st.one_of(
    TEXT,
    st.sampled_from(
        ['"', "\\", '\\"', "\n", "\x00", "\x1f", "\x7f", 'a"b\\c', "é", "✓", "𝄞", "\u2028", "{}", "null", ""]
    ),
)
COLUMNS = {
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(allow_nan=True, allow_infinity=True),
    "text": st.one_of(st.none(), TRICKY_TEXT),
    "bool": st.one_of(st.none(), st.booleans()),
    "mixed": st.one_of(
        st.none(),
        st.integers(-(2**53), 2**53),
        TRICKY_TEXT,
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
}


@st.composite
def frames(draw):
    n = draw(st.integers(1, 12))
    kinds = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=6))
    names = draw(st.lists(TRICKY_TEXT, min_size=len(kinds), max_size=len(kinds), unique=True))
    data = {}
    for name, kind in zip(names, kinds):
        values = draw(st.lists(COLUMNS[kind], min_size=n, max_size=n))
        dtype = "object" if kind == "mixed" else None
        data[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data)


@settings(max_examples=300, deadline=None)
@given(frames())
def test_json_encoder_round_trips_random_frames(frame):
    encoded = encode_json_rows(frame)
    assert len(encoded) == len(frame)
    names = [str(c) for c in frame.columns]
    for raw, row in zip(encoded, frame.itertuples(index=False, name=None)):
        decoded = orjson.loads(raw)
        assert list(decoded) == names
        for name, cell in zip(names, row):
            got, want = decoded[name], _plain(cell)
            if want is None or isinstance(want, bool):
                assert got is want, (name, got, want)
            elif isinstance(want, str):
                assert got == want, (name, got, want)
            else:  # a number: exactly the same value (an int may read back as an equal float)
                assert isinstance(got, (int, float)) and not isinstance(got, bool), (name, got, want)
                assert got == want, (name, got, want)
                if isinstance(want, float):
                    assert isinstance(got, float), (name, got, want)


def test_json_encoder_special_values():
    frame = pd.DataFrame(
        {
            "f": [1.0, float("nan"), float("inf"), -float("inf"), -0.0, 1e300, 5e-324],
            "i": [1, 2, 3, 4, 5, 2**62, -(2**63)],
            "s": ['a"b', "c\\d", "\n", "\x00", None, "ü", ""],
        }
    )
    rows = [orjson.loads(r) for r in encode_json_rows(frame)]
    assert [r["f"] for r in rows] == [1.0, None, None, None, -0.0, 1e300, 5e-324]
    assert all(isinstance(r["f"], float) for r in rows if r["f"] is not None)
    assert [r["i"] for r in rows] == frame["i"].tolist()
    assert [r["s"] for r in rows] == ['a"b', "c\\d", "\n", "\x00", None, "ü", ""]


def test_json_encoder_narrow_and_nullable_floats():
    frame = pd.DataFrame(
        {
            "half": np.array([0.5, 3.0, np.nan, np.inf, -2.25], dtype="float16"),
            "single": np.array([0.5, 3.0, np.nan, -np.inf, 1e30], dtype="float32"),
            "nullable": pd.array([1.5, None, 2.0, 3.25, None], dtype="Float64"),
        }
    )
    rows = [orjson.loads(r) for r in encode_json_rows(frame)]
    assert [r["half"] for r in rows] == [0.5, 3.0, None, None, -2.25]
    assert [r["single"] for r in rows] == [0.5, 3.0, None, None, np.float32(1e30)]
    assert [r["nullable"] for r in rows] == [1.5, None, 2.0, 3.25, None]
    assert all(isinstance(r[c], float) for r in rows for c in r if r[c] is not None)


def test_json_encoder_timestamps_and_nested_values():
    frame = pd.DataFrame(
        {
            "t": pd.to_datetime(
                ["2024-01-01T00:00:00.123Z", "2024-06-30T23:59:59Z"], utc=True, format="ISO8601"
            ),
            "nested": [{"a": [1, 2]}, [1, {"b": None}]],
        }
    )
    rows = [orjson.loads(r) for r in encode_json_rows(frame)]
    assert [pd.Timestamp(r["t"]) for r in rows] == frame["t"].tolist()
    assert [r["nested"] for r in rows] == [{"a": [1, 2]}, [1, {"b": None}]]


def test_records_round_trip_through_the_json_encoder(drive):
    s = sf.stream("in")
    driver = drive(s.assign(ratio=s.clicks / (s.score + 1)), GOOD, keys=[f"k{i}" for i in range(8)])
    df = pd.DataFrame(GOOD).assign(ratio=lambda d: d.clicks / (d.score + 1))
    assert [v for _, v, _ in driver.records()] == df.to_dict("records")


def test_json_encoder_keeps_bools_apart_from_numbers_in_a_mixed_column():
    frame = pd.DataFrame({"v": pd.Series([0.5, False, True, 2, None], dtype=object)})
    assert [orjson.loads(r)["v"] for r in encode_json_rows(frame)] == [0.5, False, True, 2, None]
    assert [type(orjson.loads(r)["v"]) for r in encode_json_rows(frame)][:4] == [float, bool, bool, int]


def test_a_record_whose_field_types_vary_is_written_back_unchanged(drive):
    values = [b'{"v": 0.5}', b'{"v": false}', b"{broken", b'{"v": 2}']
    driver = drive(sf.stream("in"), values)
    assert [v for _, v, _ in driver.records()] == [{"v": 0.5}, {"v": False}, {"v": 2}]
    assert type(driver.records()[1][1]["v"]) is bool


def test_a_text_key_that_is_not_utf8_is_written_back_as_its_original_bytes(drive):
    from streamframe.serde import encode_keys

    driver = drive(sf.stream("in"), [{"a": 1}, {"a": 2}], keys=[b"\xffraw", "ok"])
    keys = driver.output(metadata=True)["_key"]
    assert encode_keys(keys, "text") == [b"\xffraw", b"ok"]
    assert [k for k, _, _ in driver.records()] == [b"\xffraw".decode("utf-8", "surrogateescape"), "ok"]


def test_nested_objects_and_lists_decode_like_pandas_and_pass_through_unchanged(drive):
    rows = [
        {"id": 1, "user": {"name": "a", "age": 30}, "tags": [1, 2], "pts": [{"x": 1}]},
        {"id": 2, "user": {"name": "b"}, "tags": [], "pts": [{"x": 2, "y": None}]},
        {"id": 3, "user": None, "tags": None, "pts": [{"y": 3}]},
        {"id": 4, "user": {"age": 41, "extra": {"deep": [True]}}, "tags": [7], "pts": []},
    ]
    driver = drive(sf.stream("in"), rows)
    assert_frame_equal(driver.output(), pd.DataFrame(rows))
    assert [v for _, v, _ in driver.records()] == rows


@pytest.mark.parametrize("first_has_every_field", [True, False])
def test_a_large_batch_decodes_like_pandas(drive, first_has_every_field):
    # over a megabyte, so Arrow may parse it in parallel blocks; columns keep first-appearance order
    rows = [{"id": i, "sym": f"S{i % 50}", "px": i / 8, "note": "x" * (i % 40)} for i in range(20_000)]
    for i in range(0, len(rows), 997):
        rows[i] = {"note": "reordered", "px": 0.5, "id": i, "sym": "R", "late": i}
    if not first_has_every_field:
        rows[0] = {"id": 0, "sym": "S0"}
    values = [orjson.dumps(r) for r in rows]
    assert sum(map(len, values)) > 1 << 20
    driver = drive(sf.stream("in"), values)
    assert_frame_equal(driver.output(), pd.DataFrame(rows))
