"""The embedded Apache Kafka launcher (streamframe.local) against a real JVM broker.

Each test gets its own STREAMFRAME_HOME, so it never touches a developer's broker or another
suite's; the jar cache is the shared user cache (fetched once). Every broker started is stopped.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streamframe import local
from streamframe.local import broker as broker_module
from streamframe.local import paths

pytestmark = pytest.mark.integration


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMFRAME_HOME", str(tmp_path / "sf"))
    try:
        yield tmp_path / "sf" / "kafka"
    finally:
        local.stop()  # runs before monkeypatch is undone, so it stops *this* test's broker only


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _roundtrip(bootstrap: str, topic: str) -> bytes:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=b"k", value=b"hello")
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and msg.error() is None:
                return msg.value()
        raise AssertionError("no record consumed within 30 s")
    finally:
        consumer.close()


def test_start_status_reuse_roundtrip_stop_restart(home):
    broker = local.start(timeout=90)
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    assert broker.home == home and broker.log_path == home / "broker.log"
    assert local.status() == broker
    state = json.loads((home / "broker.json").read_text())
    assert state["pid"] == broker.pid and state["bootstrap"] == broker.bootstrap
    assert state["kafka_version"] == local.KAFKA_VERSION == "4.3.1"

    assert local.start().pid == broker.pid  # reused, not a second JVM

    topic = f"sf-local-{uuid.uuid4().hex[:8]}"
    assert _roundtrip(broker.bootstrap, topic) == b"hello"
    # auto.create.topics.enable=false: asking about an unknown topic must not create it
    md = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(topic="no-such-topic", timeout=10)
    assert md.topics["no-such-topic"].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART

    assert local.stop() is True
    assert local.status() is None
    assert not (home / "broker.json").exists()
    assert _pid_gone(broker.pid)
    assert local.stop() is False
    assert "Kafka Server started" in (home / "broker.log").read_text()

    # A restart keeps the port (it is free again) and the data, with a new controller port.
    again = local.start(timeout=90)
    assert again.port == broker.port and again.pid != broker.pid
    assert topic in AdminClient({"bootstrap.servers": again.bootstrap}).list_topics(timeout=10).topics
    assert local.stop() is True and _pid_gone(again.pid)


def test_stale_state_file_is_ignored(home):
    home.mkdir(parents=True)
    # A live pid that is not a broker (our own, as after pid reuse) must be neither reported nor killed.
    (home / "broker.json").write_text(json.dumps({"pid": os.getpid(), "port": 1, "bootstrap": "127.0.0.1:1"}))
    assert local.status() is None
    assert not (home / "broker.json").exists()
    assert local.stop() is False


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_busy_port_is_refused_quickly(home):
    with _listening_socket() as sock:
        port = sock.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(local.BrokerError, match=f"port {port}"):
            local.start(port=port, timeout=60)
        assert time.monotonic() - t0 < 30
    assert local.status() is None


def test_broker_exiting_at_startup_raises_with_log_tail(home, monkeypatch):
    # Skip the pre-check so the JVM itself hits the busy port and exits.
    monkeypatch.setattr(broker_module, "port_free", lambda port: True)
    with _listening_socket() as sock:
        port = sock.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(local.BrokerError) as info:
            local.start(port=port, timeout=60)
        assert time.monotonic() - t0 < 60
    message = str(info.value)
    assert "exited" in message and "last 30 lines of" in message
    assert "first error logged:" in message and "Address already in use" in message
    assert local.status() is None and not (home / "broker.json").exists()
    assert local.logs(5).strip()


def test_timeout_raises_and_kills_the_jvm(home, monkeypatch):
    started = []
    write_state = broker_module._write_state
    monkeypatch.setattr(broker_module, "_write_state", lambda b: (started.append(b), write_state(b)))
    with pytest.raises(local.BrokerError, match=r"did not answer metadata requests .* within 0.2 s"):
        local.start(timeout=0.2)  # far less than a JVM needs to come up
    assert len(started) == 1 and _pid_gone(started[0].pid)
    assert local.status() is None and not (home / "broker.json").exists()


def test_missing_mvn_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMFRAME_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(local.BrokerError, match=r"Maven \(mvn\) is not on PATH"):
        local.ensure_jars()


def test_failing_mvn_reports_its_output_and_leaves_no_marker(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "mvn"
    fake.write_text("#!/bin/sh\necho '[ERROR] Could not resolve dependencies: boom'\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("STREAMFRAME_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(local.BrokerError, match=r"(?s)mvn failed \(exit 1\).*boom"):
        local.ensure_jars()
    assert not (paths.kafka_cache_dir() / ".complete").exists()
    assert not paths.libs_dir().exists()
