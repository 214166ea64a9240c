"""A stream–table join on a column of the stream re-keys the stream through a repartition topic
partitioned like the table (Kafka Streams' selectKey + join), against the real broker.

Orders are keyed by order_id with a customer_id column (some null, some customers the table never
has); customers are a table keyed by customer_id on a topic with another partition count. The join's
result must equal pandas' merge; the repartition topic must hold every order once, keyed by its
customer_id, on the partition the table topic uses for that key, with the order's value, timestamp
and headers unchanged.
"""

from __future__ import annotations

import time

import numpy as np
import orjson
import pandas as pd
import pytest

import streamframe as sf
from tests.integration.helpers import consume_all, create_topic, produce, wait_until

pytestmark = pytest.mark.integration

BASE = 1_700_000_000_000
N_ORDERS = 300




@pytest.fixture
def shop(bootstrap, conn, topic_name):
    """Orders on 3 partitions, customers on 2; every customer row precedes every order in event time."""
    rng = np.random.default_rng(7)
    orders_topic, customers_topic = f"{topic_name}-orders", f"{topic_name}-customers"
    create_topic(bootstrap, orders_topic, partitions=3)
    create_topic(bootstrap, customers_topic, partitions=2)
    customers = pd.DataFrame({"customer_id": [f"c{i:02d}" for i in range(20)],
                              "name": [f"name-{i}" for i in range(20)],
                              "tier": rng.integers(1, 4, 20)})
    produce(bootstrap, customers_topic, [orjson.dumps(r) for r in customers.to_dict("records")],
            keys=customers["customer_id"].tolist(), timestamps=[BASE + i for i in range(len(customers))])
    ids = [f"c{i:02d}" for i in rng.integers(0, 24, N_ORDERS)]  # c20-c23: never in the table
    ids = [None if i % 11 == 0 else c for i, c in enumerate(ids)]  # and some with no customer
    orders = pd.DataFrame({"order_id": np.arange(N_ORDERS), "customer_id": ids,
                           "amount": rng.integers(1, 500, N_ORDERS)})
    values = [orjson.dumps({k: v for k, v in r.items() if v is not None}) for r in orders.to_dict("records")]
    stamps = [BASE + 10_000 + 7 * i for i in range(N_ORDERS)]
    headers = [[("trace", f"t{i}".encode())] if i % 5 == 0 else None for i in range(N_ORDERS)]
    produce(bootstrap, orders_topic, values, keys=[f"o{i}" for i in range(N_ORDERS)], timestamps=stamps,
            headers=headers)
    return {
        "orders": orders_topic,
        "customers": customers_topic,
        "orders_df": orders,
        "customers_df": customers,
        "values": values,
        "stamps": stamps,
        "headers": headers,
    }


def _joined(shop, how="left"):
    return sf.stream(shop["orders"]).join(
        sf.table(shop["customers"], key="customer_id"), on="customer_id", how=how
    )


def _expected(shop, how="left") -> pd.DataFrame:
    return shop["orders_df"].merge(shop["customers_df"], on="customer_id", how=how)


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    cols = ["order_id", "customer_id", "amount", "name", "tier"]
    got = got[cols].sort_values("order_id").reset_index(drop=True)
    want = want[cols].sort_values("order_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def _repartition_topics(conn) -> dict[str, int]:
    return {
        t: n
        for t, n in conn.topics().items()
        if t.startswith(f"{conn.app_id}-") and t.endswith("-repartition")
    }


@pytest.mark.parametrize("how", ["left", "inner"])
def test_bounded_join_on_a_column_equals_pandas_merge(shop, conn, how):
    got = _joined(shop, how).run(metadata=True, timeout=120)
    _same(got, _expected(shop, how))
    if how == "left":
        assert got["name"].isna().sum() > 10  # orders with no or an unknown customer are kept
    by_order = got.set_index("order_id")
    assert by_order["_key"].to_dict() == {i: f"o{i}" for i in by_order.index}  # the records' own keys
    assert {int(t.value // 1_000_000) for t in by_order["_timestamp"]} <= set(shop["stamps"])
    # The stream was read through a copy partitioned like the table (2 partitions, not the orders' 3).
    assert list(_repartition_topics(conn).values()) == [2]
    assert set(got["_partition"]) <= {0, 1}


def test_repartition_topic_is_keyed_like_the_table(shop, conn, bootstrap):
    q = _joined(shop).to_topic(f"{shop['orders']}-out", until="end", name="placement", timeout=120)
    assert q.metrics["records_out"] == N_ORDERS
    [(topic, partitions)] = _repartition_topics(conn).items()
    assert topic == f"{conn.app_id}-placement-{q.topology.positions[q.root.id]}-repartition"
    table_partition = {m.key().decode(): m.partition() for m in consume_all(bootstrap, shop["customers"])}
    records = consume_all(bootstrap, topic, expect=N_ORDERS)
    assert len(records) == N_ORDERS  # every order once, the ones with no customer too
    orders = shop["orders_df"].set_index("order_id")
    seen_unknown = 0
    for m in records:
        headers = m.headers() or []
        assert headers[-1][0] == "streamframe.key"  # the order's own key rides along
        order_id = int(headers[-1][1].decode()[1:])
        customer = orders.at[order_id, "customer_id"]
        assert m.value() == shop["values"][order_id]  # value bytes unchanged
        assert m.timestamp()[1] == shop["stamps"][order_id]  # record timestamp unchanged
        assert (headers[:-1] or None) == shop["headers"][order_id]  # headers unchanged
        if pd.isna(customer):
            assert m.key() is None
            continue
        assert m.key() == customer.encode()  # keyed by the join column
        if customer in table_partition:
            assert m.partition() == table_partition[customer]  # where the table holds that customer
        else:
            seen_unknown += 1
    assert seen_unknown > 0 and len(set(table_partition.values())) == partitions == 2


def test_bounded_runs_read_their_own_copy_only(shop, conn):
    first = _joined(shop).run(timeout=120)
    again = _joined(shop).run(timeout=120)  # the same query name: the same repartition topic, emptied first
    assert len(first) == len(again) == N_ORDERS
    _same(again, _expected(shop))


def test_live_join_on_a_column_gives_the_same_result(shop, conn, bootstrap, monkeypatch):
    from streamframe.runtime import repartition

    monkeypatch.setattr(repartition, "PURGE_INTERVAL", 0.5)  # delete consumed records soon, not every 30 s
    q = _joined(shop).start(name="live-rekey", commit_interval=0.5)
    try:
        wait_until(lambda: q.metrics["records_out"] >= N_ORDERS or q.status == "failed", timeout=90)
        assert q.status == "running", q.exception
        assert len(q.helpers) == 1 and q.helpers[0].status == "running"
        _same(q.sink.result(), _expected(shop))
        [topic] = _repartition_topics(conn)
        wait_until(
            lambda: sum(_low_watermarks(bootstrap, topic, 2)) == N_ORDERS
        )  # consumed, committed, deleted
    finally:
        q.stop()
    assert q.status == "stopped" and q.helpers[0].status == "stopped"
    assert list(_repartition_topics(conn).values()) == [2]
    # Restarted under its name, the copy and the join resume where their groups committed.
    more = [{"order_id": N_ORDERS + i, "customer_id": f"c{i:02d}", "amount": i} for i in range(5)]
    produce(
        bootstrap,
        shop["orders"],
        [orjson.dumps(r) for r in more],
        keys=[f"o{r['order_id']}" for r in more],
        timestamps=[BASE + 20_000 + i for i in range(5)],
    )
    q = _joined(shop).start(name="live-rekey", commit_interval=0.5)
    try:
        wait_until(lambda: q.metrics["records_out"] >= 5 or q.status == "failed", timeout=90)
        time.sleep(1)
        assert q.metrics["records_out"] == 5, q.exception
        assert sorted(q.sink.result()["name"]) == [f"name-{i}" for i in range(5)]
    finally:
        q.stop()


def _low_watermarks(bootstrap: str, topic: str, partitions: int) -> list[int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[0] for p in range(partitions)]
    finally:
        c.close()


def test_each_order_sees_the_customer_as_of_its_own_time(bootstrap, conn, topic_name):
    """Table updates interleaved in event time with the orders, out of order across partitions: the
    re-keyed stream still joins each order with the table as of the order's timestamp."""
    rng = np.random.default_rng(3)
    orders_topic, customers_topic = f"{topic_name}-orders", f"{topic_name}-customers"
    create_topic(bootstrap, orders_topic, partitions=2)
    create_topic(bootstrap, customers_topic, partitions=3)
    n = 400
    stamps = BASE + 10 * rng.permutation(n)  # distinct times, in no order
    kinds = rng.random(n) < 0.3
    who = [f"c{i}" for i in rng.integers(0, 6, n)]
    updates = [(int(t), c, i) for i, (t, c, k) in enumerate(zip(stamps, who, kinds)) if k]
    orders = [(int(t), c, i) for i, (t, c, k) in enumerate(zip(stamps, who, kinds)) if not k]
    updates.sort()  # each partition's updates in time order: the table as of a time is well defined
    orders.sort(key=lambda o: (o[2] % 2, o[0]))  # each orders partition in time order, not the topic
    produce(
        bootstrap,
        customers_topic,
        [orjson.dumps({"customer_id": c, "version": i}) for _, c, i in updates],
        keys=[c for _, c, _ in updates],
        timestamps=[t for t, _, _ in updates],
    )
    produce(
        bootstrap,
        orders_topic,
        [orjson.dumps({"order_id": i, "customer_id": c}) for _, c, i in orders],
        keys=[str(i) for _, _, i in orders],
        timestamps=[t for t, _, _ in orders],
        partitions=[i % 2 for _, _, i in orders],
    )
    got = (
        sf.stream(orders_topic)
        .join(sf.table(customers_topic, key="customer_id"), on="customer_id", how="left")
        .run(timeout=120)
    )
    left = pd.DataFrame(orders, columns=["ts", "customer_id", "order_id"]).sort_values("ts")
    right = pd.DataFrame(updates, columns=["ts", "customer_id", "version"]).sort_values("ts")
    want = pd.merge_asof(left, right, on="ts", by="customer_id", direction="backward")
    assert want["version"].notna().sum() > 100 and want["version"].isna().any()
    got = got.set_index("order_id")["version"].sort_index()
    want = want.set_index("order_id")["version"].sort_index()
    pd.testing.assert_series_equal(got, want, check_dtype=False)
    assert _repartition_topics(conn)  # it went through the copy


def test_a_column_made_before_the_join_is_looked_up_in_process(shop, conn, bootstrap, topic_name):
    orders = sf.stream(shop["orders"])
    renamed = orders.assign(cid=orders.customer_id).drop(columns="customer_id")
    table = sf.table(shop["customers"], key="customer_id")
    with pytest.raises(sf.ConfigError, match="not co-partitioned"):  # 3 and 2 partitions, no copy possible
        renamed.join(table, on="cid").run()
    same = f"{topic_name}-orders2"
    create_topic(bootstrap, same, partitions=2)
    produce(
        bootstrap, same, shop["values"], keys=[f"o{i}" for i in range(N_ORDERS)], timestamps=shop["stamps"]
    )
    orders = sf.stream(same)
    got = orders.assign(cid=orders.customer_id).join(table, on="cid", how="left").run(timeout=120)
    assert not _repartition_topics(conn)
    _same(got, _expected(shop))
