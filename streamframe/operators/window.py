"""Grouped aggregation, windowed or not, with Kafka Streams' time semantics, one batch at a time.

Per batch: group keys and event times are read; each record's stream time is the running maximum of
event time in its task (the input partition for a group by `_key`, else the partition a repartition
topic would give the new key), this record included; each record is placed in its windows and a
(record, window) pair is dropped as late when `window_end <= stream_time - grace`; the surviving
pairs are aggregated with one groupby and combined with the stored state. Emission: every changed row
("updates", like a KTable with caching), or each window once when `window_end + grace <= stream time`
of its task ("final", like suppress(untilWindowCloses)). Windows past their retention are purged.

Nothing is mutated until every fallible step for the batch has succeeded, so the runtime may re-run a
failed batch in parts to isolate bad records without counting anything twice.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from streamframe.operators import aggregate as agg
from streamframe.operators.base import Operator
from streamframe.operators.partitioner import Partitioner
from streamframe.records import tombstones
from streamframe.time.extract import datetime_to_ms, ms_to_datetime

WS, WE, TS, TASK, EMITTED, FOLD = "window_start", "window_end", "_ts", "_task", "_emitted", "_fold"


class AggregateOp(Operator):
    stateful = True
    store_kind = None  # the context's default store (TableStore)

    def __init__(self, node):
        super().__init__(node)
        self.keys = list(node.keys)
        self.window = node.window
        self.specs = node.specs
        self.fold = node.fold
        self.final = node.emit == "final"
        self.stream_time: dict[int, int] = {}
        self.last_record_at: dict[int, float] = {}
        self.late_drops = 0
        self.rejected: dict[int, str] = {}
        self.store = None
        self.partitioner = None

    @property
    def closes_after(self) -> int:
        """How long after its end a window closes (is final): grace; for sessions, gap + grace."""
        return self.window.grace + (self.window.size if self.window.kind == "session" else 0)

    @property
    def index_names(self) -> list[str]:
        return self.keys + ([WS] if self.window else [])

    def open(self, ctx) -> None:
        self.store = ctx.store(self, self.index_names, kind=self.store_kind)
        self.stream_time = {int(k): int(v) for k, v in self.store.meta.get("stream_time", {}).items()}
        if self.keys != ["_key"]:
            self.partitioner = Partitioner(ctx.partitions)
        self.clock = ctx.clock

    # --- per batch -------------------------------------------------------------------------------
    def _prepare(self, batch: pd.DataFrame):
        """(rows, group keys, event times in ms, task per row) of the records an aggregation takes, or
        None: null values are skipped, as Kafka Streams' aggregations do; a null group key is rejected
        (dead-lettered); the task is the partition, or the one a repartition topic gives a new key."""
        if "_tombstone" in batch:
            batch = batch[~tombstones(batch)]
        keys = batch[self.keys]
        valid, ids = self._check_keys(keys)
        text = _utf8_keys(keys)
        if not (valid.all() and text.all()):
            names = ", ".join(self.keys)
            for label in batch.index[~valid]:
                self.rejected[int(label)] = f"{self.name}: null group key ({names})"
            for label in batch.index[valid & ~text]:
                self.rejected[int(label)] = f"{self.name}: group key ({names}) is not UTF-8 text"
            valid = valid & text
            batch, keys = batch[valid], keys[valid]
            ids = None if ids is None else ids[valid]
        if batch.empty:
            return None
        ts = datetime_to_ms(batch["_timestamp"])
        task = batch["_partition"].to_numpy(dtype="int64") if self.partitioner is None else \
            self.partitioner(_single_key(keys)).astype("int64")
        return batch, keys, ts, task, ids

    def _check_keys(self, keys: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """(rows whose group key has no null, anything per row a subclass derives from the keys on the
        way: WindowAggregateOp's key ids, whose interning is its null check)."""
        return keys.notna().all(axis=1).to_numpy(), None

    def process(self, batch: pd.DataFrame) -> pd.DataFrame | None:
        prepared = self._prepare(batch)
        if prepared is None:
            return None
        batch, keys, ts, task, _ = prepared
        stream, last = _stream_times(task, ts, self.stream_time)
        if self.window is not None:
            idx, ws, we = self.window.windows_for(ts)
            on_time = we > stream[idx] - self.window.grace
        else:
            idx = np.arange(len(batch))
            ws = we = None
            on_time = np.ones(len(idx), dtype=bool)
        kept = idx[on_time]
        pairs = batch[self._reads(batch)].iloc[kept].reset_index(drop=True)
        pairs[TS], pairs[TASK] = ts[kept], task[kept]
        if self.window is not None:
            pairs[WS], pairs[WE] = ws[on_time], we[on_time]
        changed = self._aggregate(pairs) if len(pairs) else pd.DataFrame()
        # ---- commit: nothing above changed any state ----
        self._advance(batch, last, idx, on_time)
        if len(changed):
            self.store.upsert(changed)
        self.store.meta["stream_time"] = dict(self.stream_time)
        return self._emit(changed)

    def _advance(self, batch: pd.DataFrame, last: dict, idx: np.ndarray, on_time: np.ndarray) -> None:
        """After a batch: each task's stream time, and the (record, window) pairs `idx` that came too
        late (not `on_time`) counted, their records dead-lettered when the node says so."""
        now = self.clock()
        for t, s in last.items():
            self.stream_time[t] = max(self.stream_time.get(t, s), s)
            self.last_record_at[t] = now
        late_pairs = int((~on_time).sum())
        self.late_drops += late_pairs
        if late_pairs and self.node.late == "dead_letter":
            for label in batch.index[_without(len(batch), idx[on_time])]:
                self.rejected[int(label)] = f"{self.name}: late record (past window end + grace)"

    def _reads(self, batch: pd.DataFrame) -> list:
        """The columns the aggregation reads (every column for reduce/aggregate, whose functions get
        whole rows), so that only those are copied for each (record, window) pair."""
        if self.fold is not None:
            return list(batch.columns)
        used = set(self.keys) | {s.column for s in self.specs if s.column is not None}
        return [c for c in batch.columns if c in used]

    def _aggregate(self, pairs: pd.DataFrame) -> pd.DataFrame:
        index = self.index_names
        grouped = pairs.groupby(index, sort=False)
        extra = pd.DataFrame({TS: grouped[TS].max(), TASK: grouped[TASK].last()})
        if self.window is not None:
            extra[WE] = grouped[WE].first()
        old = self.store.get(extra.index)
        if self.fold is not None:
            groups = (list(pairs[index].itertuples(index=False, name=None)) if len(index) > 1
                      else pairs[index[0]].tolist())
            rows = pairs.drop(columns=[TS, TASK, WS, WE], errors="ignore").to_dict("records")
            current = dict(zip(old.index, old[FOLD])) if FOLD in old else {}
            current = {k: v for k, v in current.items() if not (isinstance(v, float) and v != v)}
            if self.fold.column is not None:
                rows = [r[self.fold.column] for r in rows]
            folded = self.fold.run(groups, rows, current)
            state = pd.DataFrame({FOLD: pd.Series(folded, dtype=object)}).reindex(extra.index)
        else:
            state = agg.combine(old, agg.partial(grouped, self.specs), self.specs)
        if TS in old:
            extra[TS] = np.maximum(extra[TS].to_numpy(), old[TS].fillna(-1).to_numpy(dtype="int64"))
        if self.final:
            extra[EMITTED] = False
        return pd.concat([state, extra], axis=1)

    # --- output ----------------------------------------------------------------------------------
    def _emit(self, changed: pd.DataFrame) -> pd.DataFrame | None:
        if not self.final:
            out = self._rows(changed) if len(changed) else None
            self._purge()
            return out
        frame = self.store.frame
        if frame.empty:
            return None
        st = self._stream_time_of(frame[TASK].to_numpy())
        due = (~frame[EMITTED].astype(bool).to_numpy()) & (frame[WE].to_numpy() + self.closes_after <= st)
        if not due.any():
            self._purge()
            return None
        closed = frame[due]
        self.store.mark(due, EMITTED, True)
        self._purge()
        return self._rows(closed.sort_values([WE, TS], kind="stable"))

    def _purge(self) -> None:
        if self.window is None or self.store.frame.empty:
            return
        frame = self.store.frame
        st = self._stream_time_of(frame[TASK].to_numpy())
        old = frame[WE].to_numpy() + max(self.window.retention, self.closes_after) <= st
        if self.final:
            old &= frame[EMITTED].astype(bool).to_numpy()
        if old.any():
            self.store.delete(frame.index[old])

    def _stream_time_of(self, task: np.ndarray) -> np.ndarray:
        """The stream time of each row's task (-inf for a task with none yet), looked up in one take."""
        task = task.astype("int64", copy=False)
        table = np.full(int(task.max()) + 1 if len(task) else 1, -np.inf)
        for t, st in self.stream_time.items():
            if t < len(table):
                table[t] = st
        return table[task]

    def _rows(self, state: pd.DataFrame) -> pd.DataFrame:
        """State rows → output rows: keys, window bounds, aggregates, and metadata columns."""
        if self.fold is not None:
            values = state[FOLD].tolist()
            if values and all(isinstance(v, dict) for v in values):
                out = pd.DataFrame(values, index=state.index)
            else:
                out = pd.DataFrame({self.node.fold_name: values}, index=state.index)
        else:
            out = agg.finalize(state, self.specs)
        return self._decorate(out.reset_index(), state)

    def _decorate(self, out: pd.DataFrame, state: pd.DataFrame) -> pd.DataFrame:
        """Output rows (index columns, then aggregates) given window bounds and metadata columns
        from the state rows, position by position."""
        if self.window is not None:
            out[WS] = ms_to_datetime(out[WS].to_numpy())
            out.insert(out.columns.get_loc(WS) + 1, WE, ms_to_datetime(state[WE].to_numpy()))
        keys = out[self.keys]
        out["_key"] = (
            keys.iloc[:, 0].to_numpy()
            if len(self.keys) == 1
            else list(keys.itertuples(index=False, name=None))
        )
        out["_timestamp"] = ms_to_datetime(state[TS].to_numpy(dtype="int64"))
        out["_partition"] = state[TASK].to_numpy(dtype="int64")
        out["_offset"] = -1
        out["_headers"] = None
        out["_tombstone"] = False
        return out

    def current_rows(self) -> pd.DataFrame | None:
        """The table as the (restored) state holds it: every window, or the emitted ones when final."""
        frame = self.store.frame
        if frame.empty:
            return None
        if self.final:
            frame = frame[frame[EMITTED].astype(bool)]
        return self._rows(frame) if len(frame) else None

    # --- wall clock ------------------------------------------------------------------------------
    def on_idle(self) -> pd.DataFrame | None:
        """close_after: a task quiet for that long has its stream time moved on by the quiet time,
        so its windows close (and emit, in "final" mode) without waiting for a next record."""
        quiet = self.node.close_after
        if quiet is None or self.window is None:
            return None
        now = self.clock()
        moved = False
        for t, seen in list(self.last_record_at.items()):
            idle_ms = int((now - seen) * 1000)
            if idle_ms >= quiet:
                self.stream_time[t] = self.stream_time.get(t, 0) + idle_ms
                self.last_record_at[t] = now
                moved = True
        if not moved:
            return None
        self.store.meta["stream_time"] = dict(self.stream_time)
        return self._emit(pd.DataFrame()) if self.final else (self._purge() or None)


def _single_key(keys: pd.DataFrame) -> pd.Series:
    if keys.shape[1] == 1:
        return keys.iloc[:, 0]
    return pd.Series(
        ["\x1f".join(map(str, row)) for row in keys.itertuples(index=False, name=None)], index=keys.index
    )


def _without(n: int, kept: np.ndarray) -> np.ndarray:
    """Positions in range(n) not in `kept` (records none of whose windows took them)."""
    out = np.ones(n, dtype=bool)
    out[kept] = False
    return np.flatnonzero(out)


def _stream_times(task: np.ndarray, ts: np.ndarray, before: dict) -> tuple[np.ndarray, dict]:
    """Each record's stream time (the max event time of its task so far, this record included, and
    the task's stream time before the batch), and each task's stream time after the batch."""
    small = len(task) and 0 <= task.min() and task.max() < 1 << 16  # partitions: a radix sort
    order = np.argsort(task.astype(np.uint16) if small else task, kind="stable")
    sorted_task = task[order]
    starts = np.flatnonzero(np.diff(sorted_task, prepend=sorted_task[:1] - 1))
    ends = np.append(starts[1:], len(order))
    out = np.empty(len(ts), dtype=np.int64)
    last = {}
    for s, e in zip(starts.tolist(), ends.tolist()):
        t = int(sorted_task[s])
        running = np.maximum.accumulate(ts[order[s:e]])
        if before:  # a task without a stream time yet counts as -1 when others have one
            running = np.maximum(running, before.get(t, -1))
        out[order[s:e]] = running
        last[t] = int(running[-1])
    return out, last


def _utf8_keys(keys: pd.DataFrame) -> np.ndarray:
    """Rows whose text keys are UTF-8: a key decoded from bytes that are not keeps them as lone
    surrogates, which no store, changelog or output topic can encode. One encode of the distinct keys
    per column when all are fine (the usual case)."""
    ok = np.ones(len(keys), dtype=bool)
    for name in keys.columns:
        column = keys[name]
        if column.dtype != object:
            continue
        texts = [k for k in column.dropna().unique() if isinstance(k, str)]
        try:
            "".join(texts).encode("utf-8")
        except UnicodeEncodeError:
            bad = [k for k in texts if not _encodes(k)]
            ok &= ~column.isin(bad).to_numpy()
    return ok


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
