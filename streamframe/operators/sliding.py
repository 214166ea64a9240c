"""Sliding windows, record by record, exactly as Kafka Streams' KStreamSlidingWindowAggregate.

A sliding window `[start, start + d]` (both ends inclusive; `window_end = start + d`) exists only where
the set of records in it changes: a record at `ts` has its left window `[ts - d, ts]` and, if a record
of its key follows within `d`, its right window `[ts + 1, ts + 1 + d]`. Per record (stream time `st` of
its task, this record included, and `close = st - grace`):

* dropped as late when `ts + d < close` (even the newest window it could be in is closed);
* `ts < d`: the window `[0, d]` stands in for its left window (`processEarly`);
* otherwise the stored windows of its key starting in `[ts - 2d, ts + 1]` are visited newest first
  (`processReverse`): windows containing `ts` are updated; the left window is updated if it exists,
  else created from the newest window ending before `ts` (when that one's newest record lies in
  `[ts - d, ts)`) or empty; the previous record's right window is created if missing; the record's own
  right window is created as a copy of the newest window containing both `ts` and a later record.
* a window is updated only if `window_end >= close`, else that (record, window) pair is late.

Windows are final when `window_end + grace <= st` (suppress(untilWindowCloses)); note the inclusive
end: a window at `window_end == st - grace` is emitted and can still be updated, and so emitted again.
The window store's retention (default `2d + grace`) is measured from its own clock — the largest window
start it has stored per task — and windows older than that are invisible to later records.
The full rules, with the Kafka Streams methods they come from: tests/oracle/kstreams.py, section (f).
"""

from __future__ import annotations

import copy

import pandas as pd

from streamframe.operators import aggregate as agg
from streamframe.operators.window import EMITTED, FOLD, TASK, TS, WE, AggregateOp


class SlidingAggregateOp(AggregateOp):
    """`groupby(...).window(sliding=d, grace=g)` aggregations (named aggregations or folds)."""

    def __init__(self, node):
        super().__init__(node)
        self.store_time: dict[int, int] = {}
        if self.fold is None:
            self.columns = [c for i, s in enumerate(node.specs) for c in agg.state_columns(s, i)]
            self.sources = {c: (s.column, c.split(":", 1)[1]) for i, s in enumerate(node.specs)
                            for c in agg.state_columns(s, i)}
        else:
            self.columns, self.sources = [FOLD], {}

    @property
    def closes_after(self) -> int:
        """Final when window_end + grace <= stream time (the suppress rule; the end itself is inclusive)."""
        return self.window.grace

    def open(self, ctx) -> None:
        super().open(ctx)
        self.store_time = {int(k): int(v) for k, v in self.store.meta.get("store_time", {}).items()}

    # --- per batch -------------------------------------------------------------------------------
    def process(self, batch: pd.DataFrame) -> pd.DataFrame | None:
        prepared = self._prepare(batch)
        if prepared is None:
            return None
        batch, keys, ts, task, _ = prepared
        key_rows = list(keys.itertuples(index=False, name=None))
        run = _Run(self, self._load(set(key_rows)))
        adds = self._contributions(batch)
        late_labels = []
        for i, key in enumerate(key_rows):
            if not run.record(key, int(ts[i]), int(task[i]), adds(i)):
                late_labels.append(batch.index[i])
        # ---- commit: nothing above changed any state ----
        self.stream_time, self.store_time = run.stream_time, run.store_time
        for p in set(task.tolist()):
            self.last_record_at[int(p)] = self.clock()
        self.late_drops += run.late
        if late_labels and self.node.late == "dead_letter":
            for label in late_labels:
                self.rejected[int(label)] = f"{self.name}: late record (all its sliding windows were closed)"
        changed = self._to_frame(run.changed)
        if len(changed):
            self.store.upsert(changed)
        self.store.meta["stream_time"] = dict(self.stream_time)
        self.store.meta["store_time"] = dict(self.store_time)
        return self._emit(changed)

    def _contributions(self, batch: pd.DataFrame):
        """i -> a function adding record i to a window state (None: the initializer's empty state)."""
        if self.fold is not None:
            rows = batch.drop(columns=[TS, TASK, WE], errors="ignore").to_dict("records")
            if self.fold.column is not None:
                rows = [r[self.fold.column] for r in rows]
            fold = self.fold

            def add_fold(i):
                # A copy: one aggregate can seed two windows, and add() may change it in place.
                return lambda state: {FOLD: fold.run([0], [rows[i]], {} if state is None else
                                                     {0: copy.deepcopy(state[FOLD])})[0]}
            return add_fold
        values = {c: batch[col].tolist() if col is not None and col in batch else [None] * len(batch)
                  for c, (col, _) in self.sources.items()}
        columns, sources = self.columns, self.sources

        def add_named(i):
            one = {c: agg.one("size" if kind == "count" and col is None else kind, values[c][i])
                   for c, (col, kind) in sources.items()}
            return lambda state: dict(one) if state is None else \
                {c: agg.merge(sources[c][1], state[c], one[c]) for c in columns}
        return add_named

    def _load(self, keys: set) -> dict:
        """The stored windows of `keys`: {key tuple: {start: [state, ts, task]}}."""
        frame = self.store.frame
        out: dict = {k: {} for k in keys}
        if frame.empty:
            return out
        group = frame.index.droplevel(-1)
        wanted = list(keys) if group.nlevels > 1 else [k[0] for k in keys]
        frame = frame[group.isin(wanted)]
        for idx, row in zip(frame.index, frame.to_dict("records")):
            out[tuple(idx[:-1])][int(idx[-1])] = [{c: row[c] for c in self.columns},
                                                  int(row[TS]), int(row[TASK])]
        return out

    def _to_frame(self, changed: dict) -> pd.DataFrame:
        if not changed:
            return pd.DataFrame()
        index = pd.MultiIndex.from_tuples(list(changed), names=self.index_names)
        size = self.window.size
        rows = [{**state, WE: k[-1] + size, TS: t, TASK: p} for k, (state, t, p) in changed.items()]
        frame = pd.DataFrame(rows, index=index)
        if self.final:
            frame[EMITTED] = False
        return frame


class _Run:
    """One batch of KStreamSlidingWindowAggregateProcessor.process calls on copies of the op's state."""

    def __init__(self, op: SlidingAggregateOp, windows: dict):
        self.d, self.grace, self.retention = op.window.size, op.window.grace, op.window.retention
        self.stream_time = dict(op.stream_time)
        self.store_time = dict(op.store_time)
        self.windows = windows  # key -> {start: [state, ts, task]}
        self.changed: dict = {}  # key + (start,) -> [state, ts, task]
        self.late = 0

    def record(self, key: tuple, ts: int, task: int, add) -> bool:
        """Process one record; False when it was aggregated into no window (late)."""
        st = max(self.stream_time.get(task, -1), ts)
        self.stream_time[task] = st
        close = st - self.grace
        if ts + self.d < close:
            self.late += 1
            return False
        self.rec = (key, ts, task, add, close)
        self.accepted = False
        if ts < self.d:
            self._early()
        else:
            self._reverse()
        return self.accepted

    # --- the window store --------------------------------------------------------------------------
    def _fetch(self, key, task: int, lo: int, hi: int, backward: bool) -> list:
        # A RocksDB window store hides windows starting before its own clock - retention + 1.
        lo = max(lo, self.store_time.get(task, -1) - self.retention + 1)
        wins = self.windows[key]
        return [(s, wins[s]) for s in sorted((s for s in wins if lo <= s <= hi), reverse=backward)]

    def _put(self, key, start: int, value: list) -> None:
        task = value[2]
        self.store_time[task] = max(self.store_time.get(task, -1), start)
        self.windows[key][start] = value
        self.changed[key + (start,)] = value

    def _update(self, start: int, state, wts: int) -> None:
        """updateWindowAndForward: add the record to [start, start + d] unless that window is closed."""
        key, ts, task, add, close = self.rec
        if start + self.d >= close:
            self._put(key, start, [add(state), max(ts, wts), task])
            self.accepted = True
        else:
            self.late += 1

    # --- the processor -----------------------------------------------------------------------------
    def _reverse(self) -> None:
        key, ts, task, _, _ = self.rec
        d = self.d
        starts: set = set()
        left = right = prev = None
        left_done = right_done = False
        for start, (state, wts, _) in self._fetch(key, task, max(0, ts - 2 * d), ts + 1, backward=True):
            starts.add(start)
            end = start + d
            if start == ts + 1:
                right_done = True
            elif end > ts:
                if right is None:
                    right = (state, wts)
                self._update(start, state, wts)
            elif end == ts:
                left_done = True
                self._update(start, state, wts)
                if wts < ts:
                    prev = wts
                else:
                    return  # a record at this ts came before: its windows exist
            else:
                left, prev = (state, wts), wts
                break
        if prev is not None and prev + 1 not in starts and prev + 1 + d >= ts:
            self._update(prev + 1, None, ts)  # the previous record's right window
        if not left_done:
            self._update(ts - d, left[0] if prev is not None and ts - d <= prev else None, ts)
        if not right_done and right is not None and right[1] > ts:
            self._put(key, ts + 1, [right[0], right[1], task])  # a copy: the record is not in it

    def _early(self) -> None:
        """0 <= ts < d: the window [0, d] holds every record before d (no window starts before 0)."""
        key, ts, task, _, _ = self.rec
        combined = right = prev = None
        right_done = False
        starts: set = set()
        for start, (state, wts, _) in self._fetch(key, task, 0, ts + 1, backward=False):
            starts.add(start)
            if start == 0:
                combined = (state, wts)
                if wts < ts:
                    prev = wts
            elif start <= ts:
                right = (state, wts)
                self._update(start, state, wts)
            else:
                right_done = True
        if right is None and combined is not None and combined[1] > ts:
            right = combined
        if not right_done and right is not None and right[1] > ts:
            self._put(key, ts + 1, [right[0], right[1], task])
        if prev is not None and prev + 1 not in starts:
            self._update(prev + 1, None, ts)
        self._update(0, *(combined if combined is not None else (None, ts)))
