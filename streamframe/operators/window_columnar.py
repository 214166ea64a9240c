"""Tumbling and hopping windows with named aggregations, on a WindowStore.

The same rules and results as AggregateOp (streamframe/operators/window.py), with the state addressed
by int64 codes instead of a (keys..., window_start) MultiIndex: a batch's (record, window) pairs are
grouped by code, the stored rows found with one int64 lookup and updated in place, and the windows due
or past retention found by scanning the store's NumPy columns. The compiler picks this operator for
every tumbling/hopping aggregation that is not a reduce/aggregate fold (those need whole rows per
group key and stay on AggregateOp, as do unwindowed, session and sliding aggregations).

Interning the batch's keys and window starts happens before the commit point; it changes nothing a
reader sees (an id without rows), so a failed batch may still be re-run in parts.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from streamframe.operators import aggregate as agg
from streamframe.operators.window import EMITTED, TASK, TS, WE, WS, AggregateOp, _stream_times
from streamframe.state.window_store import LOW, WindowStore
from streamframe.time.extract import ms_to_datetime


class Update(NamedTuple):
    """A batch's changed rows: their codes, stored positions before the write (-1: new), and values."""

    codes: np.ndarray
    where: np.ndarray
    rows: pd.DataFrame


class WindowAggregateOp(AggregateOp):
    store_kind = WindowStore

    def _check_keys(self, keys: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each record's key id; interning the keys is the null check (-1: a null in the key)."""
        kid = self.store.key_ids([keys[c] for c in self.keys])
        return kid >= 0, kid

    def process(self, batch: pd.DataFrame) -> pd.DataFrame | None:
        prepared = self._prepare(batch)
        if prepared is None:
            return None
        batch, _, ts, task, kid = prepared
        stream, last = _stream_times(task, ts, self.stream_time)
        idx, ws, we = self.window.windows_for(ts)
        on_time = we > stream[idx] - self.window.grace
        kept = idx[on_time]
        update = (
            self._aggregate_pairs(batch, kid, ts, task, kept, ws[on_time], we[on_time]) if len(kept) else None
        )
        # ---- commit: nothing above changed any state ----
        self._advance(batch, last, idx, on_time)
        if update is not None:
            self.store.write(update.codes, update.rows, update.where)
        self.store.meta["stream_time"] = dict(self.stream_time)
        return self._emit(update)

    def _aggregate_pairs(self, batch, kid, ts, task, kept, ws, we) -> Update:
        """The (record, window) pairs `kept` aggregated and combined with the stored rows."""
        store = self.store
        codes = (store.window_ids(ws) << 32) | kid[kept]
        if self._numeric(batch):
            return self._aggregate_numeric(batch, codes, ts, task, kept, we)
        pairs = pd.DataFrame({c: _take(batch[c], kept) for c in self._reads(batch)})
        pairs[TS], pairs[TASK], pairs[WE] = ts[kept], task[kept], we
        grouped = pairs.groupby(codes, sort=False)
        extra = pd.DataFrame({TS: grouped[TS].max(), TASK: grouped[TASK].last()})
        extra[WE] = grouped[WE].first()
        groups = extra.index.to_numpy()
        where = store.rows_of(groups)
        old = store.take(where, index=extra.index)
        state = agg.combine(old, agg.partial(grouped, self.specs), self.specs)
        if TS in old:
            extra[TS] = np.maximum(extra[TS].to_numpy(), old[TS].fillna(-1).to_numpy(dtype="int64"))
        if self.final:
            extra[EMITTED] = False
        return Update(groups, where, pd.concat([state, extra], axis=1).reset_index(drop=True))

    def _numeric(self, batch: pd.DataFrame) -> bool:
        """Whether NumPy computes every aggregation exactly as pandas would, with the same dtype:
        count/size of a NumPy column, and sum/mean/min/max/first/last of an int64 column (exact
        int sums, no nulls to skip). Anything else (floats, whose pandas sums are compensated,
        extension dtypes, nunique, callables) goes through pandas."""
        for spec in self.specs:
            if spec.fn == "size" or (spec.fn == "count" and spec.column is None):
                continue
            dtype = batch[spec.column].dtype
            if not isinstance(dtype, np.dtype):
                return False
            if not (
                (spec.fn == "count" and dtype.kind in "iufb") or (spec.fn in _INT_EXACT and dtype == np.int64)
            ):
                return False
        return True

    def _aggregate_numeric(self, batch, codes, ts, task, kept, we) -> Update:
        """As _aggregate_pairs's pandas groupby, on the codes with NumPy: groups numbered in order of
        first appearance (groupby's sort=False order), each reduced with a ufunc's `at` or bincount,
        and combined with the stored rows column by column."""
        store = self.store
        gid, groups, first = _factorize(codes)
        n = len(groups)
        last = np.zeros(n, dtype=np.intp)
        np.maximum.at(last, gid, np.arange(len(gid)))
        where = store.rows_of(groups)
        partial = {}
        for i, spec in enumerate(self.specs):
            values = None if spec.column is None else batch[spec.column].to_numpy()[kept]
            if spec.fn == "mean":
                partial[f"{i}:sum"] = _reduce(np.add, gid, values, n, 0)
                partial[f"{i}:n"] = np.bincount(gid, minlength=n)
            elif spec.fn in ("size", "count"):
                counted = (
                    gid
                    if spec.fn == "size" or values is None or values.dtype.kind != "f"
                    else gid[~np.isnan(values)]
                )
                partial[f"{i}:{spec.fn}"] = np.bincount(counted, minlength=n)
            elif spec.fn in ("first", "last"):
                partial[f"{i}:{spec.fn}"] = values[first if spec.fn == "first" else last]
            else:
                ufunc, start = _REDUCE[spec.fn]
                partial[f"{i}:{spec.fn}"] = _reduce(ufunc, gid, values, n, start)
        max_ts = _reduce(np.maximum, gid, ts[kept], n, np.iinfo(np.int64).min)
        has = where >= 0
        state = _combine(store, partial, where, has)
        if state is None:
            index = pd.Index(groups)
            state = agg.combine(
                store.take(where, index=index), pd.DataFrame(partial, index=index), self.specs
            )
            state = {c: values for c, values in state.reset_index(drop=True).items()}
        if len(store) and TS in store.columns:  # as the pandas path: a new group's stored TS counts as -1
            max_ts = np.maximum(max_ts, _stored(store.column(TS), where, has, -1).astype(np.int64))
        state[TS], state[TASK], state[WE] = max_ts, task[kept][last], we[first]
        if self.final:
            state[EMITTED] = np.zeros(n, dtype=bool)
        # one constructor: a column set afterwards costs a setitem per batch
        return Update(groups, where, pd.DataFrame(state, copy=False))

    def _reads(self, batch: pd.DataFrame) -> list:
        """The columns the aggregations read (the group keys are interned, not copied per pair)."""
        used = {s.column for s in self.specs if s.column is not None}
        return [c for c in batch.columns if c in used]

    # --- output ----------------------------------------------------------------------------------
    def _emit(self, changed=None) -> pd.DataFrame | None:
        update = changed if isinstance(changed, Update) else None
        store = self.store
        if not self.final:
            out = self._rows_at(update.rows, store.index_columns(update.codes)) if update else None
            self._purge()
            return out
        if not len(store):
            return None
        st = self._stream_time_of(store.column(TASK))
        due = ~store.column(EMITTED).astype(bool) & (store.column(WE) + self.closes_after <= st)
        if not due.any():
            self._purge()
            return None
        rows = np.flatnonzero(due)
        # frame[due].sort_values([WE, TS], kind="stable"), frame being in upsert order
        rows = rows[np.lexsort((store.sequence()[rows], store.column(TS)[rows], store.column(WE)[rows]))]
        closed, index = store.take(rows), store.index_columns(store.codes[rows])
        store.set_where(due, EMITTED, True)
        self._purge()
        return self._rows_at(closed, index)

    def _purge(self) -> None:
        store = self.store
        if not len(store):
            return
        st = self._stream_time_of(store.column(TASK))
        old = store.column(WE) + max(self.window.retention, self.closes_after) <= st
        if self.final:
            old &= store.column(EMITTED).astype(bool)
        store.drop(old)

    def _rows_at(self, state: pd.DataFrame, index: dict) -> pd.DataFrame:
        """As _rows (finalize, then _decorate), for positional state rows and their index columns,
        built with one DataFrame constructor: inserting and setting a dozen columns one by one was
        most of the output's cost. The columns, their order and the dtypes are _decorate's."""
        cols = {name: values for name, values in index.items() if name != WS}
        cols[WS] = ms_to_datetime(index[WS])
        cols[WE] = ms_to_datetime(state[WE].to_numpy())
        out = agg.finalize(state, self.specs)
        for name in out.columns:
            cols[name] = out[name]
        if (
            len(self.keys) == 1
        ):  # _decorate's to_numpy(), whose object array of strings is inferred back to str
            key = cols[self.keys[0]]
            cols["_key"] = key if key.dtype == _INFERRED_STR else np.asarray(key)
        else:
            keys = pd.DataFrame({k: cols[k] for k in self.keys}, index=out.index)
            cols["_key"] = list(keys.itertuples(index=False, name=None))
        cols["_timestamp"] = ms_to_datetime(state[TS].to_numpy(dtype="int64"))
        cols["_partition"] = state[TASK].to_numpy(dtype="int64")
        cols["_offset"], cols["_headers"], cols["_tombstone"] = -1, None, False
        return pd.DataFrame(cols, index=out.index)


_INFERRED_STR = pd.Series(np.array(["a"], dtype=object)).dtype  # what a column of Python strs becomes
_INT_EXACT = ("sum", "mean", "min", "max", "first", "last")
_REDUCE = {
    "sum": (np.add, 0),
    "min": (np.minimum, np.iinfo(np.int64).max),
    "max": (np.maximum, np.iinfo(np.int64).min),
}


def _factorize(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pd.factorize(codes) (groups numbered in order of first appearance, as groupby(sort=False)),
    and each group's first position. When the batch's (window id, key id) pairs span a small table,
    through that table instead of a hash table (half the time)."""
    pos = np.arange(len(codes))
    kid, wid = codes & LOW, codes >> 32
    lo, width = wid.min(), int(kid.max()) + 1
    size = (int(wid.max()) - int(lo) + 1) * width
    if size > 4 * len(codes):
        gid, groups = pd.factorize(codes)
        first = np.full(len(groups), len(codes), dtype=np.intp)
        np.minimum.at(first, gid, pos)
        return gid, groups, first
    cell = (wid - lo) * width + kid
    seen = np.full(size, len(codes), dtype=np.intp)
    np.minimum.at(seen, cell, pos)
    first = np.flatnonzero(seen[cell] == pos)  # first appearances, in order
    label = np.empty(size, dtype=np.intp)
    label[cell[first]] = np.arange(len(first))
    return label[cell], codes[first], first


def _reduce(ufunc, gid: np.ndarray, values: np.ndarray, n: int, start) -> np.ndarray:
    """`ufunc` over each group's values (int64), from `start`."""
    out = np.full(n, start, dtype=np.int64)
    ufunc.at(out, gid, values)
    return out


def _stored(column: np.ndarray, where: np.ndarray, has: np.ndarray, fill) -> np.ndarray:
    """The stored values at rows `where` (`fill` where a group has no row)."""
    out = np.full(len(where), fill, dtype=column.dtype)
    out[has] = column[where[has]]
    return out


def _combine(store: WindowStore, partial: dict, where: np.ndarray, has: np.ndarray) -> dict | None:
    """agg.combine on NumPy columns, with its dtypes; None when a stored column is not the partial's
    dtype (the caller then falls back to agg.combine)."""
    out = {}
    for col, new in partial.items():
        kind = col.split(":", 1)[1]
        stored = None
        if len(store):
            stored = store.column(col) if col in store.columns else None
            if not isinstance(stored, np.ndarray) or not (
                stored.dtype == new.dtype or (kind == "first" and stored.dtype == np.float64)
            ):
                return None
        if kind == "first":
            out[col] = _first(new, stored, where, has)
            continue
        new = new.copy()
        if stored is not None:
            old = stored[where[has]]
            if kind in ("count", "size", "sum", "n"):
                new[has] += old
            elif kind in ("min", "max"):
                new[has] = (np.minimum if kind == "min" else np.maximum)(new[has], old)
        out[col] = new  # last: the batch's (an int64 column has no nulls to fall back from)
    return out


def _first(new: np.ndarray, stored, where: np.ndarray, has: np.ndarray) -> np.ndarray:
    """agg.combine's `a.where(a.notna(), b)`: the stored value unless missing (NaN), the batch's
    otherwise; float64, as the stored column reindexed with NaN rows is, unless every group has an
    int64 stored row."""
    if stored is not None and stored.dtype == new.dtype and has.all():
        return stored[where]
    old = np.full(len(new), np.nan)
    if stored is not None:
        old[has] = stored[where[has]]
    return np.where(np.isnan(old), new, old)


def _take(column: pd.Series, rows: np.ndarray):
    """`column`'s values at positions `rows`, keeping an extension dtype."""
    return column.to_numpy()[rows] if isinstance(column.dtype, np.dtype) else column.array.take(rows)
