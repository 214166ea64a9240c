"""Mistakes answered as pandas answers them, against the real broker, in a real InteractiveShell: a frame
over a topic tells its columns from a sample of it, refuses a column the sample lacks with the closest
one, fails a run naming a column no record has, and a run that left records out says so in one line."""

from __future__ import annotations

import orjson
import pytest
from IPython.core.completer import provisionalcompleter

import streamframe as sf
from streamframe import session
from tests.integration.helpers import create_topic, produce

pytestmark = pytest.mark.integration
TRADES = [{"symbol": s, "qty": q, "price": p}
          for s, q, p in [("A", 5, 1.5), ("B", 200, 2.0), ("A", 300, 3.25)]]


@pytest.fixture
def shell(conn):
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance()
    sh.run_cell("import streamframe as sf")
    return sh


@pytest.fixture
def trades(bootstrap, topic_name):
    create_topic(bootstrap, topic_name, partitions=2)
    produce(bootstrap, topic_name, [orjson.dumps(t) for t in TRADES], partitions=[0, 1, 0])
    return topic_name


def test_a_topic_frame_tells_its_columns_from_a_sample(shell, trades):
    shell.run_cell(f"s = sf.stream({trades!r})\nbig = s[s.qty > 100].assign(notional=s.qty * s.price)")
    s, big = shell.user_ns["s"], shell.user_ns["big"]
    assert list(s.columns) == ["symbol", "qty", "price"]
    assert s.dtypes[["qty", "price"]].astype(str).tolist() == ["int64", "float64"]
    assert list(big.columns) == ["symbol", "qty", "price", "notional"]
    assert big.dtypes["notional"] == "float64"
    with provisionalcompleter():
        assert {"qty", "query"} <= {c.text for c in shell.Completer.completions("s.q", 3)}


def test_a_typo_is_an_attribute_error_naming_the_closest_column(shell, trades):
    shell.run_cell(f"s = sf.stream({trades!r})")
    error = shell.run_cell("s[s.qtty > 1].run()").error_in_exec
    assert isinstance(error, AttributeError)
    assert str(error).startswith("StreamFrame has no column 'qtty' (columns: symbol, qty, price); "
                                 "did you mean 'qty'?")


def test_a_run_naming_a_column_no_record_has_fails_at_once(shell, trades, conn):
    shell.run_cell(f"s = sf.stream({trades!r})")
    error = shell.run_cell("s[s['qtty'] > 1].run()").error_in_exec
    assert isinstance(error, sf.UnknownColumnError)
    assert str(error).startswith("no column 'qtty': filter (qtty > 1) reads it, but none of the first ")
    assert str(error).endswith("(columns: symbol, qty, price); did you mean 'qty'?")
    assert f"{trades}.dlq" not in conn.topics()  # nothing was dead-lettered


def test_a_live_query_fails_with_the_error_in_its_status(shell, trades):
    shell.run_cell(f"s = sf.stream({trades!r})\nq = s.groupby('symbl').count().start()")
    q = shell.user_ns["q"]
    with pytest.raises(sf.UnknownColumnError):
        q.wait(60)
    assert q.status == "failed" and q.metrics["dead_letters"] == 0
    last = q.metrics["last_error"]
    assert "no column 'symbl'" in last and "did you mean 'symbol'?" in last


def test_an_empty_or_missing_topic_leaves_the_columns_unknown(shell, bootstrap, topic_name):
    create_topic(bootstrap, topic_name)
    shell.run_cell(f"e = sf.stream({topic_name!r})\nm = sf.stream({topic_name + '-none'!r})")
    e, m = shell.user_ns["e"], shell.user_ns["m"]
    assert e.columns is None and e.dtypes is None and m.columns is None
    result = shell.run_cell("e[e.anything > 1].run()")
    assert result.success and len(result.result) == 0


def test_a_sample_that_runs_out_of_time_leaves_the_columns_unknown(shell, trades, monkeypatch):
    monkeypatch.setattr(session, "SAMPLE_TIMEOUT", 0.0)
    shell.run_cell(f"s = sf.stream({trades!r})")
    assert shell.user_ns["s"].columns is None
    result = shell.run_cell("s[s.qty > 100].run()")
    # the two partitions' records, in an order their timestamps decide (equal within a millisecond)
    assert result.success and sorted(result.result["qty"]) == [200, 300]


def test_a_run_that_dead_lettered_warns_by_reason_and_keeps_the_last_one(shell, bootstrap, topic_name):
    create_topic(bootstrap, topic_name)
    values = [orjson.dumps(TRADES[0]), b'{"symbol": "B", "qty": ', orjson.dumps({"symbol": "C", "qty": 1}),
              orjson.dumps(TRADES[1]), b"\xff not json"]
    produce(bootstrap, topic_name, values)
    shell.run_cell(f"s = sf.stream({topic_name!r})")
    # one record a batch: the record without a price is a batch without the column the first one had
    with pytest.warns(sf.DroppedRecordsWarning) as caught:
        result = shell.run_cell("out = s.assign(notional=s.qty * s.price).run(batch_size=1)")
    assert result.success and shell.user_ns["out"]["symbol"].tolist() == ["A", "B"]
    [w] = caught
    assert str(w.message) == (f"3 of 5 records went to {topic_name}.dlq: invalid JSON (2), "
                              "missing column 'price' (1)")
    s = shell.user_ns["s"]
    with pytest.warns(sf.DroppedRecordsWarning, match="3 of 5 records"):
        q = s.assign(notional=s.qty * s.price).to_topic(f"{topic_name}-out", until="end", batch_size=1)
    assert q.metrics["dead_letters"] == 3
    assert q.metrics["last_error"].startswith("invalid JSON")  # the latest: the last record's
