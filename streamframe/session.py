"""The kernel's session: its default Connection and its running queries.

    >>> import streamframe as sf
    >>> conn = sf.connect()            # doctest: +SKIP
    >>> conn.bootstrap                 # doctest: +SKIP
    '127.0.0.1:39421'
"""

from __future__ import annotations

import os
import threading

from streamframe.errors import ConfigError

_lock = threading.RLock()
_default = None
_queries: dict = {}


def connect(bootstrap: str | None = None, config: dict | None = None, app_id: str | None = None,
            processing_guarantee: str | None = None):
    """Connect to Kafka and make the connection every frame's default.

    `bootstrap` defaults to $STREAMFRAME_BOOTSTRAP, else the running local broker, else a local broker
    started now. `config` passes librdkafka settings through (SASL, SSL, ...); secrets in it never show
    in reprs, logs or errors. `processing_guarantee` ("at_least_once", the default, or "exactly_once";
    also $STREAMFRAME_PROCESSING_GUARANTEE) is every query's unless it sets its own. Fails with
    BrokerUnreachableError naming the address at once when the connection is refused or the host does
    not resolve, else within 10 s if nobody answers; with ConfigError naming a bad setting in `config`.
    """
    global _default
    from streamframe.kafka.connection import Connection

    if config is not None and not isinstance(config, dict):
        raise ConfigError(f"config must be a dict of librdkafka settings, got {type(config).__name__}")
    bootstrap = (bootstrap or (config or {}).get("bootstrap.servers")
                 or os.environ.get("STREAMFRAME_BOOTSTRAP"))
    if not bootstrap:
        from streamframe import local

        broker = local.start()  # reuses a running broker, and waits until it answers
        bootstrap = broker.bootstrap
    guarantee = processing_guarantee or os.environ.get("STREAMFRAME_PROCESSING_GUARANTEE") or None
    conn = Connection(bootstrap, config, app_id=app_id or os.environ.get("STREAMFRAME_APP_ID", "streamframe"),
                      processing_guarantee=guarantee)
    conn.check()  # a clear BrokerUnreachableError now, not a hang later
    with _lock:
        _default = conn
    return conn


def connection():
    """The default connection, connecting (see connect()) on first use."""
    with _lock:
        if _default is not None:
            return _default
    return connect()


def register(query) -> None:
    with _lock:
        _queries[query.name] = query


def running(name: str):
    """The query called `name` if it runs — or finished its in-memory input, so its result stands —
    so that a frame is never consumed twice; a stopped or failed query can be started again."""
    with _lock:
        q = _queries.get(name)
    return q if q is not None and q.status in ("running", "finished") else None


def queries() -> list:
    """Every query started in this session, running or not, oldest first."""
    with _lock:
        return list(_queries.values())


def stop_all() -> None:
    for q in queries():
        if q.status == "running":
            q.stop()
