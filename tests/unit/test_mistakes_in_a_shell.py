"""What a notebook user sees when a frame goes wrong, in a real IPython InteractiveShell (no broker): a
bounded run that left records out warns in one line pointing at the user's cell; a column no record has
fails at once naming the closest one; `s.<tab>` offers the frame's real columns."""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.core.completer import provisionalcompleter

import streamframe as sf


@pytest.fixture
def shell(offline_shell):
    offline_shell.run_cell("import pandas as pd, streamframe as sf")
    return offline_shell


def test_a_run_that_dead_lettered_warns_at_the_users_cell(shell):
    with pytest.warns(sf.DroppedRecordsWarning) as caught:
        result = shell.run_cell('sf.from_pandas(pd.DataFrame({"n": ["1", "x", "3", "y"]})).astype(int).run()')
    assert result.success and result.result["n"].tolist() == [1, 3]
    [w] = caught
    assert str(w.message).startswith("2 of 4 records went to pandas.dlq: ValueError in astype-")
    assert "streamframe" not in w.filename  # the cell's own line, where IPython shows it


def test_a_clean_run_in_the_shell_warns_nothing(shell, recwarn):
    result = shell.run_cell('sf.from_pandas(pd.DataFrame({"n": [1, 2]})).run()')
    assert result.success and result.result["n"].tolist() == [1, 2]
    assert [w for w in recwarn if issubclass(w.category, sf.StreamframeWarning)] == []


def test_a_typo_in_a_column_fails_the_run_at_once_naming_the_closest(shell):
    shell.run_cell('s = sf.from_pandas(pd.DataFrame({"symbol": ["A", "B"], "qty": [5, 1]}))')
    result = shell.run_cell('s.groupby("symbol").agg(n=("qtty", "sum")).run()')
    error = result.error_in_exec
    assert isinstance(error, sf.UnknownColumnError)
    assert str(error) == ("no column 'qtty': aggregate (by symbol: n=sum(qtty), emit updates) reads it, "
                          "but none of the first 2 records has it (columns: symbol, qty); "
                          "did you mean 'qty'?")


# --- a frame tells its columns before it runs ------------------------------------------------------

def test_columns_and_dtypes_come_through_the_plan(shell):
    shell.run_cell('s = sf.from_pandas(pd.DataFrame({"symbol": ["A"], "qty": [5], "price": [1.5]}))\n'
                   't = s[s.qty > 1].assign(notional=s.qty * s.price, tag="x", f=lambda d: d.qty)\n'
                   't = t.drop(columns="price").rename(columns={"symbol": "sym"})')
    t = shell.user_ns["t"]
    assert list(t.columns) == ["sym", "qty", "notional", "tag", "f"]
    assert t.dtypes.astype(str).to_dict() == {"sym": str(pd.Series(["A"]).dtype), "qty": "int64",
                                              "notional": "float64", "tag": str(pd.Series(["x"]).dtype),
                                              "f": "object"}
    assert list(t[["qty", "notional"]].columns) == ["qty", "notional"]
    assert t.map(lambda d: d).columns is None  # a function over the batch: not known before it runs


def test_a_column_the_input_lacks_is_an_attribute_error_with_a_suggestion(shell):
    shell.run_cell('s = sf.from_pandas(pd.DataFrame({"symbol": ["A"], "qty": [5]}))')
    result = shell.run_cell("s[s.qtty > 1]")
    error = result.error_in_exec
    assert isinstance(error, AttributeError)
    assert str(error).startswith(
        "StreamFrame has no column 'qtty' (columns: symbol, qty); did you mean 'qty'?")
    assert shell.run_cell("s['qtty']").success  # by name it is still an expression, judged when it runs
    assert shell.run_cell("s._key, s.qty").success  # metadata and real columns


def test_tab_completion_offers_the_real_columns(shell):
    shell.run_cell('s = sf.from_pandas(pd.DataFrame({"symbol": ["A"], "quantity": [5], "qty": [1]}))')
    with provisionalcompleter():  # IPython's completion API (what Jupyter's <tab> asks)
        offered = [c.text for c in shell.Completer.completions("s.q", 3)]
        assert {"qty", "quantity"} <= set(offered) and "query" in offered  # columns beside methods
        assert [c.text for c in shell.Completer.completions("s.sym", 5)] == ["symbol"]


def test_a_schema_tells_the_columns_of_a_topic_without_a_broker(shell):
    shell.run_cell('c = sf.stream("t", value="csv", schema=["id", "amount"])')
    c = shell.user_ns["c"]
    assert list(c.columns) == ["id", "amount"]
    assert "did you mean 'amount'?" in str(shell.run_cell("c.amout").error_in_exec)


def test_a_topic_with_no_connection_yet_refuses_no_column(shell):
    shell.run_cell('k = sf.stream("trades")')
    assert shell.run_cell("k[k.anything > 1]").success  # nothing known yet: nothing refused
    assert "qty" not in dir(shell.user_ns["k"])
