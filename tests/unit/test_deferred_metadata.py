"""Deferred materialization of metadata columns (plan/metadata.py): which columns a source leaves out, and
that a query's output is the same with them left out as with every column built up front.

The oracle for the outputs is the same topology with the analysis switched off (every source builds
every metadata column while decoding, as before the analysis existed).
"""

from __future__ import annotations

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import streamframe as sf
from streamframe.plan.metadata import DEFERRABLE, deferred_metadata
from streamframe.testing import TestDriver

ROWS = [{"symbol": s, "qty": q, "price": p, "tags": t}
        for s, q, p, t in zip("ABCABCAB", [5, 150, 300, 10, 120, 99, 500, 101],
                              [1.5, 2.0, 3.25, 4.0, 5.5, 6.0, 7.25, 8.0],
                              [["x"], ["y", "z"], [], ["w"], ["u", "v"], ["t"], ["s"], ["r", "q"]])]
KEYS = [f"k{i}" for i in range(len(ROWS))]
STAMPS = [1_700_000_000_000 + 700 * i for i in range(len(ROWS))]
HEADERS = [[("h", f"{i}".encode())] if i % 3 == 0 else None for i in range(len(ROWS))]


def deferred_of(frame) -> frozenset:
    sources = deferred_metadata(frame._node)
    assert len(frame._node.sources()) == 1
    return sources.get(frame._node.sources()[0].id, frozenset())


def test_a_filter_and_assign_read_no_metadata():
    s = sf.stream("in")
    assert deferred_of(s[s.qty > 100].assign(notional=s.qty * s.price)) == DEFERRABLE


def test_an_expression_on_a_metadata_column_keeps_that_column():
    s = sf.stream("in")
    assert deferred_of(s[s._partition == 0]) == DEFERRABLE - {"_partition"}
    assert deferred_of(s[["qty", "_key"]]) == DEFERRABLE - {"_key"}


def test_code_the_plan_cannot_see_into_keeps_every_column():
    s = sf.stream("in")
    assert deferred_of(s[lambda b: b.qty > 1]) == frozenset()
    assert deferred_of(s.query("qty > 1")) == frozenset()
    assert deferred_of(s.map(lambda b: b)) == frozenset()
    assert deferred_of(s.assign(x=lambda b: b.qty)) == frozenset()


def test_an_aggregation_reads_its_keys_time_and_task_only():
    s = sf.stream("in")
    assert deferred_of(s.groupby("_key").agg(n=("qty", "count"))) == {"_offset", "_headers"}
    assert deferred_of(s.groupby("symbol").window(tumbling="1s").agg(n=("qty", "sum"))) == \
        {"_key", "_offset", "_headers"}


def test_event_time_from_a_column_is_read_while_decoding():
    s = sf.stream("in", timestamp="ts")
    assert deferred_of(s[s.qty > 1]) == DEFERRABLE - {"_timestamp"}


def test_tables_and_joins_build_every_column():
    t = sf.table("ref", key="symbol")
    s = sf.stream("in")
    assert deferred_metadata(t._node) == {}
    assert deferred_metadata(s.join(t, on="symbol", repartition=False)._node) == {}


def _outputs(frame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(output with deferred metadata, output with every column built while decoding) for the same input."""
    results = []
    for deferred in (True, False):
        driver = TestDriver(frame)
        if not deferred:
            for op in driver.query.topology.sources.values():
                op.deferred = frozenset()
        driver.pipe("in", ROWS[:5], keys=KEYS[:5], timestamps=STAMPS[:5], headers=HEADERS[:5], partition=1)
        driver.pipe("in", ROWS[5:], keys=KEYS[5:], timestamps=STAMPS[5:], headers=HEADERS[5:], partition=0)
        results.append(driver.output(metadata=True))
    return results[0], results[1]


@pytest.mark.parametrize("build", [
    lambda s: s[s.qty > 100].assign(notional=s.qty * s.price),
    lambda s: s[s.qty > 100][["symbol", "qty"]],
    lambda s: s.explode("tags"),
    lambda s: s[s._partition == 1].assign(k=s._key.str.upper()),
], ids=["filter-assign", "select", "explode", "reads-metadata"])
def test_the_output_is_the_same_with_metadata_filled_in_afterwards(build):
    frame = build(sf.stream("in"))
    assert deferred_of(frame), "the analysis should leave something out here"
    deferred, eager = _outputs(frame)
    assert len(deferred) and set(deferred.columns) >= {"_key", "_timestamp", "_partition",
                                                       "_offset", "_headers"}
    assert_frame_equal(deferred, eager)


def test_an_aggregation_without_offsets_and_headers_gives_the_same_table():
    s = sf.stream("in")
    frame = s.groupby("_key").window(tumbling="2s").agg(n=("qty", "count"), total=("qty", "sum"))
    deferred, eager = _outputs(frame)
    assert len(deferred)
    assert_frame_equal(deferred, eager)


def test_a_dead_letter_names_partition_and_offset_of_its_record():
    s = sf.stream("in")
    driver = TestDriver(s[s.qty > 100])
    assert driver.query.topology.sources[s._node.id].deferred == DEFERRABLE
    driver.pipe("in", [{"qty": 1}, b"{not json", {"qty": 200}], keys=["a", "b", "c"], partition=2,
                headers=[None, [("why", b"bad")], None])
    [dead] = driver.dead_letters
    assert ((dead["partition"], dead["offset"], dead["key"], dead["headers"][0])
            == (2, 1, b"b", ("why", b"bad")))
    assert driver.output(metadata=True)[["_key", "_partition", "_offset"]].values.tolist() == [["c", 2, 2]]
