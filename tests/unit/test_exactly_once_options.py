"""processing_guarantee= without a broker: what it accepts, and the clear errors for what exactly-once
does not cover (state with no changelog, global tables, appended files)."""

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


def test_a_stateful_query_runs_the_same_under_either_guarantee():
    table = sf.from_pandas(ROWS).groupby("k")["x"].sum()
    pd.testing.assert_frame_equal(table.run(processing_guarantee="exactly_once"),
                                   table.run(processing_guarantee="at_least_once"))


def test_exactly_once_state_without_its_changelog_is_a_clear_error():
    table = sf.from_pandas(ROWS).groupby("k")["x"].sum()
    with pytest.raises(ConfigError, match="keeps state in its changelog topics.*drop changelog=False"):
        table.run(processing_guarantee="exactly_once", changelog=False)


def test_a_global_table_under_exactly_once_is_a_clear_error():
    from streamframe.plan.nodes import KafkaSource
    from streamframe.runtime.query import Query
    from streamframe.runtime.sinks import CollectSink

    stream = sf.from_pandas(ROWS)
    node = stream.join(sf.global_table("prices", key="k"), on="k")._node
    assert any(isinstance(n, KafkaSource) and n.global_table for n in node.sources())
    with pytest.raises(ConfigError, match="does not cover global tables yet"):
        Query(node, CollectSink(), name="q", processing_guarantee="exactly_once")


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
