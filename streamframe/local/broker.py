"""Start, inspect and stop the single-node Apache Kafka broker behind ``streamframe local``.

>>> from streamframe import local
>>> broker = local.start()        # returns once the broker answers metadata requests
>>> broker.bootstrap
'127.0.0.1:40123'
>>> local.stop()
True
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from streamframe.errors import BrokerError
from streamframe.local.config import (
    ADMIN_USER,
    SCRAM,
    admin_password,
    format_storage,
    is_formatted,
    java_command,
    previous_port,
    write_server_properties,
)
from streamframe.local.maven import ensure_jars
from streamframe.local.paths import KAFKA_VERSION, locked, state_dir
from streamframe.local.proc import CHILDREN, alive, free_port, is_our_broker, port_free, port_open, terminate

TAIL_LINES = 30

# librdkafka would print every refused connection of the readiness probe to stderr.
_PROBE_LOG = logging.getLogger("streamframe.local.probe")
_PROBE_LOG.addHandler(logging.NullHandler())
_PROBE_LOG.propagate = False


@dataclass(frozen=True)
class Broker:
    """A running local broker. ``home`` is its state dir (config, data, broker.log, broker.json).
    ``sasl``: its listener asks for SCRAM-SHA-512 and checks ACLs (``admin_config()`` logs in)."""

    bootstrap: str
    pid: int
    port: int
    home: Path
    log_path: Path
    started_at: str = ""
    sasl: bool = False


def status() -> Broker | None:
    """The running local broker, or None (a broker.json left by a dead broker is removed).

    >>> status() is None or status().bootstrap.startswith("127.0.0.1:")
    True
    """
    home = state_dir()
    try:
        info = json.loads((home / "broker.json").read_text())
        pid, port = int(info["pid"]), int(info["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not is_our_broker(pid, home):
        (home / "broker.json").unlink(missing_ok=True)
        return None
    return Broker(f"127.0.0.1:{port}", pid, port, home, home / "broker.log", str(info.get("started_at", "")),
                  bool(info.get("sasl", False)))


def admin_config(home: Path | None = None) -> dict:
    """librdkafka settings that log in to the local broker as its admin (a super user) in ``--sasl``
    mode; empty for a PLAINTEXT broker. Pass them to ``sf.connect(config=...)``.

    >>> sorted(admin_config())  # doctest: +SKIP
    ['sasl.mechanism', 'sasl.password', 'sasl.username', 'security.protocol']
    """
    broker = status() if home is None else None
    if home is None and (broker is None or not broker.sasl):
        return {}
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": SCRAM, "sasl.username": ADMIN_USER,
            "sasl.password": admin_password(home or broker.home)}


def start(port: int | None = None, timeout: float = 60.0, sasl: bool | None = None) -> Broker:
    """Start the broker (or reuse the running one) and return once it answers metadata requests.

    ``port=None`` reuses the previous port when free, else any free one. ``sasl=True``: the listener is
    SASL_PLAINTEXT (SCRAM-SHA-512) with ACLs, users and ACLs made with ``local.add_user``/``local.allow``;
    ``None`` reuses a running broker of either kind, else starts a PLAINTEXT one. Raises BrokerError with
    the cause and the tail of broker.log if the broker exits or does not answer within ``timeout``.

    >>> start().bootstrap
    '127.0.0.1:40123'
    """
    home = state_dir()
    with locked(home / ".lock"):
        running = status()
        if running is not None:
            if port is not None and port != running.port:
                raise BrokerError(
                    f"a local broker is already running on {running.bootstrap}; "
                    f"stop it first to use port {port}"
                )
            if sasl is not None and sasl != running.sasl:
                kind, wanted = ("with", "without") if running.sasl else ("without", "with")
                raise BrokerError(f"a local broker is already running {kind} SASL on {running.bootstrap}; "
                                  f"stop it first (`streamframe local stop`) to start one {wanted}")
            _wait_ready(running, timeout)
            return running
        if sasl and is_formatted(home) and not (home / "admin.properties").exists():
            raise BrokerError(f"the local broker's storage in {home / 'data'} was made without an admin "
                              "user (before --sasl existed); remove that directory to start afresh")
        libs, java = ensure_jars(), _java()
        port = _choose_port(home, port)
        props = write_server_properties(home, port, free_port(avoid=port), sasl=bool(sasl))
        log_path = home / "broker.log"
        if log_path.exists():  # keep the previous run's log for post-mortems
            log_path.replace(home / "broker.log.1")
        if not is_formatted(home):
            rc = format_storage(java, libs, home, log_path)
            if rc != 0:
                cause = f"formatting the Kafka storage in {home / 'data'} failed (exit {rc})"
                raise BrokerError(_with_tail(cause, log_path))
        with open(log_path, "ab") as log:
            # Own session: the broker outlives the Python process (and its Ctrl-C) that started it.
            proc = subprocess.Popen(
                java_command(java, libs, home, "kafka.Kafka", str(props)),
                cwd=home, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        CHILDREN[proc.pid] = proc
        started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        broker = Broker(f"127.0.0.1:{port}", proc.pid, port, home, log_path, started_at, bool(sasl))
        _write_state(broker)
        try:
            _wait_ready(broker, timeout)
        except BaseException:
            terminate(broker.pid, 10.0)
            (home / "broker.json").unlink(missing_ok=True)
            raise
        return broker


def stop(timeout: float = 30.0) -> bool:
    """Stop the local broker (SIGTERM, then SIGKILL after ``timeout`` s); True if one was running.

    A local Kafka Connect worker (``start_connect``) is stopped first, whether or not a broker runs.

    >>> stop()
    True
    """
    from streamframe.local import connect  # late: connect imports this module

    home = state_dir()
    with locked(home / ".lock"):
        connect.stop(timeout)  # a Kafka Connect worker goes first: it needs the broker to shut down cleanly
        broker = status()
        if broker is None:
            return False
        terminate(broker.pid, timeout)
        (home / "broker.json").unlink(missing_ok=True)
        return True


def logs(lines: int = 50) -> str:
    """The last ``lines`` lines of broker.log ('' if there is none yet).

    >>> print(logs(5))  # doctest: +SKIP
    """
    return _tail(state_dir() / "broker.log", lines)


def _tail(log_path: Path, lines: int) -> str:
    try:
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            return "".join(deque(fh, maxlen=max(lines, 0)))
    except OSError:
        return ""


def _with_tail(cause: str, log_path: Path) -> str:
    tail = _tail(log_path, TAIL_LINES).rstrip() or "(empty)"
    first = _first_error(log_path)
    first = f"\nfirst error logged: {first}" if first else ""
    return f"{cause}{first}\n--- last {TAIL_LINES} lines of {log_path} ---\n{tail}"


def _first_error(log_path: Path) -> str:
    """The first ERROR line and its exception line: a failed start logs hundreds of shutdown lines
    after it."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            lines = iter(fh)
            for line in lines:
                if "] ERROR " in line or "] FATAL " in line:
                    exception = next(lines, "")
                    found = line.split("] ", 1)[1].strip()
                    return found if exception.startswith("[") else f"{found} | {exception.strip()}"
    except OSError:
        pass
    return ""


def _wait_ready(broker: Broker, timeout: float) -> None:
    """Poll until the broker lists itself in a metadata response; raise BrokerError on exit or timeout."""
    from streamframe.kafka.connection import lists_brokers  # imported late: only start() needs it

    deadline, last = time.monotonic() + timeout, "no answer yet"
    while True:
        if not alive(broker.pid):
            child = CHILDREN.pop(broker.pid, None)
            code = f" with code {child.returncode}" if child is not None else ""
            cause = f"the Kafka broker (pid {broker.pid}) exited{code} during startup"
            raise BrokerError(_with_tail(cause, broker.log_path))
        if port_open(broker.port):  # cheap check first; the JVM takes seconds to open its port
            try:
                if lists_brokers(broker.bootstrap, 2.0, _PROBE_LOG,
                                 admin_config(broker.home) if broker.sasl else None):
                    return
            except Exception as exc:  # KafkaException while the broker finishes starting
                last = str(exc)
        if time.monotonic() > deadline:
            cause = (f"the Kafka broker did not answer metadata requests on {broker.bootstrap} "
                     f"within {timeout:g} s")
            raise BrokerError(_with_tail(f"{cause} ({last})", broker.log_path))
        time.sleep(0.25)


def _write_state(broker: Broker) -> None:
    state = {"pid": broker.pid, "port": broker.port, "bootstrap": broker.bootstrap,
             "started_at": broker.started_at, "kafka_version": KAFKA_VERSION,
             "sasl": broker.sasl}  # fmt: skip
    tmp = broker.home / "broker.json.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(broker.home / "broker.json")  # atomic: status() never reads half a file


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise BrokerError(f"Java 17+ is not on PATH (nor in JAVA_HOME); Kafka {KAFKA_VERSION} needs it")
    return java


def _choose_port(home: Path, port: int | None) -> int:
    if port is not None:
        if not port_free(port):
            raise BrokerError(f"port {port} on 127.0.0.1 is already in use; choose another port or omit it")
        return port
    previous = previous_port(home)
    return previous if previous and port_free(previous) else free_port()
