"""A local broker started with SASL_PLAINTEXT (SCRAM-SHA-512) and ACLs (issue 13, item 7): a query with
the right credentials equals pandas; a bad password, a topic or a group without an ACL each fail at once
with one line naming what is wrong; a password never shows in anything a failing query leaves behind."""

from __future__ import annotations

import logging
import time
import traceback

import orjson
import pandas as pd
import pytest
from confluent_kafka import Producer

import streamframe as sf
from streamframe import local, session
from streamframe.display import view
from tests.integration.helpers import own_broker

pytestmark = pytest.mark.integration
SENTINEL = "sentinel-Scr4m-9d2f"  # a correct password: nothing a failing query leaves may contain it
WRONG = "sentinel-Wr0ng-5b7a"  # a wrong one
TOPIC, RECORDS = "orders", 500
FAIL_WITHIN = 10  # seconds (the bound for a bad password; ACL denials come as fast)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """A broker of its own, `--sasl`, in its own STREAMFRAME_HOME (the suite's broker is PLAINTEXT), with
    users: `reader` (the topic, its app's groups and topics, out-* topics), `nogroup` (the topic only),
    `peeker` (describe the topic only), `outsider` (nothing)."""
    with own_broker(tmp_path_factory.mktemp("sasl-home"), sasl=True) as broker:
        for user in ("reader", "nogroup", "peeker", "outsider"):
            local.add_user(user, SENTINEL)
        local.allow("reader", topic=TOPIC, operations=["read"])
        local.allow("reader", group="app-r.", prefixed=True, operations=["read"])
        local.allow("reader", topic="out-", prefixed=True, operations=["create", "write", "describe"])
        # A live stateful query's own topics ({app_id}-...-changelog): made, written, read back on restore.
        local.allow("reader", topic="app-r-", prefixed=True, operations=["create", "write", "read"])
        local.allow("nogroup", topic=TOPIC, operations=["read"])
        local.allow("peeker", topic=TOPIC, operations=["describe"])
        admin = sf.Connection(broker.bootstrap, local.admin_config())
        admin.ensure_topic(TOPIC, partitions=2)
        rows = [{"user": f"u{i % 7}", "qty": i % 13 + 1, "i": i} for i in range(RECORDS)]
        producer = Producer({"bootstrap.servers": broker.bootstrap, **local.admin_config()})
        for row in rows:
            producer.produce(TOPIC, orjson.dumps(row), key=row["user"].encode())
        assert producer.flush(30) == 0
        del producer  # gone before the broker stops: it would print its reconnects on stderr
        yield broker, pd.DataFrame(rows)


def _as(broker, user, password=SENTINEL, app_id="app-r", **extra):
    """A hand-made Connection as `user`, made every frame's default (unchecked, as a query meets it)."""
    conn = sf.Connection(broker.bootstrap, {**local.user_config(user, password), **extra}, app_id=app_id)
    session._default = conn
    return conn


def _fails(fn, error):
    started = time.monotonic()
    with pytest.raises(error) as err:
        fn()
    took = time.monotonic() - started
    message = str(err.value)
    assert "\n" not in message and took < FAIL_WITHIN, f"took {took:.1f} s: {message}"
    return err.value, took


def _compare(name, got: pd.DataFrame, golden: pd.Series) -> None:
    """Per-key sums against pandas: keys in, out, missing, extra, and keys whose sum differs."""
    got = got.set_index("user")["total"]
    missing, extra = set(golden.index) - set(got.index), set(got.index) - set(golden.index)
    wrong = [k for k in set(got.index) & set(golden.index) if got[k] != golden[k]]
    print(f"\n{name}: keys golden {len(golden)}, out {len(got)}, missing {len(missing)}, extra {len(extra)}, "
          f"wrong {len(wrong)}; records in {RECORDS}")
    assert not missing and not extra and not wrong


def test_the_right_credentials_read_write_and_equal_pandas(secured):
    broker, rows = secured
    sf.connect(broker.bootstrap, config=local.user_config("reader", SENTINEL), app_id="app-r")
    golden = rows.groupby("user")["qty"].sum()
    totals = sf.stream(TOPIC).groupby("user").agg(total=("qty", "sum"))
    _compare("bounded run as reader", totals.run().reset_index(), golden)
    q = totals.start()  # a live query: its group app-r.<name> is allowed by the prefixed ACL
    try:
        deadline = time.monotonic() + 60
        while q.metrics["records_in"] < RECORDS and q.status == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert q.status == "running", q.exception
        _compare("live query as reader", totals.snapshot().reset_index(), golden)
    finally:
        q.stop()
    out = sf.stream(TOPIC).to_topic("out-copy", until="end")  # creates and writes out-copy
    assert out.metrics["records_out"] == RECORDS


def test_a_wrong_password_is_one_line_saying_authentication_failed(secured):
    broker, _ = secured
    err, took = _fails(lambda: sf.connect(broker.bootstrap, config=local.user_config("reader", WRONG)),
                       sf.AuthenticationError)
    assert f"authentication failed at {broker.bootstrap} as User:reader" in str(err)
    _as(broker, "reader", WRONG)  # a query on a connection nobody checked fails the same way
    err, took = _fails(lambda: sf.stream(TOPIC).run(), sf.AuthenticationError)
    assert "authentication failed" in str(err) and WRONG not in str(err)
    print(f"\nwrong password: AuthenticationError after {took:.2f} s: {err}")


def test_a_topic_without_a_read_acl_names_the_topic_and_the_permission(secured):
    broker, _ = secured
    for user in ("outsider", "peeker"):  # cannot even see the topic; sees it but may not read it
        _as(broker, user, app_id="app-r")
        local.allow(user, group="app-r.", prefixed=True)  # only the topic's ACL is missing
        err, took = _fails(lambda: sf.stream(TOPIC).run(), sf.AuthorizationError)
        assert f"User:{user} is not allowed to READ topic '{TOPIC}'" in str(err)
        assert f"--operation Read --topic {TOPIC}" in str(err)
        print(f"\n{user}: AuthorizationError after {took:.2f} s: {err}")


def test_a_group_without_an_acl_names_the_group(secured):
    broker, _ = secured
    _as(broker, "nogroup", app_id="app-n")
    q = sf.stream(TOPIC).groupby("user").agg(total=("qty", "sum")).start(name="totals")
    err, took = _fails(lambda: q.wait(timeout=FAIL_WITHIN), sf.AuthorizationError)
    assert q.status == "failed"
    assert "User:nogroup is not allowed to READ group 'app-n.totals'" in str(err)
    assert "--resource-pattern-type prefixed --group app-n." in str(err)  # one ACL covers every query
    print(f"\nnogroup: AuthorizationError after {took:.2f} s: {err}")


def _widget_state(widget) -> list[str]:
    states = [str(widget.get_state())]
    for child in getattr(widget, "children", ()):
        states += _widget_state(child)
    return states


def test_a_password_never_shows_in_what_a_failing_query_leaves(secured, caplog, capfd):
    """Every place a password could leak, for a correct one (the query fails on an ACL, after logging in)
    and a wrong one, with librdkafka's security debug log on: the log check must see records."""
    broker, _ = secured
    caplog.set_level(logging.DEBUG)
    texts = []
    for user, password, error in (("outsider", SENTINEL, sf.AuthorizationError),
                                  ("reader", WRONG, sf.AuthenticationError)):
        conn = _as(broker, user, password, debug="security,broker")
        v = view(sf.stream(TOPIC).groupby("user").agg(total=("qty", "sum")), live=True, rate=10)
        try:
            with pytest.raises(error):
                v.query.wait(timeout=FAIL_WITHIN)
            v.refresh(force=True)
            exc = v.query.exception
            texts += [repr(conn), str(conn.config), repr(v.query), str(v.query.metrics), str(exc),
                      "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
                      v.snapshot_text(), v.snapshot_html(), str(v._repr_mimebundle_()), *_widget_state(v)]
            assert type(exc).__name__ in v.status.value  # the view shows the failure: its state is real
        finally:
            v.close()
            v.query.stop()
    records = [r.getMessage() for r in caplog.records]
    assert any("SASL" in m or "sasl" in m for m in records), "no security log: the check would prove nothing"
    out, errs = capfd.readouterr()
    texts += records + [out, errs]
    print(f"\nsearched {len(texts)} texts ({sum(map(len, texts))} chars, {len(records)} log records)")
    for text in texts:
        assert SENTINEL not in text and WRONG not in text
