"""Column expressions: lazy pandas Series arithmetic, checked against pandas on the same frame."""

from __future__ import annotations

import operator

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_series_equal

import streamframe as sf
from streamframe.errors import MissingColumnError
from streamframe.operators.base import describe, evaluate

DF = pd.DataFrame({
    "qty": [1, 5, 0, -3, 12],
    "price": [1.25, 2.0, 3.5, np.nan, 10.0],
    "sym": ["aapl", "MSFT", "goog", None, "tsla"],
    "when": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 11:30", "2024-02-01 00:00", None,
                            "2024-12-31 23:59"], utc=True),
    "flag": [True, False, True, False, True],
})
qty, price, sym, when, flag = (sf.col(c) for c in ["qty", "price", "sym", "when", "flag"])

BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv, operator.mod,
          operator.pow, operator.gt, operator.ge, operator.lt, operator.le, operator.eq, operator.ne]


@pytest.mark.parametrize("op", BINARY, ids=lambda op: op.__name__)
def test_binary_operators_match_pandas(op):
    assert_series_equal(op(qty, price).evaluate(DF), op(DF.qty, DF.price))
    assert_series_equal(op(qty, 2).evaluate(DF), op(DF.qty, 2))
    assert_series_equal(op(3.0, qty).evaluate(DF), op(3.0, DF.qty))  # reflected


@pytest.mark.parametrize("op", [operator.and_, operator.or_, operator.xor], ids=lambda op: op.__name__)
def test_boolean_operators_match_pandas(op):
    assert_series_equal(op(flag, qty > 1).evaluate(DF), op(DF.flag, DF.qty > 1))
    assert_series_equal(op(True, flag).evaluate(DF), op(True, DF.flag))


def test_unary_operators_match_pandas():
    assert_series_equal((-qty).evaluate(DF), -DF.qty)
    assert_series_equal(abs(qty).evaluate(DF), abs(DF.qty))
    assert_series_equal((~flag).evaluate(DF), ~DF.flag)


def test_series_methods_and_accessors_are_replayed():
    cases = [
        ((qty * price).round(1), (DF.qty * DF.price).round(1)),
        (qty.isin([0, 5]), DF.qty.isin([0, 5])),
        (qty.between(0, 5), DF.qty.between(0, 5)),
        (price.fillna(0), DF.price.fillna(0)),
        (sym.str.upper(), DF.sym.str.upper()),
        (sym.str.len(), DF.sym.str.len()),
        (sym.str.contains("a", na=False), DF.sym.str.contains("a", na=False)),
        (when.dt.hour, DF.when.dt.hour),
        (when.dt.floor("D"), DF.when.dt.floor("D")),
        (qty.astype(str), DF.qty.astype(str)),
        (qty.clip(lower=price), DF.qty.clip(lower=DF.price)),  # an expression as an argument
        (sym.str[0], DF.sym.str[0]),
        (qty.where(qty > 0, other=-qty), DF.qty.where(DF.qty > 0, other=-DF.qty)),
    ]
    for expr, expected in cases:
        assert_series_equal(expr.evaluate(DF), expected, check_names=False)


def test_series_properties():
    assert qty.size.evaluate(DF) == len(DF)
    assert qty.dtype.evaluate(DF) == DF.qty.dtype


def test_repr_reads_like_the_code():
    assert repr((qty * price).round(1)) == "(qty * price).round(1)"
    assert repr((qty > 1) & ~flag) == "((qty > 1) & ~flag)"
    assert repr(sym.str.upper()) == "sym.str.upper()"
    assert repr(sf.col("odd name") + 1) == "(`odd name` + 1)"
    assert repr(abs(qty)) == "abs(qty)"
    assert repr(sym.str[0]) == "sym.str[0]"
    assert repr(qty.isin(["a"])) == "qty.isin(['a'])"


def test_columns_lists_what_an_expression_reads():
    assert ((qty * price).round(1) > sf.col("limit")).columns() == {"qty", "price", "limit"}
    assert qty.clip(lower=price).columns() == {"qty", "price"}
    assert sym.str.upper().columns() == {"sym"}


def test_a_missing_column_names_the_columns_that_exist():
    with pytest.raises(MissingColumnError, match="missing column 'nope' \\(the record has: qty, price"):
        (sf.col("nope") + 1).evaluate(DF)
    assert isinstance(MissingColumnError("x"), KeyError)


def test_expressions_are_lazy_and_refuse_truth_and_iteration():
    with pytest.raises(TypeError, match="no truth value"):
        bool(qty > 1)
    with pytest.raises(TypeError, match="cannot be iterated"):
        list(qty)
    with pytest.raises(AttributeError):
        qty.definitely_not_a_series_method  # noqa: B018


def test_expressions_are_usable_as_dict_keys_and_in_sets():
    exprs = {qty: 1, price: 2}
    assert exprs[qty] == 1 and len({qty, price, qty}) == 2


def test_evaluate_and_describe_helpers():
    assert_series_equal(evaluate(qty + 1, DF), DF.qty + 1)
    assert_series_equal(evaluate(lambda df: df.qty * 2, DF), DF.qty * 2)
    assert evaluate(7, DF) == 7

    def notional(df):
        return df.qty * df.price

    assert describe(notional).endswith("notional")
    assert describe(qty > 1) == "(qty > 1)"
    assert describe("x") == "'x'"


def test_frame_attributes_are_columns():
    s = sf.stream("in")
    assert repr(s.qty * s.price) == "(qty * price)"
    assert repr(s["odd name"]) == "`odd name`"
    assert repr(s._key) == "_key" and repr(s._headers) == "_headers"
    with pytest.raises(AttributeError):
        s._private  # noqa: B018
