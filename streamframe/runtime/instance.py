"""A query process's stable instance id, for its exactly-once `transactional.id`.

Kept in the state directory (`{state_dir}/{app_id}/{query}.instance-N`), so a restarted process takes
the id of the one it replaces and its producer fences that one's unfinished transaction. Two processes
sharing a state directory (a scale-out on one machine) take different files: each holds an exclusive
lock on its own for as long as it runs.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from pathlib import Path

from streamframe.state.durable import disk_full


class Instance:
    """The id this process holds for one query; `release()` (or the process ending) frees it."""

    def __init__(self, directory: Path, query: str):
        try:
            self._take(directory, query)
        except OSError as e:  # a full disk: one line naming the directory
            full = disk_full(directory / f"{query}.instance", e)
            if full is None:
                raise
            raise full from e

    def _take(self, directory: Path, query: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        n = 0
        while True:
            path = directory / f"{query}.instance-{n}"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another process of this query holds it
                os.close(fd)
                n += 1
                continue
            break
        saved = os.pread(fd, 64, 0).decode().strip()
        if not saved:
            saved = uuid.uuid4().hex[:12]
            try:
                os.pwrite(fd, saved.encode(), 0)
                os.fsync(fd)
            except OSError:
                os.close(fd)
                raise
        self._fd = fd
        self.id = saved

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None
