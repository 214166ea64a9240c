"""TableStore: an operator's state as a pandas DataFrame keyed by an index, with change tracking.

Key-value stores are keyed by the group keys, window stores by (keys..., window_start), session
stores by (keys..., session_start): one protocol. Operators read and write whole batches of rows; the
store remembers which keys changed since the last checkpoint, so a checkpoint writes only those (to
SQLite and to the changelog topic) and a restore replays them.

    >>> s = TableStore("counts", ["symbol"])
    >>> s.upsert(pd.DataFrame({"n": [1, 2]}, index=pd.Index(["a", "b"], name="symbol")))
    >>> s.get(pd.Index(["b", "z"]))["n"].tolist()
    [2.0, nan]
    >>> sorted(s.take_changes()[0].index)
    ['a', 'b']
"""

from __future__ import annotations

import pandas as pd


class TableStore:
    def __init__(self, name: str, index_names: list[str]):
        self.name = name
        self.index_names = list(index_names)
        self.frame = pd.DataFrame()
        self.meta: dict = {}  # small operator state saved with the rows (e.g. stream time per task)
        self._changed: set = set()
        self._deleted: set = set()

    def __len__(self) -> int:
        return len(self.frame)

    def get(self, index: pd.Index) -> pd.DataFrame:
        """Stored rows for `index`, aligned to it (NaN rows where a key is absent)."""
        if self.frame.empty:
            return pd.DataFrame(index=index)
        return self.frame.reindex(index)

    def upsert(self, rows: pd.DataFrame) -> None:
        if rows.empty:
            return
        if self.frame.empty:
            self.frame = rows.copy()
        else:
            keep = self.frame[~self.frame.index.isin(rows.index)]
            self.frame = pd.concat([keep, rows]) if len(keep) else rows.copy()
        self.frame.index.names = self.index_names if len(self.index_names) > 1 else self.index_names[:1]
        keys = set(rows.index)
        self._changed |= keys
        self._deleted -= keys

    def delete(self, index) -> None:
        index = pd.Index(index) if not isinstance(index, pd.Index) else index
        if self.frame.empty or not len(index):
            return
        present = self.frame.index.isin(index)
        if present.any():
            keys = set(self.frame.index[present])
            self.frame = self.frame[~present]
            self._deleted |= keys
            self._changed -= keys

    def take_changes(self) -> tuple[pd.DataFrame, list]:
        """(rows upserted, keys deleted) since the last call; clears the record of changes."""
        changed = [k for k in self._changed if k in self.frame.index] if self._changed else []
        rows = self.frame.loc[changed] if changed else self.frame.iloc[:0]
        deleted = list(self._deleted)
        self._changed, self._deleted = set(), set()
        return rows, deleted

    def load(self, frame: pd.DataFrame) -> None:
        """Replace the contents (restore), with no pending changes."""
        self.frame = frame
        self._changed, self._deleted = set(), set()
