"""processing_guarantee= without a broker: what it accepts, and the clear errors for what exactly-once
does not cover yet (stateful operators, appended files)."""

from __future__ import annotations

import pandas as pd
import pytest

import streamframe as sf
from streamframe.errors import ConfigError
from streamframe.kafka.connection import Connection

ROWS = pd.DataFrame({"k": ["a", "b", "a", "c"], "x": [1, 2, 3, 4]})


def test_a_stateless_query_runs_the_same_under_either_guarantee():
    s = sf.from_pandas(ROWS)
    frame = s[s.x > 1].assign(y=s.x * 2)
    pd.testing.assert_frame_equal(frame.run(processing_guarantee="exactly_once"),
                                  frame.run(processing_guarantee="at_least_once"))


def test_a_stateful_query_under_exactly_once_is_a_clear_error():
    table = sf.from_pandas(ROWS).groupby("k")["x"].sum()
    with pytest.raises(ConfigError, match="covers stateless queries so far; this one keeps state"):
        table.run(processing_guarantee="exactly_once")


def test_an_appended_file_cannot_be_written_exactly_once(tmp_path):
    with pytest.raises(ConfigError, match="TextFileSink cannot write exactly once"):
        sf.from_pandas(ROWS).to_csv(str(tmp_path / "out.csv"), until="end",
                                    processing_guarantee="exactly_once")
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("make", [
    lambda: sf.from_pandas(ROWS).run(processing_guarantee="exactly-once"),
    lambda: Connection("127.0.0.1:9", processing_guarantee="twice"),
])
def test_an_unknown_guarantee_names_the_valid_ones(make):
    with pytest.raises(ConfigError, match="processing_guarantee must be one of at_least_once, exactly_once"):
        make()


def test_the_connection_default_applies_unless_a_query_sets_its_own():
    from streamframe.runtime.query import Query
    from streamframe.runtime.sinks import CollectSink

    node = sf.from_pandas(ROWS)._node
    conn = Connection("127.0.0.1:9", processing_guarantee="exactly_once")
    assert Query(node, CollectSink(), name="q", connection=conn).exactly_once
    assert Query(node, CollectSink(), name="q", connection=conn).commit_interval == 0.1
    own = Query(node, CollectSink(), name="q", connection=conn, processing_guarantee="at_least_once")
    assert not own.exactly_once and own.commit_interval == 5.0
