"""The files a single-node KRaft broker needs in its state dir, and the JVM command lines.

>>> from pathlib import Path
>>> props = write_server_properties(Path("/tmp/sf-demo/kafka"), port=9092, controller_port=9093)
>>> "process.roles=broker,controller" in props.read_text()
True
"""

from __future__ import annotations

import base64
import re
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
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
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


def write_server_properties(home: Path, port: int, controller_port: int) -> Path:
    """Write ``server.properties`` and ``log4j2.properties`` into ``home``; return the former."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "log4j2.properties").write_text(_LOG4J2)
    props = home / "server.properties"
    props.write_text(_SERVER.format(port=port, controller_port=controller_port, data=_escape(home / "data")))
    return props


def previous_port(home: Path) -> int | None:
    """The PLAINTEXT port of the last start, so a restart keeps the same bootstrap when it can."""
    try:
        match = re.search(
            r"^listeners=PLAINTEXT://[^:]+:(\d+)", (home / "server.properties").read_text(), re.M
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
    )  # fmt: skip
    with open(log_path, "ab") as log:
        return subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
        ).returncode
