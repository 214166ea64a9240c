"""The kernel's session: its default Connection and its running queries.

    >>> import streamframe as sf
    >>> conn = sf.connect()            # doctest: +SKIP
    >>> conn.bootstrap                 # doctest: +SKIP
    '127.0.0.1:39421'
"""

from __future__ import annotations

import atexit
import os
import threading
import time

from streamframe.errors import ConfigError

_lock = threading.RLock()
_default = None
_queries: dict = {}
_samples: dict = {}  # (bootstrap, topic) -> (when taken, RawBatch or None)

SAMPLE_RECORDS = 100  # records a frame looks at to tell its columns
SAMPLE_TIMEOUT = 3.0  # seconds: longer, and the columns stay unknown
SAMPLE_TTL = (300.0, 10.0)  # seconds a sample is kept: one with records, an empty or failed one


def connect(bootstrap: str | None = None, config: dict | None = None, app_id: str | None = None,
            processing_guarantee: str | None = None, schema_registry=None):
    """Connect to Kafka and make the connection every frame's default.

    `bootstrap` defaults to $STREAMFRAME_BOOTSTRAP, else the running local broker, else a local broker
    started now (a local broker started with ``--sasl`` is logged in to as its admin unless `config`
    names a user). `config` passes librdkafka settings through (SASL, SSL, ...); secrets in it never show
    in reprs, logs or errors. `processing_guarantee` ("at_least_once", the default, or "exactly_once";
    also $STREAMFRAME_PROCESSING_GUARANTEE) is every query's unless it sets its own. `schema_registry`
    (also $STREAMFRAME_SCHEMA_REGISTRY): the Schema Registry of the "avro", "protobuf" and "jsonschema"
    formats, as a URL, a dict of confluent-kafka's SchemaRegistryClient settings (`url`,
    `basic.auth.user.info`, ...; "mock://NAME" is its in-memory registry) or a SchemaRegistryClient;
    its credentials are masked like SASL passwords. Fails with
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
        if broker.sasl and "sasl.username" not in (config or {}):  # `local start --sasl`: as its admin
            config = {**local.admin_config(), **(config or {})}
    guarantee = processing_guarantee or os.environ.get("STREAMFRAME_PROCESSING_GUARANTEE") or None
    registry = schema_registry or os.environ.get("STREAMFRAME_SCHEMA_REGISTRY") or None
    conn = Connection(bootstrap, config, app_id=app_id or os.environ.get("STREAMFRAME_APP_ID", "streamframe"),
                      processing_guarantee=guarantee, schema_registry=registry)
    conn.check()  # a clear BrokerUnreachableError now, not a hang later
    with _lock:
        _default = conn
        _samples.clear()
    return conn


def current():
    """The default connection if there is one, else None (never connects)."""
    with _lock:
        return _default


def disconnect() -> None:
    """Forget the default connection and the samples taken through it (the next use connects anew)."""
    global _default
    with _lock:
        _default = None
        _samples.clear()


def sample(topic: str, connect: bool = False):
    """A few of `topic`'s last records (a RawBatch, cached), from which a frame tells its columns; None
    when they cannot be known now: no connection yet (unless `connect`), no such topic, no records, or no
    answer within SAMPLE_TIMEOUT. Never raises for those, and never waits longer."""
    from streamframe.errors import StreamframeError

    conn = connection() if connect else current()
    if conn is None:
        return None
    key = (conn.bootstrap, topic)
    with _lock:
        taken = _samples.get(key)
    if taken is not None and time.monotonic() - taken[0] < SAMPLE_TTL[0 if taken[1] else 1]:
        return taken[1]
    from streamframe.kafka.peek import sample as read_sample

    try:
        raw = read_sample(conn, topic, SAMPLE_RECORDS, SAMPLE_TIMEOUT) or None
    except StreamframeError:  # no such topic, broker gone: the columns are not known, no error
        raw = None
    with _lock:
        _samples[key] = (time.monotonic(), raw)
    return raw


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


@atexit.register
def _stop_at_exit(budget: float = 10.0) -> None:
    """At interpreter exit (a kernel shut down or restarted, a script's end) the running queries stop
    and close their consumers, so none stays a member of its group until the session timeout (45 s)."""
    running = [q for q in queries() if q.status == "running"]
    for q in running:
        q.stop(timeout=0)  # every one told first, so they stop side by side
    deadline = time.monotonic() + budget
    for q in running:
        q.stop(timeout=max(deadline - time.monotonic(), 0.1))
