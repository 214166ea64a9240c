"""Durable state: a SQLite file per query (rows, operator metadata and input offsets committed in one
transaction) and a compacted changelog topic per store to rebuild from when the file is lost.

Checkpoint order (the runtime's): changed rows and a checkpoint marker go to the changelog topics,
outputs and changelog are flushed, then one SQLite transaction saves rows, metadata and the input
offsets they cover, then the consumer group commits. A restart resumes from the SQLite offsets, so no
record is counted twice; without the file, state is rebuilt from each changelog up to its last
complete checkpoint marker.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import pickle
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionDtype

from streamframe.errors import StateError
from streamframe.state.store import TableStore

try:  # how to_dict("records") turns an object or extension column's values into Python ones
    from pandas.core.dtypes.cast import maybe_box_native as _box
except ImportError:  # a pandas without it: records() is to_dict
    _box = None

log = logging.getLogger("streamframe.state")
MARKER = b"__checkpoint__"


def default_state_dir() -> Path:
    home = os.environ.get("STREAMFRAME_HOME") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "streamframe")
    return Path(home) / "state"


def disk_full(path: Path, error: BaseException) -> StateError | None:
    """The StateError naming `path`'s directory when `error` (SQLite's or the OS's) says the disk is
    full, else None."""
    if isinstance(error, sqlite3.Error):
        code = getattr(sqlite3, "SQLITE_FULL", 13)
        full = getattr(error, "sqlite_errorcode", None) == code or "disk is full" in str(error)
        reason = str(error)
    else:
        full = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
        reason = os.strerror(error.errno) if full else ""
    if not full:
        return None
    path = Path(path)
    return StateError(f"state directory {path.parent} is full ({reason}) writing {path.name}; free space "
                      "there (or give the query another state_dir=) and start it again")


def _writes(method):
    """A method of SqliteState that writes its file: a full disk raises StateError naming the directory."""
    @functools.wraps(method)
    def write(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, OSError) as e:
            full = disk_full(self.path, e)
            if full is None:
                raise
            raise full from e
    return write


def frame_from_rows(store: TableStore, keys: list, values: list) -> pd.DataFrame:
    if not keys:
        return pd.DataFrame()
    names = store.index_names
    index = pd.MultiIndex.from_tuples(keys, names=names) if len(names) > 1 else pd.Index(keys, name=names[0])
    return pd.DataFrame.from_records(values, index=index)


def _key(k):
    return k if isinstance(k, tuple) else (k,)


def _unkey(store: TableStore, k: tuple):
    return k if len(store.index_names) > 1 else k[0]


class SqliteState:
    """One SQLite file holding every store of a query, its operators' metadata and its offsets."""

    @_writes
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS state (store TEXT, key BLOB, value BLOB, PRIMARY KEY (store, key));
            CREATE TABLE IF NOT EXISTS meta (store TEXT PRIMARY KEY, value BLOB);
            CREATE TABLE IF NOT EXISTS offsets (topic TEXT, partition INTEGER, next INTEGER,
                                                PRIMARY KEY (topic, partition));
        """)

    @classmethod
    def open(cls, path: Path) -> SqliteState | None:
        """The file's state, or None when it is missing or unreadable (then the changelog rebuilds it)."""
        try:
            state = cls(path)
            state.db.execute("SELECT count(*) FROM state").fetchone()
            state.db.execute("PRAGMA quick_check").fetchone()
            return state
        except sqlite3.DatabaseError as e:
            if disk_full(path, e) is not None:  # a full disk, not a bad file: keep the file
                raise disk_full(path, e) from e
            log.warning("state file %s cannot be read (%s); rebuilding from the changelog", path, e)
            bad = Path(path)
            for suffix in ("", "-wal", "-shm"):
                p = bad.with_name(bad.name + suffix)
                if p.exists():
                    p.rename(p.with_name(p.name + ".corrupt"))
            return None

    def is_empty(self) -> bool:
        return self.db.execute("SELECT count(*) FROM offsets").fetchone()[0] == 0

    @_writes
    def clear(self) -> None:
        """Empty the file (state it cannot vouch for; the changelog rebuilds it)."""
        self.db.executescript("BEGIN; DELETE FROM state; DELETE FROM meta; DELETE FROM offsets; COMMIT;")

    def load(self, store: TableStore) -> None:
        rows = self.db.execute("SELECT key, value FROM state WHERE store = ?", (store.name,)).fetchall()
        keys = [_unkey(store, pickle.loads(k)) for k, _ in rows]
        store.load(frame_from_rows(store, keys, [pickle.loads(v) for _, v in rows]))
        meta = self.db.execute("SELECT value FROM meta WHERE store = ?", (store.name,)).fetchone()
        store.meta = pickle.loads(meta[0]) if meta else {}

    @_writes
    def replace(self, store: TableStore) -> None:
        """The store's rows and metadata, whole, in place of what the file held for it (after a rebuild
        from the changelog; the offsets come with the next checkpoint, so until then the file counts
        as empty and a crash rebuilds again)."""
        change = Changes.of(store.frame, [])
        cur = self.db.cursor()
        cur.execute("BEGIN")
        try:
            cur.execute("DELETE FROM state WHERE store = ?", (store.name,))
            cur.executemany("INSERT INTO state (store, key, value) VALUES (?, ?, ?)",
                            [(store.name, k, v) for k, v in change.upserted])
            cur.execute("INSERT OR REPLACE INTO meta (store, value) VALUES (?, ?)",
                        (store.name, pickle.dumps(store.meta)))
            cur.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def offsets(self) -> dict[tuple[str, int], int]:
        return {(t, p): n for t, p, n in self.db.execute("SELECT topic, partition, next FROM offsets")}

    @_writes
    def save(self, changes: list[tuple[TableStore, Changes]], offsets: dict) -> None:
        """Rows, deletes, metadata and offsets, all or nothing."""
        cur = self.db.cursor()
        cur.execute("BEGIN")
        try:
            for store, change in changes:
                cur.executemany("DELETE FROM state WHERE store = ? AND key = ?",
                                [(store.name, k) for k in change.deleted])
                cur.executemany("INSERT OR REPLACE INTO state (store, key, value) VALUES (?, ?, ?)",
                                [(store.name, k, v) for k, v in change.upserted])
                cur.execute("INSERT OR REPLACE INTO meta (store, value) VALUES (?, ?)",
                            (store.name, pickle.dumps(store.meta)))
            cur.executemany("INSERT OR REPLACE INTO offsets (topic, partition, next) VALUES (?, ?, ?)",
                            [(t, p, n) for (t, p), n in offsets.items()])
            cur.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        """Undo a failed transaction, unless SQLite already has (it may on a full disk; a ROLLBACK then
        raises "no transaction is active" in place of the error that matters)."""
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def close(self) -> None:
        self.db.close()


@dataclass
class Changes:
    """A store's changes since the last checkpoint, encoded once for both the changelog and SQLite:
    pickled keys deleted, and (pickled key, pickled row) pairs upserted."""

    deleted: list[bytes]
    upserted: list[tuple[bytes, bytes]]

    @classmethod
    def of(cls, rows: pd.DataFrame, deleted: list) -> Changes:
        return cls([pickle.dumps(_key(k)) for k in deleted],
                   [(pickle.dumps(_key(k)), pickle.dumps(v)) for k, v in zip(rows.index, records(rows))])


def records(rows: pd.DataFrame) -> list[dict]:
    """`rows.to_dict("records")`, the same values in the same dicts, built a column at a time: NumPy
    numbers and strings by `tolist()`, every other column as pandas builds it (its iteration, then its
    boxing of object and extension values), instead of a tuple per row, which is slower."""
    names = rows.columns.tolist()
    if _box is None or not rows.columns.is_unique or not names:
        return rows.to_dict("records")
    columns = []
    for i in range(len(names)):
        col = rows.iloc[:, i]
        if isinstance(col.dtype, np.dtype) and col.dtype.kind in "iufb":
            columns.append(col.to_numpy().tolist())
        elif isinstance(col.dtype, pd.StringDtype):  # tolist() yields what iterating it does, quicker
            columns.append(list(map(_box, col.tolist())) if col.hasnans else col.tolist())
        elif col.dtype == object or isinstance(col.dtype, ExtensionDtype):
            columns.append(list(map(_box, col)))
        else:
            columns.append(list(col))
    return [dict(zip(names, values)) for values in zip(*columns)]


def changelog_records(store: TableStore, changes: Changes, offsets: dict):
    """(key, value) records for a store's changelog: rows, tombstones, then a checkpoint marker."""
    out = [(k, None) for k in changes.deleted] + changes.upserted
    out.append((MARKER, pickle.dumps({"offsets": offsets, "meta": store.meta})))
    return out


def replay_changelog(store: TableStore, records) -> dict:
    """Rebuild `store` from its changelog records (in order), up to the last complete checkpoint;
    returns the offsets that checkpoint covers."""
    state: dict = {}
    pending: dict = {}
    offsets: dict = {}
    for key, value in records:
        if key == MARKER:
            state.update(pending)
            pending = {}
            marker = pickle.loads(value)
            offsets, store.meta = marker["offsets"], marker["meta"]
            continue
        pending[pickle.loads(key)] = None if value is None else pickle.loads(value)
    live = {k: v for k, v in state.items() if v is not None}
    meta = store.meta
    store.load(frame_from_rows(store, [_unkey(store, k) for k in live], list(live.values())))
    store.meta = meta
    return offsets
