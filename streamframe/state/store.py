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

import numpy as np
import pandas as pd


class TableStore:
    def __init__(self, name: str, index_names: list[str]):
        self.name = name
        self.index_names = list(index_names)
        self.frame = pd.DataFrame()
        self.meta: dict = {}  # small operator state saved with the rows (e.g. stream time per task)
        self._log: list[tuple[pd.Index, bool]] = []  # (keys, deleted) per write, oldest first

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
        self._record(rows.index, False)

    def delete(self, index) -> None:
        index = pd.Index(index) if not isinstance(index, pd.Index) else index
        if self.frame.empty or not len(index):
            return
        present = self.frame.index.isin(index)
        if present.any():
            self._record(self.frame.index[present], True)
            self.frame = self.frame[~present]

    def mark(self, where: np.ndarray, column: str, value) -> None:
        """Set `column` to `value` in the rows where the boolean array `where` holds (a change, like
        an upsert of those rows)."""
        self.frame[column] = np.where(where, value, self.frame[column].to_numpy())
        self._record(self.frame.index[where], False)

    def _record(self, keys: pd.Index, deleted: bool) -> None:
        """Remember a write as whole index arrays (no per-key Python); folded when the log grows, so
        it stays as large as the keys written since the last checkpoint, however many batches."""
        self._log.append((keys, deleted))
        if len(self._log) > 32:
            self._log = self._fold()

    @staticmethod
    def _joined(parts: list[pd.Index]) -> pd.Index:
        """The logged keys of several writes as one sequence (a subclass may log other arrays)."""
        return parts[0].append(parts[1:]) if len(parts) > 1 else parts[0]

    def _fold(self) -> list[tuple[pd.Index, bool]]:
        """The log reduced to each key's last write: [(upserted keys, False), (deleted keys, True)]."""
        keys = self._joined([k for k, _ in self._log])
        flags = np.concatenate([np.full(len(k), d) for k, d in self._log])
        last = ~pd.Index(keys).duplicated(keep="last")
        keys, flags = keys[last], flags[last]
        return [(keys[~flags], False), (keys[flags], True)]

    @property
    def changed(self) -> bool:
        """Written since the last take_changes()."""
        return bool(self._log)

    def take_changes(self) -> tuple[pd.DataFrame, list]:
        """(rows upserted, keys deleted) since the last call; clears the record of changes."""
        if not self._log:
            return self.frame.iloc[:0], []
        (changed, _), (deleted, _) = self._fold()
        self._log = []
        rows = self.frame.loc[changed] if len(changed) else self.frame.iloc[:0]
        return rows, list(deleted)

    def load(self, frame: pd.DataFrame) -> None:
        """Replace the contents (restore), with no pending changes."""
        self.frame = frame
        self._log = []
