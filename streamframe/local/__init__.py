"""A local single-node Apache Kafka broker (KRaft) for development, run from jars fetched with Maven.

    >>> from streamframe import local
    >>> broker = local.start()        # fetches Kafka once, then starts it detached; reuses a running one
    >>> broker.bootstrap
    '127.0.0.1:40123'
    >>> local.status() == broker
    True
    >>> print(local.logs(5))          # doctest: +SKIP
    >>> local.stop()
    True

Jars: ``${STREAMFRAME_CACHE:-${XDG_CACHE_HOME:-~/.cache}/streamframe}/kafka-<version>/libs``.
State: ``${STREAMFRAME_HOME:-${XDG_STATE_HOME:-~/.local/state}/streamframe}/kafka``.
Nothing here prints; failures raise BrokerError with the cause and the tail of the log.
"""

from __future__ import annotations

from streamframe.local.broker import Broker, logs, start, status, stop
from streamframe.local.maven import ensure_jars
from streamframe.local.paths import KAFKA_VERSION, BrokerError

__all__ = ["KAFKA_VERSION", "Broker", "BrokerError", "ensure_jars", "logs", "start", "status", "stop"]
