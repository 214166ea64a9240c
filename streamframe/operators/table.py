"""Table operators: a changelog materialized (last row per key, tombstones delete), and a table
re-aggregated by other columns (an updated row leaves its old group and joins its new one)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from streamframe.errors import ConfigError
from streamframe.operators import aggregate as agg
from streamframe.operators.base import Operator
from streamframe.records import META, tombstones
from streamframe.time.extract import datetime_to_ms, ms_to_datetime


def _key_index(
    batch: pd.DataFrame, keys: list[str], tomb: np.ndarray, like: pd.Index | None = None
) -> pd.Index:
    if keys == ["_key"]:
        # one topic's keys are of one kind: the first tells, without a pass over every key
        if len(batch) and isinstance(batch["_key"].iat[0], dict):
            raise ConfigError("a table keyed by its record keys needs keys of one value, but these are "
                              "records (Avro records or Protobuf messages, read as dicts); read them with "
                              "key_format='bytes', or key= value columns")
        return pd.Index(batch["_key"], name="_key")
    frame = batch.reindex(columns=keys)  # a batch of tombstones only has no value columns at all
    if len(keys) == 1 and tomb.any():
        # A tombstone has no value: its key column comes from the record key (text), read as the
        # key column's type so that "42" deletes the row keyed 42.
        record_keys = pd.Series(batch["_key"].to_numpy(dtype=object), index=batch.index)
        values = frame[keys[0]]
        numeric = (
            pd.api.types.is_numeric_dtype(values[~tomb].dtype)
            if (~tomb).any()
            else like is not None and pd.api.types.is_numeric_dtype(like.dtype)
        )
        if numeric:
            record_keys = pd.to_numeric(record_keys, errors="coerce")
        frame[keys[0]] = np.where(tomb, record_keys.to_numpy(dtype=object), values.to_numpy(dtype=object))
        if numeric:
            frame[keys[0]] = pd.to_numeric(frame[keys[0]])
    if len(keys) == 1:
        return pd.Index(frame[keys[0]], name=keys[0])
    return pd.MultiIndex.from_frame(frame)


def _last_per_key(batch: pd.DataFrame, index: pd.Index) -> tuple[pd.DataFrame, pd.Index]:
    last = ~index.duplicated(keep="last")
    return batch[last], index[last]


class TableFromStreamOp(Operator):
    stateful = True

    def __init__(self, node):
        super().__init__(node)
        self.keys = list(node.keys)
        self.rejected: dict[int, str] = {}

    def open(self, ctx) -> None:
        self.store = ctx.store(self, self.keys)

    def current_rows(self) -> pd.DataFrame | None:
        frame = self.store.frame
        if frame.empty:
            return None
        out = frame.reset_index()
        out["_tombstone"] = False
        return out

    def process(self, batch):
        tomb = tombstones(batch)
        index = _key_index(batch, self.keys, tomb, self.store.frame.index if len(self.store) else None)
        missing = (
            index.isna()
            if not isinstance(index, pd.MultiIndex)
            else index.to_frame().isna().any(axis=1).to_numpy()
        )
        if np.any(missing):
            for label in batch.index[np.asarray(missing)]:
                self.rejected[int(label)] = (
                    f"{self.name}: table record without a key ({', '.join(self.keys)})"
                )
            keep = ~np.asarray(missing)
            batch, index, tomb = batch[keep], index[keep], tomb[keep]
        if batch.empty:
            return None
        rows, index = _last_per_key(batch, index)
        tomb = tombstones(rows)
        stored = rows.set_axis(index)
        self.store.upsert(stored[~tomb])
        self.store.delete(index[tomb])
        out = rows.copy()
        out["_tombstone"] = tomb
        if self.keys != ["_key"]:
            keys = index.to_frame(index=False)
            for k in self.keys:
                same = k in out and out[k].dtype == keys[k].dtype
                out[k] = keys[k].to_numpy() if same else keys[k].to_numpy(dtype=object)
        return out


class TableAggregateOp(Operator):
    """groupby on a table: the groups an update touches are recomputed from the materialized input."""

    stateful = True

    def __init__(self, node):
        super().__init__(node)
        self.keys = list(node.keys)
        self.input_keys = list(node.input_keys)
        self.rejected: dict[int, str] = {}

    def open(self, ctx) -> None:
        self.input = ctx.store(self, self.input_keys, suffix="input")

    def process(self, batch):
        tomb = tombstones(batch)
        index = _key_index(batch, self.input_keys, tomb)
        rows, index = _last_per_key(batch, index)
        tomb = tombstones(rows)
        rows = rows.set_axis(index)
        old = self.input.get(index)
        groups = set()
        for frame in (old.dropna(how="all"), rows[~tomb]):
            if len(frame) and all(k in frame for k in self.keys):
                groups |= set(_group_tuples(frame, self.keys))
        values = rows[[c for c in rows.columns if c not in META or c == "_timestamp"]][~tomb]
        self.input.upsert(values)
        self.input.delete(index[tomb])
        if not groups:
            return None
        return self._recompute(groups, rows)

    def _recompute(self, groups: set, changed: pd.DataFrame) -> pd.DataFrame:
        table = self.input.frame
        mask = (
            np.array([g in groups for g in _group_tuples(table, self.keys)], dtype=bool)
            if len(table)
            else np.zeros(0, dtype=bool)
        )
        members = table[mask].reset_index(drop=True)
        if len(members):
            grouped = members.groupby(self.keys, sort=False)
            if self.node.fold is not None:
                out = self._fold(members)
            else:
                out = agg.finalize(agg.partial(grouped, self.node.specs), self.node.specs)
            out = out.reset_index()
        else:
            out = pd.DataFrame(columns=self.keys)
        present = set(_group_tuples(out, self.keys)) if len(out) else set()
        gone = [g for g in groups if g not in present]
        ts = int(datetime_to_ms(changed["_timestamp"]).max()) if "_timestamp" in changed else 0
        out["_tombstone"] = False
        if gone:
            dead = pd.DataFrame(gone, columns=self.keys)
            dead["_tombstone"] = True
            out = pd.concat([out, dead], ignore_index=True)
        out["_key"] = (
            out[self.keys[0]].to_numpy()
            if len(self.keys) == 1
            else list(out[self.keys].itertuples(index=False, name=None))
        )
        out["_timestamp"] = ms_to_datetime(np.full(len(out), ts))
        out["_partition"], out["_offset"], out["_headers"] = 0, -1, None
        return out

    def _fold(self, members: pd.DataFrame) -> pd.DataFrame:
        fold = self.node.fold
        groups = _group_tuples(members, self.keys)
        rows = members.drop(columns=["_timestamp"], errors="ignore").to_dict("records")
        if fold.column is not None:
            rows = [r[fold.column] for r in rows]
        result = fold.run(groups, rows, {})
        index = (
            pd.MultiIndex.from_tuples(list(result), names=self.keys)
            if len(self.keys) > 1
            else pd.Index([g[0] for g in result], name=self.keys[0])
        )
        values = list(result.values())
        if values and all(isinstance(v, dict) for v in values):
            return pd.DataFrame(values, index=index)
        return pd.DataFrame({self.node.fold_name: values}, index=index)


def _group_tuples(frame: pd.DataFrame, keys: list[str]) -> list[tuple]:
    if all(k in frame.columns for k in keys):
        return list(frame[keys].itertuples(index=False, name=None))
    return list(frame.reset_index()[keys].itertuples(index=False, name=None))
