"""Projection of JSON values (plan/values.py): which plans decode only the fields they read, that a
batch so decoded reads the same as decoded whole, and that a record with fields appended to its own
bytes reads as the whole record encoded with them.

The oracle is the whole-batch path: `JsonFormat.decode` and `encode_json_rows`, which every other
plan uses.
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

import streamframe as sf
from streamframe.plan.values import Projection, value_projection
from streamframe.records import META, RECORD_BYTES, RawBatch
from streamframe.runtime.topology import Topology
from streamframe.serde.formats import JsonFormat
from streamframe.serde.json_encode import append_json_fields, encode_json_rows
from streamframe.testing import TestDriver


def projection_of(frame):
    return value_projection(frame._node).get(frame._node.sources()[0].id)


def test_filters_and_new_columns_read_only_their_fields():
    s = sf.stream("in")
    frame = s[s.qty > 100].assign(notional=s.qty * s.price, tag="big")[s.side == "buy"]
    assert projection_of(frame) == Projection(reads=("price", "qty", "side"), appends=("notional", "tag"))
    t = sf.stream("in", timestamp="ts")
    assert projection_of(t.assign(x=t.qty + 1)) == Projection(reads=("qty", "ts"), appends=("x",))


@pytest.mark.parametrize("build", [
    lambda s: s[lambda b: b.qty > 1],                     # a function could read anything
    lambda s: s.query("qty > 1"),                        # so could a string query
    lambda s: s.assign(qty=s.qty * 2),                   # overwrites a field it reads
    lambda s: s.assign(a=s.qty * 2).assign(b=s.a + 1),   # reads a new column
    lambda s: s[["qty"]],                                # drops fields
    lambda s: s.assign(_key=s.qty),                      # writes metadata
    lambda s: s.explode("tags"),                         # not a filter or an assignment
    lambda s: s.groupby("sym").reduce(lambda a, b: a),   # an aggregation of whole rows
    lambda s: s[lambda b: b.qty > 1].groupby("sym").agg(n=("qty", "count")),  # a function before it
], ids=["function", "query", "overwrite", "reads-new", "select", "metadata", "explode", "fold",
        "function-before-aggregation"])
def test_other_plans_decode_whole_records(build):
    assert projection_of(build(sf.stream("in"))) is None


def test_an_aggregation_reads_its_keys_its_columns_and_the_expressions_before_it():
    s = sf.stream("in", timestamp="ts")
    frame = (s[s.price > 1].assign(v=s.qty * s.price, one=1).groupby("sym").window(tumbling="10s")
             .agg(n=("v", "count"), q=("qty", "max"), k=("one", "sum")))
    # "v" and "one" are made before the aggregation; its output then needs nothing of the records
    assert projection_of(frame) == Projection(reads=("price", "qty", "sym", "ts"), appends=(), splice=False)
    assert projection_of(frame[frame.n > 2]) == projection_of(frame)
    k = sf.stream("in")
    assert projection_of(k.groupby("_key").size()) == Projection(reads=(), appends=(), splice=False)
    again = (
        k.groupby("sym").agg(n=("qty", "sum")).groupby("n").agg(c=("n", "count"))
    )  # its table re-aggregated
    assert projection_of(again) == Projection(reads=("qty", "sym"), appends=(), splice=False)
    assert projection_of(sf.table("in", key="sym").groupby("tier").agg(n=("qty", "sum"))) is None


def test_only_a_json_topic_keyed_by_the_records_keys_takes_records_with_fields_appended():
    from streamframe.runtime.sinks import TopicSink
    from streamframe.serde import value_format

    assert RECORD_BYTES in TopicSink("t", value_format("json")).metadata
    assert RECORD_BYTES not in TopicSink("t", value_format("json"), key="sym").metadata  # the key is a field
    assert RECORD_BYTES not in TopicSink("t", value_format("csv")).metadata
    assert RECORD_BYTES not in TopicSink("t", value_format("json"), table_keys=["k"]).metadata


def test_only_json_without_a_schema_is_projected():
    for s in (sf.stream("in", value="csv"), sf.stream("in", schema={"qty": "int64"})):
        assert projection_of(s[s.qty > 1]) is None


ROWS = [
    {
        "id": i,
        "sym": "ABC"[i % 3],
        "qty": i * 7 % 13,
        "price": 1.25 * i + 0.5,
        "ok": i % 2 == 0,
        "nested": {"a": [i]},
    }
    for i in range(40)
]


def _whole_and_projected(records, fields, absent=("new",)):
    fmt = JsonFormat()
    whole = fmt.decode(records).frame
    return whole, fmt.decode_fields(records, fields, absent)


def test_decoding_only_some_fields_gives_the_same_columns():
    records = [orjson.dumps(r) for r in ROWS]
    whole, part = _whole_and_projected(records, ("ok", "price", "qty", "sym"))
    assert part is not None and list(part.frame.columns) == ["ok", "price", "qty", "sym"]
    assert_frame_equal(part.frame, whole[["ok", "price", "qty", "sym"]], check_exact=True)


@pytest.mark.parametrize(
    "change, fields",
    [
        (lambda rs: rs[:5] + [b"{}"] + rs[6:], ("qty",)),  # a record lacks the field
        (lambda rs: rs[:3] + [b'{"qty":1,"new":2}'] + rs[4:], ("qty",)),  # holds an appended name
        (lambda rs: rs[:3] + [b'{"qty":1,"n\\u0065w":2}'] + rs[4:], ("qty",)),  # ... hidden in an escape
        (lambda rs: rs[:3] + [b'{"qty":1.5}'] + rs[4:], ("qty",)),  # Arrow would infer double
        (lambda rs: rs[:3] + [b'{"qty":null}'] + rs[4:], ("qty",)),  # a null
        (lambda rs: rs[:3] + [b'{"qty":true}'] + rs[4:], ("qty",)),  # another type
        (lambda rs: rs[:3] + [b'{"qty":99999999999999999999}'] + rs[4:], ("qty",)),  # beyond int64
        (lambda rs: rs[:3] + [b'{"qty":1,"x":tru}'] + rs[4:], ("qty",)),  # malformed where not read
        (lambda rs: rs[:3] + [b'{"qty":1,"x":"\xff"}'] + rs[4:], ("qty",)),  # not UTF-8 where not read
        (lambda rs: rs[:3] + [b"[1]"] + rs[4:], ("qty",)),  # not an object
        (
            lambda rs: [orjson.dumps({**orjson.loads(r), "price": 2.0}) for r in rs],
            ("price",),
        ),  # whole floats
        (lambda rs: [orjson.dumps({"other": 1}) for r in rs], ("qty",)),  # the field is absent
        (lambda rs: [orjson.dumps({**orjson.loads(r), "sym": "2024-01-02"}) for r in rs], ("sym",)),  # times
        (lambda rs: rs[:2] + [None] + rs[3:], ("qty",)),  # a tombstone
    ],
    ids=[
        "lacks-field",
        "appended-name",
        "escaped-name",
        "int-to-double",
        "null",
        "other-type",
        "big-int",
        "malformed",
        "not-utf8",
        "not-object",
        "whole-floats",
        "absent",
        "iso-times",
        "tombstone",
    ],
)
def test_a_batch_the_shortcut_could_get_wrong_is_left_to_the_whole_decode(change, fields):
    fmt = JsonFormat()
    fmt.decode([orjson.dumps(r) for r in ROWS])  # types learned from a whole batch
    assert fmt.decode_fields(change([orjson.dumps(r) for r in ROWS]), fields, ("new",)) is None


def test_records_with_space_around_their_braces_or_none_read_are_projected_and_spliced():
    records = [orjson.dumps(r) for r in ROWS]
    spaced = [
        r[:-1] + b" }" if i % 3 == 0 else r + b"\n " if i % 3 == 1 else r for i, r in enumerate(records)
    ]
    whole, part = _whole_and_projected(spaced, ("price", "qty"))
    assert part is not None
    assert_frame_equal(part.frame, whole[["price", "qty"]], check_exact=True)
    new = pd.DataFrame({"n": part.frame["qty"] * part.frame["price"]})
    assert [orjson.loads(r) for r in append_json_fields(spaced, new)] == [
        {**r, "n": r["qty"] * r["price"]} for r in ROWS
    ]
    # Reading no field at all (new constant columns only): an empty object takes its fields without a comma.
    empties = [b"{}", b"{ }", b'{"a":1}', b'{"a":1} ']
    assert JsonFormat().decode_fields(empties, (), ("c",)) is not None
    assert [orjson.loads(r) for r in append_json_fields(empties, pd.DataFrame({"c": [1, 2, 3, 4]}))] == [
        {"c": 1},
        {"c": 2},
        {"a": 1, "c": 3},
        {"a": 1, "c": 4},
    ]


_NUMBER_TEXT = [repr, lambda x: f"{x:.17g}", lambda x: f"{x:e}", lambda x: f"{x:.3f}"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-(2**63), 2**63 - 1),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
            st.sampled_from(_NUMBER_TEXT),
            st.text(max_size=8),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_projected_fields_read_exactly_as_the_whole_decode_reads_them(rows):
    # msgspec's numbers and strings (escapes, any Unicode) against Arrow's, which the whole decode uses.
    records = [
        b'{"i":%d,"x":%s,"b":%s,"s":%s,"z":"z"}'
        % (i, text(x).encode(), b"true" if b else b"false", orjson.dumps(t))
        for i, x, b, text, t in rows
    ]
    fmt = JsonFormat()
    whole = fmt.decode(records).frame
    part = fmt.decode_fields(records, ("b", "i", "s", "x"), ("new",))
    if part is None:  # only where the whole decode read whole numbers as int64, or strings as times
        assert (
            whole["x"].dtype == "int64"
            or (whole["x"] == np.floor(whole["x"])).all()
            or whole["s"].dtype != whole["z"].dtype
            or whole["s"].iloc[0][:1].isdigit()
        )
        return
    assert_frame_equal(part.frame, whole[["b", "i", "s", "x"]], check_exact=True)


def test_no_projection_before_a_whole_batch_showed_the_types():
    assert JsonFormat().decode_fields([orjson.dumps(r) for r in ROWS], ("qty",), ()) is None


def test_appended_fields_read_as_the_whole_record_encoded_with_them():
    records = [b'{"a": 1.50, "s":"x\\"y"}', b'{"a":2,"nested":{"b":[1,2]}}', '{"u":"\u00e9"}'.encode()]
    new = pd.DataFrame(
        {"n": [1.5, np.nan, 3.0], "t": ["p", None, 'q"'], "i": [1, 2, 3], "b": [True, False, True]}
    )
    got = [orjson.loads(r) for r in append_json_fields(records, new)]
    want = [orjson.loads(r) for r in encode_json_rows(new)]
    assert got == [{**orjson.loads(r), **w} for r, w in zip(records, want)]
    assert append_json_fields(records, new)[0].startswith(
        b'{"a": 1.50, "s":"x\\"y",'
    )  # the record's own bytes
    assert append_json_fields(records, new.iloc[:, :0]) == records


def test_a_projected_batch_carries_its_records_for_the_sink():
    s = sf.stream("in")
    topology = Topology(s[s.qty > 5].assign(big=s.qty * 2)._node)
    topology.project_values(splice=True)
    records = [orjson.dumps(r) for r in ROWS]
    raw = RawBatch(
        "in",
        records,
        [None] * len(records),
        list(range(len(records))),
        [0] * len(records),
        list(range(len(records))),
        [None] * len(records),
    )
    for _ in range(2):  # the first batch is decoded whole (it teaches the types), the second projected
        result = topology.process(s._node.id, raw)
    out = result.frame()
    assert topology.sources[s._node.id].projected
    assert [c for c in out.columns if c not in META] == ["big", RECORD_BYTES]  # "qty" is in the record
    passed = [r for r in ROWS if r["qty"] > 5]
    assert out[RECORD_BYTES].tolist() == [orjson.dumps(r) for r in passed]
    assert out["big"].tolist() == [r["qty"] * 2 for r in passed]


def test_an_aggregation_over_projected_batches_equals_one_over_whole_records():
    def batch(first, n, bad=None):
        rows = [
            {
                "id": i,
                "sym": "ABC"[i % 3],
                "qty": i % 7 + 1,
                "price": 0.5 + i,
                "ts": 1_000 * i,
                "note": {"x": [i]},
            }
            for i in range(first, first + n)
        ]
        values = [orjson.dumps(r) for r in rows]
        if bad is not None:
            values[bad] = b'{"id": 1, "sym": "A", "qty": '  # malformed: that batch is decoded whole
        return values

    s = sf.stream("in", timestamp="ts")
    frame = (
        s[s.price > 3]
        .assign(v=s.qty * s.price)
        .groupby("sym")
        .window(tumbling="5s", grace="1s")
        .agg(n=("qty", "count"), vol=("v", "sum"), hi=("qty", "max"))
        .emit("final")
    )
    results, projected = [], []
    for project in (True, False):
        driver = TestDriver(frame)
        source = next(iter(driver.query.topology.sources.values()))
        if not project:
            source.projection = None
        used = []
        for values in (batch(0, 40), batch(40, 40), batch(80, 40, bad=5), batch(120, 40)):
            driver.pipe("in", values)
            used.append(source.projected)
        results.append((driver.output(metadata=True), [d["offset"] for d in driver.dead_letters]))
        projected.append(used)
    assert projected == [[False, True, False, True], [False, False, False, False]]
    (got, dead), (want, want_dead) = results
    assert len(want) > 10 and dead == want_dead == [85]
    assert_frame_equal(got, want, check_exact=True)
