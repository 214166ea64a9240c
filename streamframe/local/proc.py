"""Process and port helpers for the local broker: liveness that sees through zombies and pid reuse.

>>> from streamframe.local.proc import free_port, port_free
>>> port_free(free_port())
True
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from streamframe.errors import BrokerError

# Brokers started by this process: kept so stop() can reap them, otherwise the exited JVM
# lingers as a zombie (and still "exists" for kill(pid, 0)) for as long as we live.
CHILDREN: dict[int, subprocess.Popen] = {}


def terminate(pid: int, timeout: float) -> None:
    """SIGTERM (Kafka shuts down cleanly), then SIGKILL if it is still there after ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                CHILDREN.pop(pid, None)
                return
            time.sleep(0.1)
    raise BrokerError(f"the Kafka broker (pid {pid}) did not exit after SIGKILL")


def alive(pid: int) -> bool:
    child = CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None  # poll() also reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) still passes kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_our_jvm(pid: int, main_class: str, config: Path) -> bool:
    """Alive, and really the JVM `main_class` started with `config`: guards against a recycled pid."""
    if not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:  # no /proc (macOS): ask ps
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
        cmdline = out.stdout.split()
    return main_class in cmdline and str(config) in cmdline


def is_our_broker(pid: int, home: Path) -> bool:
    """The broker JVM started for this state dir."""
    return is_our_jvm(pid, "kafka.Kafka", home / "server.properties")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # Like the JVM: SO_REUSEADDR, so TIME_WAIT leftovers of a previous run do not count as busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(avoid: int = 0) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != avoid:
            return port


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
