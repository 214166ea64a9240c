"""Users and ACLs through Kafka's Admin API: SCRAM credentials (AlterUserScramCredentials) and ACLs
(CreateAcls), as `kafka-configs --entity-type users` and `kafka-acls --add` make them.

    >>> admin = {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "SASL_PLAINTEXT"}  # + creds
    >>> upsert_scram_user(admin, "alice", "alice-secret")                   # doctest: +SKIP
    >>> allow(admin, "alice", "topic", "orders", ["read"])                   # doctest: +SKIP
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from streamframe.errors import ConfigError
from streamframe.kafka.config import scrub
from streamframe.kafka.connection import ScrubbingLogger

TIMEOUT = 10.0
SCRAM_ITERATIONS = 8192


def _admin(config: dict) -> AdminClient:
    return AdminClient({**config, "logger": ScrubbingLogger(config)})


def upsert_scram_user(config: dict, name: str, password: str) -> None:
    """Create `name` (or set its password) as a SCRAM-SHA-512 user; `config` logs in as an admin."""
    upsert = UserScramCredentialUpsertion(
        name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), password.encode())
    admin = _admin(config)  # held while waiting: a dropped client cancels its requests
    futures = admin.alter_user_scram_credentials([upsert], request_timeout=TIMEOUT)
    _wait(futures, f"cannot create user {name!r}", {**config, "password": password})


def allow(config: dict, user: str, resource: str, name: str, operations, prefixed: bool = False) -> None:
    """ACLs allowing User:`user` each of `operations` (read, write, create, describe, all, ...) on the
    `resource` ("topic", "group", "cluster", "transactional_id") called `name` (or every name starting
    with it: `prefixed`), from any host; returns once the broker lists them."""
    try:
        restype = ResourceType[resource.upper()]
        ops = [AclOperation[op.upper()] for op in operations]
    except KeyError as e:
        raise ConfigError(f"unknown ACL resource or operation {e.args[0]!r}") from None
    pattern = ResourcePatternType.PREFIXED if prefixed else ResourcePatternType.LITERAL
    bindings = [AclBinding(restype, name, pattern, f"User:{user}", "*", op, AclPermissionType.ALLOW)
                for op in ops]
    admin = _admin(config)
    _wait(admin.create_acls(bindings, request_timeout=TIMEOUT), f"cannot add ACLs for User:{user}", config)
    # The authorizer learns ACLs from the metadata log: wait until the broker answers with them.
    wanted = AclBindingFilter(restype, name, pattern, f"User:{user}", "*", AclOperation.ANY,
                              AclPermissionType.ANY)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = admin.describe_acls(wanted, request_timeout=TIMEOUT).result(timeout=TIMEOUT + 5)
        if {b.operation for b in found} >= set(ops):
            return
        time.sleep(0.1)


def _wait(futures, what: str, config: dict) -> None:
    for future in (futures.values() if isinstance(futures, dict) else futures):
        try:
            future.result(timeout=TIMEOUT + 5)
        except KafkaException as e:
            err = e.args[0] if e.args else e
            reason = err.str() if hasattr(err, "str") else str(err)
            raise ConfigError(f"{what}: {scrub(reason, config)}") from None
