"""A local single-node Apache Kafka broker (KRaft) for development, run from jars fetched with Maven,
and optionally a Kafka Connect worker (distributed mode) beside it.

    >>> from streamframe import local
    >>> broker = local.start()        # fetches Kafka once, then starts it detached; reuses a running one
    >>> broker.bootstrap
    '127.0.0.1:40123'
    >>> local.status() == broker
    True
    >>> print(local.logs(5))          # doctest: +SKIP
    >>> secured = local.start(sasl=True)   # SASL_PLAINTEXT (SCRAM-SHA-512) with ACLs  # doctest: +SKIP
    >>> local.add_user("alice", "pw"); local.allow("alice", topic="orders")         # doctest: +SKIP
    >>> worker = local.start_connect()  # Kafka Connect (+ FileStream connectors) on the broker; REST at .url
    >>> local.stop()                    # stops the Connect worker too, before the broker
    True

Jars: ``${STREAMFRAME_CACHE:-${XDG_CACHE_HOME:-~/.cache}/streamframe}/kafka-<version>/libs``
(Connect: ``connect-libs``).
State: ``${STREAMFRAME_HOME:-${XDG_STATE_HOME:-~/.local/state}/streamframe}/kafka``.
Nothing here prints; failures raise BrokerError with the cause and the tail of the log.

May import kafka, plan and the layers below them; not runtime (its neighbour), nothing above, and no
confluent_kafka (DESIGN §7, pyproject [tool.importlinter]).
"""

from __future__ import annotations

from streamframe.errors import BrokerError, ConnectWorkerError
from streamframe.local.broker import Broker, admin_config, logs, start, status, stop
from streamframe.local.connect import ConnectWorker
from streamframe.local.connect import logs as connect_logs
from streamframe.local.connect import start as start_connect
from streamframe.local.connect import status as connect_status
from streamframe.local.connect import stop as stop_connect
from streamframe.local.maven import ensure_connect_jars, ensure_jars
from streamframe.local.paths import KAFKA_VERSION
from streamframe.local.users import add_user, allow, user_config

__all__ = [
    "KAFKA_VERSION",
    "Broker",
    "BrokerError",
    "ConnectWorker",
    "ConnectWorkerError",
    "add_user",
    "admin_config",
    "allow",
    "connect_logs",
    "connect_status",
    "ensure_connect_jars",
    "ensure_jars",
    "logs",
    "start",
    "start_connect",
    "status",
    "stop",
    "stop_connect",
    "user_config",
]
