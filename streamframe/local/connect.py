"""Start, inspect and stop the local Kafka Connect worker behind ``streamframe local start --connect``.

One worker in *distributed* mode (its connectors and offsets live in Kafka topics, driven through
the REST API, as in production) against the local broker, with the FileStream connectors on its
classpath. It runs from jars fetched once with Maven, detached, with its state beside the broker's.

>>> from streamframe import local
>>> worker = local.start_connect()    # starts (or reuses) the broker too; returns once the REST API answers
>>> worker.url
'http://127.0.0.1:40321'
>>> local.connect_status() == worker
True
>>> local.stop_connect()             # local.stop() also stops it, before the broker
True

State: ``connect.properties``, ``connect.json`` (pid, port, url, bootstrap) and ``connect.log`` in the
broker's state dir (``$STREAMFRAME_HOME/kafka``). Jars: ``<cache>/kafka-<version>/connect-libs``.
Nothing here prints; failures raise ConnectWorkerError with the cause and the tail of connect.log.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from streamframe.errors import ConnectWorkerError
from streamframe.local import broker as _broker
from streamframe.local.maven import ensure_connect_jars
from streamframe.local.paths import KAFKA_VERSION, locked, state_dir
from streamframe.local.proc import CHILDREN, alive, free_port, is_our_jvm, port_free, port_open, terminate

MAIN_CLASS = "org.apache.kafka.connect.cli.ConnectDistributed"
GROUP_ID = "streamframe-connect"
#: The plugin the readiness probe expects in ``GET /connector-plugins`` (connect-file is on the classpath).
PROBE_PLUGIN = "org.apache.kafka.connect.file.FileStreamSourceConnector"
# Modest: the worker shares a small machine with the broker and the kernel.
TAIL_LINES = 30
JVM_OPTS = ["-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]

# Replication factors and partitions of 1: one broker. StringConverter both ways, so a line of a
# file (FileStream) is a record value verbatim and a JSON record comes back as the same JSON line;
# a connector can still set its own key.converter / value.converter. Offsets flush every second and
# a restarted worker gets its tasks back at once (no 5-minute scheduled-rebalance delay): a dev box.
_PROPERTIES = """\
# Written by streamframe.local at every start of the Kafka Connect worker; edits are overwritten.
bootstrap.servers={bootstrap}
group.id={group_id}
config.storage.topic={group_id}-configs
offset.storage.topic={group_id}-offsets
status.storage.topic={group_id}-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=1
status.storage.partitions=1
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.storage.StringConverter
listeners=http://127.0.0.1:{port}
rest.advertised.host.name=127.0.0.1
rest.advertised.port={port}
offset.flush.interval.ms=1000
scheduled.rebalance.max.delay.ms=0
"""

_LOG4J2 = """\
status = warn
name = streamframe-local-connect
shutdownHook = disable
appender.out.type = Console
appender.out.name = out
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
# The "XConfig values:" dumps (one per client of every task) would drown the useful lines.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
# Plugin discovery lists every alias of every converter and transform: ~150 lines per start.
logger.plugins.name = org.apache.kafka.connect.runtime.isolation
logger.plugins.level = WARN
"""


@dataclass(frozen=True)
class ConnectWorker:
    """A running local Connect worker: ``url`` is its REST API, ``bootstrap`` the cluster it works on."""

    url: str
    pid: int
    port: int
    bootstrap: str
    home: Path
    log_path: Path
    started_at: str = ""


def status() -> ConnectWorker | None:
    """The running local Connect worker, or None (a connect.json left by a dead worker is removed).

    >>> status() is None or status().url.startswith("http://127.0.0.1:")
    True
    """
    home = state_dir()
    try:
        info = json.loads((home / "connect.json").read_text())
        pid, port, bootstrap = int(info["pid"]), int(info["port"]), str(info["bootstrap"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not is_our_worker(pid, home):
        (home / "connect.json").unlink(missing_ok=True)
        return None
    url = f"http://127.0.0.1:{port}"
    return ConnectWorker(url, pid, port, bootstrap, home, home / "connect.log",
                         str(info.get("started_at", "")))


def start(
    port: int | None = None,
    timeout: float = 90.0,
    bootstrap: str | None = None,
    plugin_path: list[str | Path] | None = None,
) -> ConnectWorker:
    """Start the Connect worker (or reuse the running one); return once its REST API lists the plugins.

    ``bootstrap=None`` works against the local broker, started first if needed (``local.start()``).
    ``port=None`` reuses the previous REST port when free, else any free one. ``plugin_path`` adds
    directories of connector plugins (Connect's ``plugin.path``); the FileStream connectors are always
    there. A worker left pointing at another bootstrap (the broker restarted elsewhere) is replaced.
    Raises ConnectWorkerError with the cause and the tail of connect.log if the worker exits or does
    not answer within ``timeout``.
    """
    if bootstrap is None:
        bootstrap = _broker.start().bootstrap
    else:
        _check_reachable(bootstrap)  # else the worker would wait for it silently until the timeout
    home = state_dir()
    # Lock order is always .lock (broker) then .connect.lock: broker.stop() stops the worker first.
    with locked(home / ".connect.lock"):
        running = status()
        if running is not None:
            if running.bootstrap == bootstrap and port in (None, running.port):
                _wait_ready(running, timeout)
                return running
            if running.bootstrap == bootstrap:
                raise ConnectWorkerError(
                    f"a Kafka Connect worker is already running at {running.url}; "
                    f"stop it first to use port {port}"
                )
            terminate(running.pid, 30.0)  # it works on a cluster that is gone
            (home / "connect.json").unlink(missing_ok=True)
        libs, java = ensure_connect_jars(), _broker._java()
        port = _choose_port(home, port)
        props = write_connect_properties(home, bootstrap, port, plugin_path)
        log_path = home / "connect.log"
        if log_path.exists():  # keep the previous run's log for post-mortems
            log_path.replace(home / "connect.log.1")
        with open(log_path, "ab") as log:
            # Own session: the worker outlives the Python process (and its Ctrl-C) that started it.
            proc = subprocess.Popen(
                java_command(java, libs, home, props),
                cwd=home, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        CHILDREN[proc.pid] = proc
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        worker = ConnectWorker(
            f"http://127.0.0.1:{port}", proc.pid, port, bootstrap, home, log_path, started_at
        )
        _write_state(worker)
        try:
            _wait_ready(worker, timeout)
        except BaseException:
            terminate(worker.pid, 10.0)
            (home / "connect.json").unlink(missing_ok=True)
            raise
        return worker


def stop(timeout: float = 30.0) -> bool:
    """Stop the local Connect worker (SIGTERM: it leaves its group and flushes offsets; SIGKILL after
    ``timeout`` s). True if one was running.
    """
    home = state_dir()
    with locked(home / ".connect.lock"):
        worker = status()
        if worker is None:
            return False
        terminate(worker.pid, timeout)
        (home / "connect.json").unlink(missing_ok=True)
        return True


def logs(lines: int = 50) -> str:
    """The last ``lines`` lines of connect.log ('' if there is none yet)."""
    return _broker._tail(state_dir() / "connect.log", lines)


def write_connect_properties(
    home: Path, bootstrap: str, port: int, plugin_path: list[str | Path] | None = None
) -> Path:
    """Write ``connect.properties`` and ``connect-log4j2.properties`` into ``home``; return the former."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "connect-log4j2.properties").write_text(_LOG4J2)
    text = _PROPERTIES.format(bootstrap=bootstrap, group_id=GROUP_ID, port=port)
    if plugin_path:
        dirs = ",".join(str(Path(p).expanduser().absolute()).replace("\\", "\\\\") for p in plugin_path)
        text += f"plugin.path={dirs}\n"
    else:  # connect-file has ServiceLoader manifests: no classpath scan, and no warning asking for this
        text += "plugin.discovery=service_load\n"
    props = home / "connect.properties"
    props.write_text(text)
    return props


def java_command(java: str, libs: Path, home: Path, props: Path) -> list[str]:
    """``java <opts> -cp '<connect-libs>/*' ConnectDistributed connect.properties`` (no shell involved)."""
    log4j = f"-Dlog4j2.configurationFile={home / 'connect-log4j2.properties'}"
    return [java, *JVM_OPTS, log4j, "-cp", str(libs / "*"), MAIN_CLASS, str(props)]


def is_our_worker(pid: int, home: Path) -> bool:
    """The Connect JVM started for this state dir."""
    return is_our_jvm(pid, MAIN_CLASS, home / "connect.properties")


def _get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _probe(worker: ConnectWorker) -> str | None:
    """None when the worker serves its REST API and has joined its group, else what is missing."""
    code, info = _get(worker.url + "/")
    if code != 200 or not isinstance(info, dict) or "version" not in info:
        return f"GET / answered {code}"
    code, plugins = _get(worker.url + "/connector-plugins")
    if code != 200 or not isinstance(plugins, list):
        return f"GET /connector-plugins answered {code}"
    if not any(isinstance(p, dict) and p.get("class") == PROBE_PLUGIN for p in plugins):
        return f"{PROBE_PLUGIN} is not among the worker's plugins"
    code, _ = _get(worker.url + "/connectors")  # 409 while the worker is still joining its group
    return None if code == 200 else f"GET /connectors answered {code}"


def _wait_ready(worker: ConnectWorker, timeout: float) -> None:
    """Poll the REST API until it is usable; raise ConnectWorkerError on exit or timeout."""
    deadline, last = time.monotonic() + timeout, "no answer yet"
    while True:
        if not alive(worker.pid):
            child = CHILDREN.pop(worker.pid, None)
            code = f" with code {child.returncode}" if child is not None else ""
            cause = f"the Kafka Connect worker (pid {worker.pid}) exited{code} during startup"
            raise ConnectWorkerError(_with_tail(cause, worker.log_path))
        if not port_open(worker.port):  # it opens only once it has reached the cluster
            last = f"its REST port is not open yet: is the Kafka cluster at {worker.bootstrap} answering?"
        else:
            try:
                missing = _probe(worker)
            except (OSError, ValueError) as exc:  # reset connections, half-started Jetty
                missing = str(exc)
            if missing is None:
                return
            last = missing
        if time.monotonic() > deadline:
            cause = (
                f"the Kafka Connect worker did not become ready at {worker.url} within {timeout:g} s ({last})"
            )
            raise ConnectWorkerError(_with_tail(cause, worker.log_path))
        time.sleep(0.25)


def _check_reachable(bootstrap: str) -> None:
    errors = []
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=3.0):
                return
        except (OSError, ValueError) as exc:
            errors.append(f"{address.strip()}: {getattr(exc, 'strerror', None) or exc}")
    raise ConnectWorkerError(
        f"no Kafka broker answers at {bootstrap} ({'; '.join(errors)}); the Connect worker needs a running "
        "cluster: start the local one (`streamframe local start`) or give the address of a running one"
    )


def _with_tail(cause: str, log_path: Path) -> str:
    """The cause, the first ERROR logged, then the log's last lines with runs of repeats folded:
    a worker that cannot reach its cluster logs the same line thousands of times."""
    first = _broker._first_error(log_path)
    first = f"\nfirst error logged: {first}" if first else ""
    folded: list[list] = []  # [line, message without its timestamp, repeats]
    for line in _broker._tail(log_path, 2000).splitlines():
        message = line.split("] ", 1)[-1]
        if folded and folded[-1][1] == message:
            folded[-1][2] += 1
        else:
            folded.append([line, message, 0])
    tail = "\n".join(f"{line}  (x{n + 1})" if n else line for line, _, n in folded[-TAIL_LINES:]) or "(empty)"
    return f"{cause}{first}\n--- last lines of {log_path} (repeats folded) ---\n{tail}"


def _write_state(worker: ConnectWorker) -> None:
    state = {"pid": worker.pid, "port": worker.port, "url": worker.url, "bootstrap": worker.bootstrap,
             "started_at": worker.started_at, "kafka_version": KAFKA_VERSION}  # fmt: skip
    tmp = worker.home / "connect.json.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(worker.home / "connect.json")  # atomic: status() never reads half a file


def _previous_port(home: Path) -> int | None:
    try:
        match = re.search(r"^listeners=http://[^:]+:(\d+)", (home / "connect.properties").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _choose_port(home: Path, port: int | None) -> int:
    if port is not None:
        if not port_free(port):
            raise ConnectWorkerError(
                f"port {port} on 127.0.0.1 is already in use; "
                "choose another port for Kafka Connect or omit it"
            )
        return port
    previous = _previous_port(home)
    return previous if previous and port_free(previous) else free_port()
