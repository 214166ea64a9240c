"""Joins through the TestDriver, against pandas' merge / merge_asof over the whole input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import streamframe as sf
from streamframe.testing import TestDriver


def _table_rows(n, keys, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"cid": [f"c{i}" for i in rng.integers(0, keys, n)], "tier": rng.integers(1, 4, n)})


@pytest.mark.parametrize("how", ["inner", "left"])
def test_stream_table_join_equals_merge_with_the_table_as_it_stands(how):
    customers = _table_rows(30, 10, 1)
    orders = pd.DataFrame({"cid": [f"c{i}" for i in range(12)] * 3, "amount": np.arange(36)})
    j = sf.stream("orders").join(sf.table("customers", key="cid"), on="cid", how=how)
    driver = TestDriver(j)
    driver.pipe("customers", customers.to_dict("records"), keys=customers["cid"].tolist())
    driver.pipe("orders", orders.to_dict("records"))
    last = customers.drop_duplicates("cid", keep="last")
    expected = orders.merge(last, on="cid", how=how)
    got = driver.output()
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False
    )


def test_stream_record_sees_the_table_as_of_its_position():
    j = sf.stream("orders").join(sf.table("prices", key="sym"), on="sym", how="left")
    driver = TestDriver(j)
    driver.pipe("orders", [{"sym": "A", "n": 1}])
    driver.pipe("prices", [{"sym": "A", "p": 10}], keys=["A"])
    driver.pipe("orders", [{"sym": "A", "n": 2}])
    driver.pipe("prices", [{"sym": "A", "p": 11}], keys=["A"])
    driver.pipe("prices", [None], keys=["A"])
    driver.pipe("orders", [{"sym": "A", "n": 3}])
    out = driver.output()
    assert out["n"].tolist() == [1, 2, 3]
    assert out["p"].isna().tolist() == [True, False, True] and out["p"].iloc[1] == 10


def test_a_left_join_with_misses_keeps_integers_and_booleans():
    """pandas' merge would turn the integer column into floats for the whole batch (3 written as 3.0
    wherever another record of the batch missed); nullable types keep them and mark the misses."""
    j = sf.stream("orders").join(sf.table("customers", key="cid"), on="cid", how="left")
    driver = TestDriver(j)
    driver.pipe("customers", [{"cid": "a", "tier": 3, "vip": True}], keys=["a"])
    driver.pipe("orders", [{"cid": "a", "n": 1}, {"cid": "zz", "n": 2}])
    driver.pipe("orders", [{"cid": "a", "n": 3}])
    assert [v for _, v, _ in driver.records()] == [
        {"cid": "a", "n": 1, "tier": 3, "vip": True},
        {"cid": "zz", "n": 2, "tier": None, "vip": None},
        {"cid": "a", "n": 3, "tier": 3, "vip": True},
    ]
    assert all(type(v["tier"]) is int for _, v, _ in driver.records() if v["tier"] is not None)


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
def test_table_table_join_equals_merge_of_the_final_tables(how):
    rng = np.random.default_rng(7)
    left = pd.DataFrame({"id": rng.integers(0, 15, 40), "x": rng.integers(0, 100, 40)})
    right = pd.DataFrame({"id": rng.integers(0, 15, 40), "y": rng.integers(0, 100, 40)})
    t = sf.table("l", key="id").join(sf.table("r", key="id"), how=how)
    driver = TestDriver(t)
    for lo in range(0, 40, 8):  # interleave updates of both sides
        driver.pipe(
            "l",
            left.iloc[lo : lo + 8].to_dict("records"),
            keys=left.id.iloc[lo : lo + 8].astype(str).tolist(),
        )
        driver.pipe(
            "r",
            right.iloc[lo : lo + 8].to_dict("records"),
            keys=right.id.iloc[lo : lo + 8].astype(str).tolist(),
        )
    deleted = int(left.id.iloc[0])
    driver.pipe("l", [None], keys=[str(deleted)])
    final_left = left.drop_duplicates("id", keep="last").set_index("id").drop(index=deleted)
    final_right = right.drop_duplicates("id", keep="last").set_index("id")
    expected = final_left.join(final_right, how=how).sort_index()
    expected.index.name = "id"
    pd.testing.assert_frame_equal(driver.table(), expected, check_dtype=False)


def test_foreign_key_join_follows_updates_of_either_side():
    orders = sf.table("orders", key="oid")
    users = sf.table("users", key="uid")
    driver = TestDriver(orders.join(users, left_on="uid", how="left"))
    driver.pipe(
        "orders",
        [{"oid": "o1", "uid": "u1"}, {"oid": "o2", "uid": "u1"}, {"oid": "o3", "uid": "u2"}],
        keys=["o1", "o2", "o3"],
    )
    driver.pipe("users", [{"uid": "u1", "name": "Ann"}, {"uid": "u2", "name": "Bob"}], keys=["u1", "u2"])
    driver.pipe("users", [{"uid": "u1", "name": "Anne"}], keys=["u1"])
    driver.pipe("orders", [{"oid": "o3", "uid": "u1"}], keys=["o3"])
    driver.pipe("users", [None], keys=["u2"])
    final_orders = pd.DataFrame({"oid": ["o1", "o2", "o3"], "uid": ["u1", "u1", "u1"]})
    final_users = pd.DataFrame({"uid": ["u1"], "name": ["Anne"]})
    expected = final_orders.merge(final_users, on="uid", how="left").set_index("oid")
    pd.testing.assert_frame_equal(driver.table(), expected, check_dtype=False)


def test_merge_asof_equals_pandas_on_the_whole_input():
    rng = np.random.default_rng(3)
    quotes = pd.DataFrame(
        {
            "ts": np.sort(rng.integers(0, 1000, 80)),
            "sym": rng.choice(["A", "B"], 80),
            "bid": rng.normal(100, 1, 80).round(2),
        }
    )
    trades = pd.DataFrame(
        {
            "ts": np.sort(rng.integers(0, 1000, 50)),
            "sym": rng.choice(["A", "B"], 50),
            "qty": rng.integers(1, 9, 50),
        }
    )
    m = sf.merge_asof(
        sf.stream("trades", timestamp="ts"), sf.stream("quotes", timestamp="ts"), by="sym", tolerance=50
    )
    driver = TestDriver(m)
    events = pd.concat([quotes.assign(_side="quotes"), trades.assign(_side="trades")]).sort_values(
        ["ts", "_side"], kind="stable"
    )  # quotes first on a tie: at or before
    for _, row in events.iterrows():
        cols = ["ts", "sym", "bid"] if row["_side"] == "quotes" else ["ts", "sym", "qty"]
        driver.pipe(row["_side"], [{c: row[c] for c in cols}])
    got = driver.output().drop(columns=["ts_right"])
    expected = pd.merge_asof(trades, quotes, on="ts", by="sym", tolerance=50, direction="backward")
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), expected[got.columns].reset_index(drop=True), check_dtype=False
    )


def test_join_arguments_are_checked():
    s = sf.stream("a")
    with pytest.raises(sf.ConfigError, match="TableFrame"):
        s.join(sf.stream("b"))
    with pytest.raises(sf.ConfigError, match="'inner' or 'left'"):
        s.join(sf.table("b"), how="outer")
    with pytest.raises(sf.ConfigError, match="left_on"):
        sf.table("a", key=["x", "y"]).join(sf.table("b", key="x"))


def test_a_join_with_a_topic_table_reads_the_tables_own_store():
    """No second copy of the table's rows (to checkpoint and restore) — as Kafka Streams' KStream–KTable
    join reads the KTable's store; the result is the lookup's either way."""
    from streamframe.operators.join import StreamTableJoinOp

    driver = TestDriver(sf.stream("o").join(sf.table("c", key="id"), on="id", how="left"))
    driver.pipe("c", [{"id": 1, "n": "a"}], keys=["1"], timestamps=[1])
    driver.pipe("o", [{"id": 1, "q": 5}, {"id": 2, "q": 6}], keys=["1", "2"], timestamps=[2, 3])
    join = next(op for op in driver.query.topology.ops.values() if isinstance(op, StreamTableJoinOp))
    assert join.shared and list(driver.query.stores.stores) == ["test-driver-2-table"]
    out = driver.output()
    assert out["n"].iloc[0] == "a" and pd.isna(out["n"].iloc[1]) and out["q"].tolist() == [5, 6]


@pytest.mark.parametrize("derive, in_pandas", [
    (lambda t: t[t.tier > 1], lambda t: t[t.tier > 1]),
    (lambda t: t.query("tier > 1"), lambda t: t.query("tier > 1")),
    (lambda t: t[["tier"]], lambda t: t[["cid", "tier"]]),
    (lambda t: t.assign(tier2=t.tier * 2), lambda t: t.assign(tier2=t.tier * 2)),
], ids=["filter", "query", "select", "assign"])
def test_a_derived_global_table_stays_a_global_join(derive, in_pandas):
    customers = _table_rows(30, 10, 2)
    orders = pd.DataFrame({"cid": [f"c{i}" for i in range(12)] * 2, "amount": np.arange(24)})
    table = derive(sf.global_table("customers", key="cid"))
    assert table.is_global
    j = sf.stream("orders").join(table, on="cid", how="left")
    assert j._node.join == "global"
    driver = TestDriver(j)
    driver.pipe("customers", customers.to_dict("records"), keys=customers["cid"].tolist())
    driver.pipe("orders", orders.to_dict("records"))
    last = in_pandas(customers.drop_duplicates("cid", keep="last"))
    expected = orders.merge(last, on="cid", how="left")
    pd.testing.assert_frame_equal(driver.output().reset_index(drop=True), expected.reset_index(drop=True),
                                  check_dtype=False)
