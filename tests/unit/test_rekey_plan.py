"""Which stream–table joins re-key their stream through a repartition topic (runtime/repartition.py), and
which keep the lookup in process: decided from the plan alone."""

from __future__ import annotations

import pandas as pd

import streamframe as sf
from streamframe.plan.rekey import rekey_plan, sources_by_topic
from streamframe.runtime.repartition import join_keys


def _plan(frame):
    return rekey_plan(frame._node, sources_by_topic(frame._node))


def test_a_column_of_the_stream_as_decoded_is_re_keyed():
    orders, customers = sf.stream("orders"), sf.table("customers", key="customer_id")
    on, streams, table = _plan(orders.join(customers, on="customer_id", how="left"))
    assert (on, [s.topic for s in streams], table.topic) == ("customer_id", ["orders"], "customers")
    passing = orders[orders.qty > 1].assign(total=orders.qty * 2).peek(print).drop(columns="x").rekey("qty")
    assert _plan(passing.join(customers, on=["customer_id"])) is not None
    both = sf.concat([sf.stream("a"), sf.stream("b")])
    assert [s.topic for s in _plan(both.join(customers, on="customer_id"))[1]] == ["a", "b"]


def test_the_key_a_changed_column_or_another_table_side_stay_in_process():
    orders, customers = sf.stream("orders"), sf.table("customers", key="customer_id")
    assert _plan(orders.join(customers)) is None  # the record key: co-partitioned topics
    assert _plan(orders.join(customers, on="_key")) is None
    assert _plan(orders.assign(customer_id=orders.cid).join(customers, on="customer_id")) is None
    assert _plan(orders.rename(columns={"cid": "customer_id"}).join(customers, on="customer_id")) is None
    assert _plan(orders.fillna("none").join(customers, on="customer_id")) is None
    assert _plan(orders.astype({"customer_id": str}).join(customers, on="customer_id")) is None
    assert _plan(orders.astype({"qty": float}).join(customers, on="customer_id")) is not None
    assert _plan(orders.map(lambda df: df).join(customers, on="customer_id")) is None
    assert _plan(orders.join(sf.global_table("customers", key="customer_id"), on="customer_id")) is None
    counts = sf.stream("visits").groupby("customer_id").count()  # a table that is not one topic's
    assert _plan(orders.join(counts, on="customer_id")) is None
    first = orders.join(customers, on="customer_id")
    assert _plan(first.join(sf.table("regions", key="region"), on="region")) is None  # after another join
    pandas = sf.from_pandas(pd.DataFrame({"customer_id": ["c1"]}))
    assert _plan(pandas.join(customers, on="customer_id")) is None
    # the user's word that the stream is keyed (and partitioned) by the column already
    assert _plan(orders.join(customers, on="customer_id", repartition=False)) is None
    assert _plan(orders.join(customers, on="customer_id", repartition=True)) is not None


def test_explain_shows_the_re_key():
    orders, customers = sf.stream("orders"), sf.table("customers", key="customer_id")
    line = [
        ln for ln in str(orders.join(customers, on="customer_id").explain()).splitlines() if " Join " in ln
    ]
    assert line[0].endswith("on customer_id; the stream re-keyed by customer_id through a repartition topic")
    kept = str(orders.join(customers, on="customer_id", repartition=False).explain())
    assert "re-keyed" not in kept and "re-keyed" not in str(orders.join(customers).explain())


def test_join_values_are_encoded_as_the_table_topic_keys_are():
    values = pd.Series(["c1", None, "c1", "é"], dtype=object)
    assert join_keys(values, "text").tolist() == [b"c1", None, b"c1", "é".encode()]
    ints_with_a_gap = pd.Series([7.0, float("nan"), 12.0])
    assert join_keys(ints_with_a_gap, "text").tolist() == [b"7", None, b"12"]
    assert join_keys(ints_with_a_gap, "json").tolist() == [b"7", None, b"12"]
    assert join_keys(pd.Series(["c1"]), "json").tolist() == [b'"c1"']
