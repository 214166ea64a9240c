"""The files a single-node KRaft broker needs in its state dir, and the JVM command lines.

>>> from pathlib import Path
>>> props = write_server_properties(Path("/tmp/sf-demo/kafka"), port=9092, controller_port=9093)
>>> "process.roles=broker,controller" in props.read_text()
True
"""

from __future__ import annotations

import base64
import re
import secrets
import subprocess
import uuid
from pathlib import Path

# Combined broker+controller with a *static* voter set: unlike `format --standalone` (dynamic
# quorum, KIP-853) the controller endpoint is not written into the metadata log, so a restart
# may pick another free controller port. Replication factors of 1 because there is one node.
_SERVER = """\
# Written by streamframe.local at every start; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
controller.listener.names=CONTROLLER
listeners={protocol}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners={protocol}://127.0.0.1:{port}
inter.broker.listener.name={protocol}
listener.security.protocol.map={protocol}:{protocol},CONTROLLER:PLAINTEXT
log.dirs={data}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Stream processing writes records stamped with their event time, often years old in a replay;
# Kafka's default 7-day time retention would delete them as soon as they land. A development broker
# keeps data until its topics are deleted, bounded by size instead.
log.retention.ms=-1
log.retention.bytes=1073741824
"""

# `--sasl`: the one client listener asks for SCRAM-SHA-512 and every request is checked against ACLs.
# The broker logs in to itself as the admin user made at format time (format --add-scram, KIP-900); the
# controller listener stays PLAINTEXT on 127.0.0.1, so its ANONYMOUS principal (the node talking to its
# own controller) must be a super user too.
_SASL = """\
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={jaas}
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:{admin};User:ANONYMOUS
allow.everyone.if.no.acl.found=false
"""
SCRAM = "SCRAM-SHA-512"
ADMIN_USER = "admin"

# Everything to stdout (which start() sends to broker.log) instead of Kafka's usual
# server.log/controller.log/state-change.log/... files.
_LOG4J2 = """\
status = warn
name = streamframe-local-kafka
# Log4j's own JVM shutdown hook would stop logging while Kafka's hook is still shutting down.
shutdownHook = disable
appender.out.type = Console
appender.out.name = out
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.request.name = kafka.request.logger
logger.request.level = WARN
# The full "XConfig values:" dumps are ~450 lines each, several per start;
# server.properties is beside the log.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
"""

JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]


def _escape(path: Path) -> str:
    # java.util.Properties treats backslash as an escape character.
    return str(path).replace("\\", "\\\\")


def write_server_properties(home: Path, port: int, controller_port: int, sasl: bool = False) -> Path:
    """Write ``server.properties`` and ``log4j2.properties`` into ``home``; return the former.
    ``sasl``: the client listener is SASL_PLAINTEXT (SCRAM-SHA-512) with ACLs (``admin_password``)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "log4j2.properties").write_text(_LOG4J2)
    props = home / "server.properties"
    text = _SERVER.format(port=port, controller_port=controller_port, data=_escape(home / "data"),
                          protocol="SASL_PLAINTEXT" if sasl else "PLAINTEXT")
    if sasl:
        text += _SASL.format(jaas=jaas(ADMIN_USER, admin_password(home)), admin=ADMIN_USER)
    _write_private(props, text)  # it holds the admin's password in --sasl mode
    return props


def jaas(user: str, password: str) -> str:
    """A Java client's (or the broker's own) sasl.jaas.config line for a SCRAM login."""
    return (f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" '
            f'password="{password}";')


def admin_password(home: Path) -> str:
    """The local admin user's password, made once per state dir and kept in ``admin.properties``
    (mode 0600), a client config Kafka's own tools take as it is (``kafka-acls --command-config``)."""
    path = home / "admin.properties"
    try:
        match = re.search(r'password="([^"]*)"', path.read_text())
    except OSError:
        match = None
    if match:
        return match.group(1)
    password = secrets.token_urlsafe(18)  # url-safe: no quote or backslash to escape in a .properties
    _write_private(path, f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism={SCRAM}\n"
                         f"sasl.jaas.config={jaas(ADMIN_USER, password)}\n")
    return password


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def previous_port(home: Path) -> int | None:
    """The client listener's port of the last start, so a restart keeps the same bootstrap when it can."""
    try:
        match = re.search(
            r"^listeners=\w+://[^:]+:(\d+)", (home / "server.properties").read_text(), re.M
        )
    except OSError:
        return None
    return int(match.group(1)) if match else None


def is_formatted(home: Path) -> bool:
    return (home / "data" / "meta.properties").exists()


def java_command(java: str, libs: Path, home: Path, main: str, *args: str) -> list[str]:
    """``java <opts> -cp '<libs>/*' <main> <args>``: the JVM expands the wildcard, no shell involved."""
    log4j = f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}"
    return [java, *JVM_OPTS, log4j, "-cp", str(libs / "*"), main, *args]


def new_cluster_id() -> str:
    """Same shape as Kafka's ``Uuid.randomUuid()``: url-safe base64, no padding, not starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def format_storage(java: str, libs: Path, home: Path, log_path: Path, timeout: float = 120.0) -> int:
    """Run ``kafka.tools.StorageTool format`` once (output appended to the log); return its exit code."""
    cmd = java_command(
        java, libs, home, "kafka.tools.StorageTool",
        "format", "--config", str(home / "server.properties"),
        "--cluster-id", new_cluster_id(), "--ignore-formatted",
        # The admin user exists from the first start, so the broker can later start with --sasl.
        "--add-scram", f"{SCRAM}=[name={ADMIN_USER},password={admin_password(home)}]",
    )  # fmt: skip
    with open(log_path, "ab") as log:
        return subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
        ).returncode
