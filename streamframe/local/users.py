"""Users and ACLs of the local broker started with ``--sasl``, made through Kafka's Admin API as its
admin user (a super user).

    >>> from streamframe import local
    >>> broker = local.start(sasl=True)                                 # doctest: +SKIP
    >>> local.add_user("alice", "alice-secret")                         # doctest: +SKIP
    >>> local.allow("alice", topic="orders", operations=["read"])       # doctest: +SKIP
    >>> local.allow("alice", group="streamframe.", prefixed=True)       # doctest: +SKIP
    >>> sf.connect(broker.bootstrap, config=local.user_config("alice", "alice-secret"))  # doctest: +SKIP
"""

from __future__ import annotations

from streamframe.errors import BrokerError, ConfigError
from streamframe.local.broker import admin_config, status
from streamframe.local.config import SCRAM


def user_config(user: str, password: str) -> dict:
    """librdkafka settings that log in to the local ``--sasl`` broker as `user`."""
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": SCRAM, "sasl.username": user,
            "sasl.password": password}


def add_user(user: str, password: str) -> None:
    """Create SCRAM-SHA-512 user `user` (or set its password) on the local ``--sasl`` broker."""
    from streamframe.kafka.security import upsert_scram_user

    upsert_scram_user(_admin(), user, password)


def allow(user: str, *, topic: str | None = None, group: str | None = None,
          operations=("read",), prefixed: bool = False) -> None:
    """Allow `user` `operations` (read, write, create, describe, all, ...) on a topic or a consumer group
    (every one whose name starts with it: `prefixed`) of the local ``--sasl`` broker."""
    from streamframe.kafka.security import allow as create_acls

    if (topic is None) == (group is None):
        raise ConfigError("allow() takes one of topic= or group=")
    resource, name = ("topic", topic) if topic is not None else ("group", group)
    create_acls(_admin(), user, resource, name, list(operations), prefixed)


def _admin() -> dict:
    broker = status()
    if broker is None or not broker.sasl:
        raise BrokerError("users and ACLs need the local broker started with SASL "
                          "(`streamframe local start --sasl`, or local.start(sasl=True))")
    return {"bootstrap.servers": broker.bootstrap, **admin_config()}
