"""Joins on batches: the right side kept in a store, each left batch joined with one pandas merge.

* stream–table / stream–global table: a stream batch looks its key up in the table as it stands; the
  runtime feeds both inputs in timestamp order (a global table is loaded first), so a stream record
  sees the table as of its own timestamp.
* table–table on the key, or on a foreign key (`left_on`, a column of the left value): a change on
  either side recomputes the result rows it touches; a row that no longer joins becomes a delete.
* as-of: each left record takes the latest right record at or before its time (per `by`), within a
  tolerance, from the right records kept for that long.
* stream–stream windowed (`within=`, `grace=`): operators/stream_join.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from streamframe.operators.base import Operator
from streamframe.records import META, tombstones
from streamframe.time.extract import datetime_to_ms


def _values(frame: pd.DataFrame) -> list:
    return [c for c in frame.columns if c not in META]


def _index(frame: pd.DataFrame, keys: list) -> pd.Index:
    if len(keys) == 1:
        return pd.Index(frame[keys[0]], name=keys[0])
    return pd.MultiIndex.from_frame(frame[keys])


def _take(values, where: np.ndarray, found: np.ndarray):
    """values[where], -1 giving a missing value. Integers and booleans become their nullable pandas
    types where a row is missing (a float NaN would write 3 as 3.0, and only in batches with a miss)."""
    if values.dtype.kind in "iub" and isinstance(values, np.ndarray | pd.arrays.NumpyExtensionArray) \
            and not found.all():
        taken = np.asarray(values)[np.where(found, where, 0)]
        nullable = pd.arrays.BooleanArray if values.dtype.kind == "b" else pd.arrays.IntegerArray
        return nullable(taken, ~found)
    return pd.api.extensions.take(values, where, allow_fill=True)


def _suffix(left_cols, right: pd.DataFrame, suffixes) -> pd.DataFrame:
    clash = {c: f"{c}{suffixes[1]}" for c in right.columns if c in set(left_cols)}
    return right.rename(columns=clash) if clash else right


class _TableSide:
    """The right table, materialized: last row per key, deletes applied."""

    def __init__(self, store, keys):
        self.store, self.keys = store, list(keys)

    def apply(self, batch: pd.DataFrame) -> pd.Index:
        from streamframe.operators.table import _key_index

        tomb = tombstones(batch)
        index = _key_index(batch, self.keys, tomb, self.store.frame.index if len(self.store) else None)
        last = ~index.duplicated(keep="last")
        batch, index, tomb = batch[last], index[last], tomb[last]
        rows = batch[[c for c in batch.columns if c not in META or c == "_timestamp"]].set_axis(index)
        self.store.upsert(rows[~tomb])
        self.store.delete(index[tomb])
        return index


def _source_table_store(ctx, node):
    """The store of the table a join's right side is, when that side is a table read from a topic
    (`sf.table`/`sf.global_table`: a TableFromStream opened before the join) keyed as the join looks it
    up: the join reads it as it stands, as Kafka Streams' KStream–KTable join reads the table's own
    store, instead of keeping (and checkpointing, and restoring) a second copy of every row."""
    right = node.parents[1]
    if not right.keeps_table or tuple(right.keys) != tuple(node.right_keys):
        return None
    return ctx.stores.opened(right)


class StreamTableJoinOp(Operator):
    stateful = True
    by_side = True

    def open(self, ctx) -> None:
        shared = _source_table_store(ctx, self.node)
        self.shared = shared is not None
        store = shared if self.shared else ctx.store(self, list(self.node.right_keys), suffix="table")
        self.table = _TableSide(store, self.node.right_keys)

    def process_side(self, side: int, batch: pd.DataFrame):
        if side == 1:
            if not self.shared:  # else the table's own operator has applied the batch already
                self.table.apply(batch)
            return None
        return self._join(batch)

    def _join(self, batch: pd.DataFrame) -> pd.DataFrame | None:
        node = self.node
        tomb = tombstones(batch)
        if tomb.any():  # a null value (e.g. a delete from table.to_stream()): Kafka Streams ignores it
            batch = batch[~tomb]  # (KStreamKTableJoinProcessor#maybeDropRecord), inner and left alike
            if batch.empty:
                return None
        table = self.table.store.frame
        right_cols = (
            [c for c in table.columns if c not in META and c not in node.right_keys] if len(table) else []
        )
        on = node.on if node.on is not None else "_key"
        on = [on] if isinstance(on, str) else list(on)
        keys = batch[on[0]] if len(on) == 1 else pd.MultiIndex.from_frame(batch[on])
        if len(table):
            # One hash look-up per row (the table's index keeps its hash table between batches), then
            # a take per column: -1 (no row) gives NaN, the column's type widened as reindex does.
            where = table.index.get_indexer(keys)
            found = where >= 0
            matched = pd.DataFrame(
                {c: _take(table[c].array, where, found) for c in right_cols}, index=batch.index
            )
        else:
            matched = pd.DataFrame(index=batch.index)
            found = np.zeros(len(batch), dtype=bool)
        matched = _suffix(_values(batch), matched, node.suffixes)
        out = pd.concat([batch, matched], axis=1)
        if node.how == "inner":
            out = out[np.asarray(found)]
        return out if len(out) else None


class TableTableJoinOp(Operator):
    stateful = True
    by_side = True

    def open(self, ctx) -> None:
        node = self.node
        self.left = _TableSide(ctx.store(self, list(node.left_keys), suffix="left"), node.left_keys)
        self.right = _TableSide(ctx.store(self, list(node.right_keys), suffix="right"), node.right_keys)

    def process_side(self, side: int, batch: pd.DataFrame):
        node = self.node
        if side == 0:
            changed = self.left.apply(batch)
        else:
            keys = self.right.apply(batch)
            if node.left_on is None:
                changed = keys
            else:  # every left row pointing at a changed right row
                left = self.left.store.frame
                changed = left.index[left[node.left_on].isin(keys)] if len(left) else keys[:0]
        if not len(changed):
            return None
        return self._rows(changed, batch)

    def _rows(self, keys: pd.Index, batch: pd.DataFrame) -> pd.DataFrame:
        node = self.node
        left = self.left.store.get(keys)
        in_left = (
            keys.isin(self.left.store.frame.index)
            if len(self.left.store.frame)
            else np.zeros(len(keys), bool)
        )
        if node.left_on is None:
            right = self.right.store.get(keys)
            in_right = (
                keys.isin(self.right.store.frame.index)
                if len(self.right.store.frame)
                else np.zeros(len(keys), bool)
            )
        else:
            fk = left[node.left_on] if node.left_on in left else pd.Series(np.nan, index=keys)
            right = self.right.store.get(pd.Index(fk)).set_axis(keys)
            in_right = (
                pd.Index(fk).isin(self.right.store.frame.index)
                if len(self.right.store.frame)
                else np.zeros(len(keys), bool)
            )
        in_left, in_right = np.asarray(in_left), np.asarray(in_right)
        keep = {"inner": in_left & in_right, "left": in_left, "outer": in_left | in_right}[node.how]
        left_vals = left[[c for c in left.columns if c not in META and c not in node.left_keys]]
        right_vals = right[[c for c in right.columns if c not in META and c not in node.right_keys]]
        right_vals = _suffix(list(left_vals.columns) + list(node.left_keys), right_vals, node.suffixes)
        out = pd.concat([left_vals, right_vals], axis=1).reset_index()
        ts = [s for s in (left.get("_timestamp"), right.get("_timestamp")) if s is not None]
        stamp = pd.concat(ts, axis=1).max(axis=1) if ts else None
        out["_tombstone"] = ~keep
        out["_key"] = (
            out[node.left_keys[0]].to_numpy()
            if len(node.left_keys) == 1
            else list(out[list(node.left_keys)].itertuples(index=False, name=None))
        )
        if stamp is not None and stamp.notna().any():
            fill = batch["_timestamp"].max()
            out["_timestamp"] = stamp.fillna(fill).to_numpy()
        else:
            out["_timestamp"] = batch["_timestamp"].max()
        out["_partition"], out["_offset"], out["_headers"] = 0, -1, None
        return out


class AsofJoinOp(Operator):
    """merge_asof on a stream: the right records of the last `tolerance` (plus grace) are kept."""

    stateful = True
    by_side = True

    def open(self, ctx) -> None:
        self.right = ctx.store(self, ["_row"], suffix="right")
        self.seq = int(self.right.meta.get("seq", 0))
        self.stream_time = int(self.right.meta.get("stream_time", -1))

    def process_side(self, side: int, batch: pd.DataFrame):
        ts = datetime_to_ms(batch["_timestamp"])
        self.stream_time = max(self.stream_time, int(ts.max()))
        if side == 1:
            rows = batch[_values(batch)].copy()
            rows["_ts"] = ts
            rows.index = pd.Index(np.arange(self.seq, self.seq + len(rows)), name="_row")
            self.seq += len(rows)
            self.right.upsert(rows)
            self._purge()
            self.right.meta.update(seq=self.seq, stream_time=self.stream_time)
            return None
        return self._join(batch, ts)

    def _purge(self) -> None:
        tol = self.node.tolerance
        frame = self.right.frame
        if tol is None or frame.empty:
            return
        old = frame["_ts"].to_numpy() < self.stream_time - tol - self.node.grace
        if old.any():  # no left record that is not late can match these any more
            self.right.delete(frame.index[old])

    def _join(self, batch: pd.DataFrame, ts: np.ndarray) -> pd.DataFrame | None:
        node = self.node
        left = batch.assign(_ts=ts, _order=np.arange(len(batch)))
        right = self.right.frame
        by = [node.by] if isinstance(node.by, str) else (list(node.by) if node.by else None)
        if right.empty:
            right = pd.DataFrame({"_ts": pd.Series([], dtype="int64"), **{b: [] for b in by or []}})
        right = right.sort_values("_ts", kind="stable")
        rcols = [c for c in right.columns if c not in (by or []) and c != "_ts"]
        right = right.rename(columns={c: f"{c}{node.suffixes[1]}" for c in rcols if c in left.columns})
        merged = pd.merge_asof(
            left.sort_values("_ts", kind="stable"),
            right,
            on="_ts",
            by=by,
            tolerance=node.tolerance,
            direction="backward",
            allow_exact_matches=True,
        )
        merged = merged.sort_values("_order").set_axis(batch.index)
        if node.how == "inner":
            present = [c for c in right.columns if c not in (by or []) and c != "_ts"]
            if present:
                merged = merged[merged[present].notna().any(axis=1)]
        return merged.drop(columns=["_ts", "_order"])
