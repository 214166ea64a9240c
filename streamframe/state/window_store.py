"""WindowStore: a window store, (keys..., window_start) → row, held as NumPy columns under int64 codes.

Why: TableStore keeps rows in a DataFrame indexed by a MultiIndex, and a windowed aggregation pays for
a MultiIndex reindex, isin and concat on every batch — most of its time. Here each group key is
interned to a key id and each window start to a window id, and a row is addressed by one int64 code,
`window id << 32 | key id`: a batch looks its rows up with one hash of int64s, updates them in place
and appends the new ones. The `frame` every other reader expects (checkpoints, `current_rows`, lookups)
is built from the columns when asked for, and cached until the next write.

Same contents and order as TableStore: a sequence number per row, set by each upsert, orders `frame`
as TableStore's would be (an upserted row moves to the end), and a write whose columns or dtypes differ
from the stored ones is done with TableStore's own concat, so dtypes follow the same rules.

Bounded memory: `drop` removes rows; key and window ids that no row (and no pending change) uses are
reclaimed once their tables have grown to twice the ids in use.
"""

from __future__ import annotations

from itertools import repeat

import numpy as np
import pandas as pd
from pandas.api.extensions import take as _fill_take

from streamframe.state.store import TableStore

LOW = np.int64((1 << 32) - 1)


class WindowStore(TableStore):
    def __init__(self, name: str, index_names: list[str]):  # noqa: D107 - no TableStore.__init__: frame is derived
        self.name = name
        self.index_names = list(index_names)
        self.meta: dict = {}
        self._keys = _Interner(len(self.index_names) - 1)
        self._windows = _Interner(1)
        self._reset()

    def _reset(self) -> None:
        self._code = np.empty(0, dtype=np.int64)
        self._seq = np.empty(0, dtype=np.int64)
        self._next_seq = 0
        self._cols: dict = {}
        self._log: list[tuple[np.ndarray, bool]] = []
        self._changed()

    def _changed(self, codes: bool = True) -> None:
        self._frame = None
        if codes:
            self._lookup = None

    def __len__(self) -> int:
        return len(self._code)

    # --- ids and codes -------------------------------------------------------------------------
    def key_ids(self, columns: list, create: bool = True) -> np.ndarray:
        """The key id of each row of the group-key columns (new keys interned; -1 for a key not
        interned when `create` is false). Ids stay valid until the next call."""
        if create and self._keys.crowded():
            self._compact(self._keys, self._code & LOW, [c & LOW for c, _ in self._log], 0)
        return self._keys.ids(columns, create)

    def window_ids(self, starts: np.ndarray, create: bool = True) -> np.ndarray:
        """The window id of each window start (as key_ids)."""
        if create and self._windows.crowded():
            self._compact(self._windows, self._code >> 32, [c >> 32 for c, _ in self._log], 32)
        return self._windows.ids([pd.Series(np.asarray(starts, dtype=np.int64), copy=False)], create)

    def codes_for(self, index: pd.Index, create: bool = False) -> np.ndarray:
        """Codes of a (keys..., window_start) index; -1 where a key or window is unknown."""
        index = index if isinstance(index, pd.MultiIndex) else pd.MultiIndex.from_tuples(list(index))
        kid = self.key_ids([index.get_level_values(i) for i in range(index.nlevels - 1)], create)
        wid = self.window_ids(index.get_level_values(index.nlevels - 1).to_numpy(dtype=np.int64), create)
        return np.where((kid < 0) | (wid < 0), -1, (wid << 32) | kid)

    def rows_of(self, codes: np.ndarray) -> np.ndarray:
        """Row position of each code, -1 where there is none."""
        if not len(self._code):
            return np.full(len(codes), -1, dtype=np.intp)
        if self._lookup is None:
            self._lookup = pd.Index(self._code)
        return self._lookup.get_indexer(codes)

    # --- reading -------------------------------------------------------------------------------
    def column(self, name) -> np.ndarray:
        """A stored column in row order (not a copy: read only)."""
        return self._cols[name]

    @property
    def columns(self) -> list:
        """The stored columns' names."""
        return list(self._cols)

    def sequence(self) -> np.ndarray:
        """Each row's upsert sequence number: ascending is TableStore's row order."""
        return self._seq

    def take(self, rows: np.ndarray, index=None) -> pd.DataFrame:
        """Rows at positions `rows` (NaN rows at -1, as a reindex gives), on `index` (default 0..n-1)."""
        index = pd.RangeIndex(len(rows)) if index is None else index
        if not len(self._code):
            return pd.DataFrame(index=index)
        fill = bool(len(rows)) and rows.min() < 0
        return pd.DataFrame({c: _series(_fill_take(v, rows, allow_fill=True) if fill else v[rows], index)
                             for c, v in self._cols.items()}, index=index)

    @property
    def codes(self) -> np.ndarray:
        """Each row's code, in row order (read only)."""
        return self._code

    def index_columns(self, codes: np.ndarray) -> dict:
        """{index name: values} for `codes`."""
        kid, wid = codes & LOW, codes >> 32
        out = {name: self._keys.values(i).take(kid) for i, name in enumerate(self.index_names[:-1])}
        out[self.index_names[-1]] = self._windows.values(0).to_numpy(dtype=np.int64)[wid]
        return out

    def _index(self, codes: np.ndarray) -> pd.MultiIndex:
        kid, wid = codes & LOW, codes >> 32
        arrays = [self._keys.values(i).take(kid) for i in range(len(self.index_names) - 1)]
        arrays.append(self._windows.values(0).to_numpy(dtype=np.int64)[wid])
        return pd.MultiIndex.from_arrays(arrays, names=self.index_names)

    def _frame_at(self, rows: np.ndarray) -> pd.DataFrame:
        index = self._index(self._code[rows])
        return pd.DataFrame({c: _series(v[rows], index) for c, v in self._cols.items()}, index=index)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as TableStore holds them: indexed by (keys..., window_start), in upsert order."""
        if self._frame is None:
            self._frame = (self._frame_at(np.argsort(self._seq, kind="stable")) if self._cols
                           else pd.DataFrame())
        return self._frame

    # --- writing -------------------------------------------------------------------------------
    def write(self, codes: np.ndarray, rows: pd.DataFrame, where: np.ndarray | None = None) -> None:
        """Upsert `rows` (positional) under `codes` (distinct); `where`: their rows_of, if known."""
        if not len(codes):
            return
        where = self.rows_of(codes) if where is None else where
        old = where >= 0
        seq = self._next_seq + np.arange(len(codes), dtype=np.int64)
        self._next_seq += len(codes)
        if (
            self._cols
            and list(rows.columns) == list(self._cols)
            and all(isinstance(v, np.ndarray) and rows[c].dtype == v.dtype for c, v in self._cols.items())
        ):
            self._write_in_place(codes, rows, where, old, seq)
        else:
            self._write_concat(codes, rows, where, old, seq)
        self._record(codes.copy(), False)  # the caller's array: the log keeps its own

    def _write_in_place(self, codes, rows, where, old, seq) -> None:
        at, new = where[old], ~old
        for c, v in self._cols.items():
            values = rows[c].to_numpy()
            v[at] = values[old]
            if new.any():
                self._cols[c] = np.concatenate([v, values[new]])
        self._seq[at] = seq[old]
        if new.any():
            self._code = np.concatenate([self._code, codes[new]])
            self._seq = np.concatenate([self._seq, seq[new]])
        self._changed(codes=bool(new.any()))

    def _write_concat(self, codes, rows, where, old, seq) -> None:
        """TableStore's upsert (concat of the rows kept and the new ones), for a write whose columns
        or dtypes differ from the stored ones."""
        keep = np.ones(len(self._code), dtype=bool)
        keep[where[old]] = False
        rows = rows.reset_index(drop=True)
        if keep.any():
            stored = pd.DataFrame({c: _series(v[keep]) for c, v in self._cols.items()})
            rows = pd.concat([stored, rows], ignore_index=True)
        self._cols = {c: _values(rows[c]) for c in rows.columns}
        self._code = np.concatenate([self._code[keep], codes])
        self._seq = np.concatenate([self._seq[keep], seq])
        self._changed()

    def drop(self, where: np.ndarray) -> None:
        """Delete the rows where the boolean array `where` (row order) holds."""
        if not where.any():
            return
        self._record(self._code[where], True)
        keep = ~where
        self._cols = {c: v[keep] for c, v in self._cols.items()}
        self._code, self._seq = self._code[keep], self._seq[keep]
        self._changed()

    def set_where(self, where: np.ndarray, column, value) -> None:
        """Set `column` to `value` where `where` (row order) holds: a change, not a move (as mark)."""
        self._cols[column] = np.where(where, value, np.asarray(self._cols[column]))
        self._record(self._code[where], False)
        self._changed(codes=False)

    # --- the TableStore protocol ---------------------------------------------------------------
    def get(self, index: pd.Index) -> pd.DataFrame:
        if not len(self._code):
            return pd.DataFrame(index=index)
        return self.take(self.rows_of(self.codes_for(index)), index=index)

    def upsert(self, rows: pd.DataFrame) -> None:
        if not rows.empty:
            self.write(self.codes_for(rows.index, create=True), rows.reset_index(drop=True))

    def delete(self, index) -> None:
        if not len(self._code) or not len(index):
            return
        index = index if isinstance(index, pd.MultiIndex) else pd.MultiIndex.from_tuples(list(index))
        rows = self.rows_of(self.codes_for(index))
        where = np.zeros(len(self._code), dtype=bool)
        where[rows[rows >= 0]] = True
        self.drop(where)

    def mark(self, where: np.ndarray, column: str, value) -> None:
        """As TableStore.mark: `where` is in `frame` order."""
        rows = np.zeros(len(self._code), dtype=bool)
        rows[np.argsort(self._seq, kind="stable")] = where
        self.set_where(rows, column, value)

    # TableStore's change log (_record, _fold) over the written codes, as int64 arrays
    _joined = staticmethod(np.concatenate)

    def take_changes(self) -> tuple[pd.DataFrame, list]:
        if not self._log:
            return self.frame.iloc[:0], []
        (changed, _), (deleted, _) = self._fold()
        self._log = []
        rows = self._frame_at(self.rows_of(changed)) if len(changed) else self.frame.iloc[:0]
        return rows, list(self._index(deleted)) if len(deleted) else []

    def load(self, frame: pd.DataFrame) -> None:
        self._reset()
        codes = self.codes_for(frame.index, create=True) if len(frame) else np.empty(0, dtype=np.int64)
        self._cols = {c: _values(frame[c]) for c in frame.columns}
        self._code = codes
        self._seq = np.arange(len(codes), dtype=np.int64)
        self._next_seq = len(codes)

    def _compact(self, interner: _Interner, used: np.ndarray, logged: list, shift: int) -> None:
        """Forget the ids of `interner` no row or pending change uses; renumber the rest in codes."""
        live = np.unique(np.concatenate([used, *logged]))
        new_id = interner.keep(live)

        def renumber(codes):
            part = (codes >> shift) & LOW
            return codes - (part << shift) + (new_id[part] << shift)

        self._code = renumber(self._code)
        self._log = [(renumber(c), d) for c, d in self._log]
        self._changed()


class _Interner:
    """Values (scalars, or tuples of several columns) ↔ dense int ids, with each column's values kept
    as a pandas Index so that ids map back to values of the dtype a groupby would give."""

    def __init__(self, width: int):
        self.width = width
        self._ids: dict = {}
        self._chunks: list[list[pd.Index]] = [[] for _ in range(width)]
        self._lookup = None
        self._limit = 1024

    def __len__(self) -> int:
        return len(self._ids)

    def crowded(self) -> bool:
        return len(self._ids) > self._limit

    def values(self, i: int) -> pd.Index:
        chunks = self._chunks[i]
        if len(chunks) != 1:
            self._chunks[i] = chunks = [chunks[0].append(chunks[1:]) if chunks else pd.Index([])]
        return chunks[0]

    def ids(self, columns: list, create: bool) -> np.ndarray:
        """Each row's id (-1 where a column is null, or for an unknown value when not `create`)."""
        codes, uniques = _factorize_rows(columns)
        if self.width == 1 and isinstance(uniques[0], np.ndarray) and uniques[0].dtype == object:
            # object keys (strings): looked up in the id dict, without making a str Index of them
            ids = np.fromiter(
                map(self._ids.get, uniques[0].tolist(), repeat(-1)), dtype=np.intp, count=len(uniques[0])
            )
        else:
            uniques = [pd.Index(u) for u in uniques]
            ids = (
                self._index().get_indexer(
                    uniques[0] if self.width == 1 else pd.MultiIndex.from_arrays(uniques)
                )
                if self._ids
                else np.full(len(uniques[0]), -1, dtype=np.intp)
            )
        new = np.flatnonzero(ids < 0)
        if create and len(new):
            keys = (
                uniques[0].take(new).tolist()
                if self.width == 1
                else list(zip(*(u.take(new).tolist() for u in uniques)))
            )
            added = []
            for j, k in zip(new.tolist(), keys):
                if k not in self._ids:
                    self._ids[k] = len(self._ids)
                    added.append(j)
                ids[j] = self._ids[k]
            for i, u in enumerate(uniques):
                u = u.take(added)
                # as a groupby's index: an object column of strings gives a str level
                self._chunks[i].append(pd.Index(np.asarray(u)) if u.dtype == object else u)
            self._lookup = None
        out = ids[codes]
        out[codes < 0] = -1
        return out.astype(np.int64, copy=False)

    def _index(self) -> pd.Index:
        """The interned values as an index (hashed once, until values are added)."""
        if self._lookup is None:
            arrays = [self.values(i) for i in range(self.width)]
            self._lookup = arrays[0] if self.width == 1 else pd.MultiIndex.from_arrays(arrays)
        return self._lookup

    def keep(self, live: np.ndarray) -> np.ndarray:
        """Keep the ids in `live` (sorted), renumbered 0..; returns old id → new id."""
        new_id = np.full(len(self._ids) + 1, -1, dtype=np.int64)
        new_id[live] = np.arange(len(live), dtype=np.int64)
        self._ids = {k: int(new_id[v]) for k, v in self._ids.items() if new_id[v] >= 0}
        self._chunks = [[self.values(i).take(live)] for i in range(self.width)]
        self._lookup = None
        self._limit = max(1024, 2 * len(live))
        return new_id


def _factorize_rows(columns: list) -> tuple[np.ndarray, list[pd.Index]]:
    """(group code of each row, -1 where a column is null; each column's values per group, as
    pd.factorize gives them for one column), groups numbered in order of first appearance."""
    if len(columns) == 1:
        column = columns[0]
        codes, uniques = pd.factorize(column.to_numpy() if column.dtype == object else column)
        return codes, [uniques]
    parts = [pd.factorize(c) for c in columns]
    valid = np.logical_and.reduce([c >= 0 for c, _ in parts])
    codes = parts[0][0][valid].astype(np.int64)
    for c, u in parts[1:]:
        codes, _ = pd.factorize(codes * len(u) + c[valid])
    top = np.maximum.accumulate(codes) if len(codes) else codes
    first = np.flatnonzero(valid)[np.flatnonzero(np.diff(top, prepend=-1) > 0)]
    out = np.full(len(valid), -1, dtype=np.intp)
    out[valid] = codes
    return out, [pd.Index(u).take(c[first]) for c, u in parts]


def _series(values, index=None) -> pd.Series:
    """A Series of `values` with their dtype (pandas would infer str from an object array)."""
    return pd.Series(values, index=index, dtype=values.dtype, copy=False)


def _values(series: pd.Series):
    """A column's values: a NumPy array (a writable copy: rows are updated in place) for NumPy dtypes,
    else the extension array."""
    return series.to_numpy(copy=True) if isinstance(series.dtype, np.dtype) else series.array
