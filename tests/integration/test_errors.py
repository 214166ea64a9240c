"""Bad input and bad configuration against the real broker: clear errors, dead letters, no secrets."""

from __future__ import annotations

import logging
import socket
import time

import orjson
import pytest

import streamframe as sf
from streamframe import session
from tests.integration.helpers import consume_all, create_topic, produce

pytestmark = pytest.mark.integration
SENTINEL = "sentinel-Pa55w0rd-7c1e"


@pytest.fixture
def mixed_topic(bootstrap, conn, topic_name):
    """Good JSON records with two malformed ones among them, on one partition."""
    create_topic(bootstrap, topic_name)
    values = [orjson.dumps({"i": i, "qty": i * 10}) for i in range(20)]
    values[5] = b'{"i": 5, "qty": '  # truncated
    values[12] = b"\xff\xfe not json"
    produce(bootstrap, topic_name, values, keys=[f"k{i}".encode() for i in range(20)])
    return topic_name, values


def test_malformed_records_go_to_the_dead_letter_topic(mixed_topic, bootstrap):
    topic, values = mixed_topic
    s = sf.stream(topic)
    q = s.to_topic(f"{topic}-out", until="end")
    assert q.metrics["dead_letters"] == 2 and q.metrics["errors"] == 2
    assert q.metrics["records_out"] == 18  # every good record came through
    good = sorted(orjson.loads(m.value())["i"] for m in consume_all(bootstrap, f"{topic}-out", expect=18))
    assert good == [i for i in range(20) if i not in (5, 12)]
    dlq = consume_all(bootstrap, f"{topic}.dlq", expect=2)
    assert [m.value() for m in dlq] == [values[5], values[12]]  # the original bytes
    assert [m.key() for m in dlq] == [b"k5", b"k12"]
    headers = [dict(m.headers()) for m in dlq]
    assert [h["streamframe.offset"] for h in headers] == [b"5", b"12"]
    assert all(
        h["streamframe.partition"] == b"0" and h["streamframe.topic"] == topic.encode() for h in headers
    )
    assert all(b"invalid JSON" in h["streamframe.error"] for h in headers)


def test_on_error_fail_names_partition_and_offset(mixed_topic):
    topic, _ = mixed_topic
    with pytest.raises(sf.RecordError, match=rf"{topic}\[0\]@5 failed: invalid JSON"):
        sf.stream(topic, on_error="fail").run()


def test_on_error_skip_counts_and_goes_on(mixed_topic, conn):
    topic, _ = mixed_topic
    q = sf.stream(topic, on_error="skip").to_topic(f"{topic}-skip", until="end")
    assert q.metrics["skipped"] == 2 and q.metrics["dead_letters"] == 0 and q.metrics["records_out"] == 18
    assert f"{topic}.dlq" not in conn.topics()


def test_evaluation_error_dead_letters_only_the_failing_record(bootstrap, conn, topic_name):
    create_topic(bootstrap, topic_name)
    produce(bootstrap, topic_name, [orjson.dumps({"a": 10, "b": b}) for b in (1, 2, 0, 5)])
    s = sf.stream(topic_name, dead_letter_topic=f"{topic_name}-bad")

    def ratio(df):
        if (df.b == 0).any():
            raise ZeroDivisionError("b is zero")
        return df.a // df.b

    q = s.assign(r=ratio).to_topic(f"{topic_name}-out", until="end")
    assert q.metrics["records_out"] == 3 and q.metrics["dead_letters"] == 1
    [dead] = consume_all(bootstrap, f"{topic_name}-bad", expect=1)
    assert orjson.loads(dead.value()) == {"a": 10, "b": 0}
    assert b"ZeroDivisionError: b is zero" in dict(dead.headers())["streamframe.error"]


def test_unknown_topic_names_it_and_similar_ones(bootstrap, conn, topic_name):
    create_topic(bootstrap, f"{topic_name}-orders")
    with pytest.raises(sf.UnknownTopicError) as err:
        sf.stream(f"{topic_name}-ordesr").run()
    message = str(err.value)
    assert f"'{topic_name}-ordesr' does not exist" in message and f"{topic_name}-orders" in message


def test_topics_are_looked_up_by_name_and_a_missing_one_is_not_created(bootstrap, conn, topic_name):
    create_topic(bootstrap, f"{topic_name}-here", partitions=3)
    assert conn.describe([f"{topic_name}-here", f"{topic_name}-gone", ""]) == {f"{topic_name}-here": 3}
    assert f"{topic_name}-gone" not in conn.topics()
    with pytest.raises(sf.UnknownTopicError, match="-gone' does not exist"):
        conn.require_topics([f"{topic_name}-here", f"{topic_name}-gone"])


def _free_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _timed(fn, error):
    """(the exception `fn` raised, seconds it took)."""
    started = time.monotonic()
    with pytest.raises(error) as err:
        fn()
    return err.value, time.monotonic() - started


def _one_line(e: Exception) -> str:
    message = str(e)
    assert "\n" not in message and message.strip() == message
    return message


# The bounds are the feature (issue 13, item 2): librdkafka says at once that every broker is down, where
# a request would wait for its whole 10 s timeout. One second of slack on a shared machine.
REFUSED_WITHIN, UNRESOLVED_WITHIN, NAMED_WITHIN = 3 + 1, 5 + 1, 5 + 1


def test_refused_connection_fails_fast_naming_the_address():
    address = f"127.0.0.1:{_free_port()}"
    err, took = _timed(lambda: sf.connect(address), sf.BrokerUnreachableError)
    assert took < REFUSED_WITHIN, f"took {took:.1f} s"
    message = _one_line(err)
    assert f"cannot reach Kafka at {address} " in message and "Connection refused" in message


def test_unresolvable_host_fails_fast_naming_the_address():
    address = "no-such-host.invalid:9092"
    err, took = _timed(lambda: sf.connect(address), sf.BrokerUnreachableError)
    assert took < UNRESOLVED_WITHIN, f"took {took:.1f} s"
    message = _one_line(err)
    assert f"cannot reach Kafka at {address} " in message and "resolve" in message


def _on(conn):
    """Make `conn` the session's default (unchecked, as a Connection made by hand is) for a block."""
    previous = session._default
    session._default = conn
    return previous


def test_a_query_on_a_refused_connection_fails_fast(topic_name):
    address = f"127.0.0.1:{_free_port()}"
    previous = _on(sf.Connection(address))
    try:
        err, took = _timed(lambda: sf.stream(topic_name).run(), sf.BrokerUnreachableError)
    finally:
        session._default = previous
    assert took < REFUSED_WITHIN, f"took {took:.1f} s"
    assert address in _one_line(err)


@pytest.mark.parametrize("config, named", [
    ({"bogus.setting": "1"}, '"bogus.setting"'),
    ({"fetch.wait.max.mss": 100}, '"fetch.wait.max.mss"'),  # a typo of a consumer setting
    ({"acks": "maybe"}, "request.required.acks"),  # librdkafka's name for acks
])
def test_a_bad_config_key_is_one_line_naming_it(bootstrap, config, named):
    err, took = _timed(lambda: sf.connect(bootstrap, config=config), sf.ConfigError)
    assert took < NAMED_WITHIN
    message = _one_line(err)
    assert named in message and "bad Kafka client setting" in message and "reach" not in message


def test_a_bad_config_key_fails_a_query_on_a_hand_made_connection(bootstrap, topic_name):
    create_topic(bootstrap, topic_name)
    previous = _on(sf.Connection(bootstrap, {"bogus.setting": "1"}))
    try:
        err, took = _timed(lambda: sf.stream(topic_name).run(), sf.ConfigError)
    finally:
        session._default = previous
    assert took < NAMED_WITHIN and '"bogus.setting"' in _one_line(err)


def test_an_unknown_topic_is_one_line_naming_it_for_run_start_and_tail(bootstrap, conn, topic_name):
    from streamframe.kafka.peek import TopicTail

    missing = f"{topic_name}-missing"
    for attempt in (lambda: sf.stream(missing).run(),
                    lambda: sf.stream(missing).start(name=f"{topic_name}-q").wait(timeout=30),
                    lambda: TopicTail(conn, missing, 5)):
        err, took = _timed(attempt, sf.UnknownTopicError)
        assert took < NAMED_WITHIN
        assert f"topic {missing!r} does not exist at {bootstrap}" in _one_line(err)


def test_secrets_never_appear_in_reprs_errors_metrics_or_logs(bootstrap, topic_name, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    config = {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "alice",
        "sasl.password": SENTINEL,
        "debug": "security,broker",
    }
    started = time.monotonic()
    with pytest.raises(sf.BrokerUnreachableError) as err:
        sf.connect(bootstrap, config=config)  # a PLAINTEXT broker: the SASL handshake cannot succeed
    assert time.monotonic() - started < 12
    conn = sf.Connection(bootstrap, config)
    previous = session._default
    session._default = conn
    try:
        q = sf.stream(topic_name).start(name="secret-check")
        with pytest.raises(sf.StreamframeError):
            q.wait(timeout=30)
        texts = [str(err.value), repr(conn), str(conn.config), repr(q), str(q.metrics), str(q.exception)]
    finally:
        session._default = previous
    assert conn.config["sasl.password"] == "********"
    assert q.status == "failed"
    texts += [r.getMessage() for r in caplog.records]
    out, errs = capfd.readouterr()
    texts += [out, errs]
    assert caplog.records, "the client logged nothing: the log check would prove nothing"
    for text in texts:
        assert SENTINEL not in text
