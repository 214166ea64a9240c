"""Where the embedded broker keeps its jars (cache) and its state, and the one version constant.

>>> from streamframe.local.paths import libs_dir
>>> libs_dir().name
'libs'
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

#: The Apache Kafka release the local broker runs; the only place the version is written.
KAFKA_VERSION = "4.3.1"


def cache_root() -> Path:
    """``$STREAMFRAME_CACHE``, else ``${XDG_CACHE_HOME:-~/.cache}/streamframe``."""
    if os.environ.get("STREAMFRAME_CACHE"):
        return Path(os.environ["STREAMFRAME_CACHE"]).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser().absolute() / "streamframe"


def kafka_cache_dir() -> Path:
    """Versioned so that a version bump fetches fresh jars instead of mixing two releases."""
    return cache_root() / f"kafka-{KAFKA_VERSION}"


def libs_dir() -> Path:
    """The directory of the Kafka runtime jars (the JVM classpath is ``libs/*``)."""
    return kafka_cache_dir() / "libs"


def state_dir() -> Path:
    """``${STREAMFRAME_HOME:-${XDG_STATE_HOME:-~/.local/state}/streamframe}/kafka``."""
    home = os.environ.get("STREAMFRAME_HOME")
    if not home:
        xdg = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
        home = str(Path(xdg) / "streamframe")
    # Absolute: the JVM runs with the state dir as cwd, and status() matches the path in its cmdline.
    return Path(home).expanduser().absolute() / "kafka"


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock, so two processes never fetch or start the same thing at once."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
