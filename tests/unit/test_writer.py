"""The producer's queue: a write that cannot get room fails with DeliveryError instead of looping.

A real librdkafka producer towards a port nothing listens on, with a queue of one record: the second
record finds the queue full for as long as the test waits."""

from __future__ import annotations

import socket
import time

import pytest

from streamframe.errors import DeliveryError
from streamframe.kafka import writer
from streamframe.kafka.connection import Connection


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def output(monkeypatch):
    monkeypatch.setattr(writer, "QUEUE_WAIT", 1)
    conn = Connection(f"127.0.0.1:{_closed_port()}")
    out = writer.Output(conn, {"queue.buffering.max.messages": 1, "message.timeout.ms": 30_000})
    yield out
    out.producer.purge()


@pytest.mark.parametrize("how", ["many", "one"])
def test_a_full_queue_fails_within_the_wait(output, how):
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="stayed full for 1 s"):
        if how == "many":
            output.produce_many("t", [b"a", b"b"], [None, None], [0, 0])
        else:
            output.produce("t", b"a")
            output.produce("t", b"b", headers=[("h", b"1")], partition=0)
    assert time.monotonic() - started < 10
