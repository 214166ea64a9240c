"""The windowed stream–stream join (`left.join(right_stream, within=, grace=, how=)`): Kafka Streams'
windowed KStream joins record by record, rule for rule, with both sides' window stores and the
outer-join store of records still waiting for a match (the rules: tests/oracle/joins.py).
"""

from __future__ import annotations

import bisect
import heapq

import numpy as np
import pandas as pd

from streamframe.operators.base import Operator
from streamframe.operators.join import _values
from streamframe.records import tombstones
from streamframe.serde import key_bytes
from streamframe.time.extract import datetime_to_ms, ms_to_datetime

_MAX_LONG = 2**63 - 1
_LEFT, _RIGHT = 1, 0  # the side byte of TimestampedKeyAndJoinSide: right sorts before left at one timestamp
_SIDE_BYTE = (_LEFT, _RIGHT)


def _java_long(x: int) -> int:
    """`x` as a Java long (two's-complement wrap-around), for Kafka Streams' overflowing minTime sum."""
    return (x + 2**63) % 2**64 - 2**63


class _JoinTask:
    """One task's state (a co-partitioned partition pair, as in Kafka Streams): the shared TimeTracker
    (stream time, minTime), both sides' window stores with their own max timestamps, and the
    outer-join store of left/outer records still waiting for a match."""

    __slots__ = ("p", "stream_time", "min_time", "max_ts", "windows", "expiry", "outer", "order")

    def __init__(self, p: int, stream_time: int = -1, min_time: int = _MAX_LONG, max_left: int = -1,
                 max_right: int = -1):
        self.p, self.stream_time, self.min_time = p, stream_time, min_time
        self.max_ts = [max_left, max_right]
        self.windows: tuple[dict, dict] = ({}, {})  # side -> {key bytes: [(ts, id, values), ...] by (ts, id)}
        self.expiry: tuple[list, list] = ([], [])  # side -> heap of (ts, id, key bytes)
        self.outer: dict = {}  # (ts, side byte, key bytes) -> [key, [(id, values), ...]]
        self.order: list = []  # the outer store's keys, sorted (its iteration order)

    def meta(self) -> tuple:
        return (self.stream_time, self.min_time, self.max_ts[0], self.max_ts[1])


class StreamStreamJoinOp(Operator):
    """`left.join(right_stream, within=, grace=, how=)`: Kafka Streams' KStream#join / leftJoin / outerJoin
    with JoinWindows.ofTimeDifferenceAndGrace(within, grace), record by record, rule for rule (the rules,
    with the Kafka Streams methods they come from: tests/oracle/joins.py).

    Per task (partition): a left (k, t) and a right (k, s) join iff `t - within <= s <= t + within`, each
    match emitted at once (timestamp max(t, s)), in the other side's timestamp order; a record sees the
    other side's records newer than that side's max timestamp minus `2 * within + grace` (the window
    stores' retention). Stream time is shared by both sides and advanced by every record, null keys and
    values too. Left/outer records that found no match wait in the outer-join store and are emitted (with
    their own timestamp, NaN for the other side) by the first in-order record after stream time passed
    `t + within + grace`, with Kafka Streams' minTime shortcut; a record already older than
    `stream time - within` is emitted at once. Nothing is emitted at the end of the input.

    State: `windows` (both window stores) and `outer` TableStores keyed by a record id, and the trackers
    in the stores' meta, so a restarted query continues exactly (Kafka Streams itself restarts its
    TimeTracker; streamframe matches an uninterrupted run).
    """

    stateful = True
    by_side = True

    def __init__(self, node):
        super().__init__(node)
        self.before = self.after = int(node.within)  # JoinWindows' beforeMs, afterMs
        self.grace = int(node.grace or 0)
        self.retention = self.before + self.after + self.grace  # StreamJoinedStoreFactory#retentionPeriod
        self.outer_side = (node.how in ("left", "outer"), node.how == "outer")  # leftOuter, rightOuter
        self.spurious_fix = node.how != "inner"  # the outer-join store exists (ofTimeDifferenceAndGrace)
        self.tasks: dict[int, _JoinTask] = {}
        self.columns: tuple[list, list] = ([], [])  # value columns seen per side, in order
        self.seq = 0
        self._partitions = 1
        self._task_of: dict = {}

    # --- state ---------------------------------------------------------------------------------------
    def open(self, ctx) -> None:
        self.window_store = ctx.store(self, ["_id"], suffix="windows")
        self.outer_store = ctx.store(self, ["_id"], suffix="outer")
        self._partitions = max(1, int(getattr(ctx, "partitions", 1) or 1))
        meta = self.window_store.meta
        self.seq = int(meta.get("seq", 0))
        self.columns = (list(meta.get("left_columns", [])), list(meta.get("right_columns", [])))
        self.tasks = {int(p): _JoinTask(int(p), *map(int, v)) for p, v in meta.get("tasks", {}).items()}
        frame = self.window_store.frame
        if len(frame):
            for rid, p, side, kb, ts, vals in zip(frame.index, frame["task"], frame["side"], frame["kb"],
                                                  frame["ts"], frame["vals"]):
                task = self._task(int(p))
                task.windows[int(side)].setdefault(kb, []).append((int(ts), int(rid), vals))
                task.expiry[int(side)].append((int(ts), int(rid), kb))
            for task in self.tasks.values():
                for side in (0, 1):
                    for entries in task.windows[side].values():
                        entries.sort(key=lambda e: e[:2])
                    heapq.heapify(task.expiry[side])
        frame = self.outer_store.frame
        if len(frame):
            rows = sorted(
                zip(
                    frame.index,
                    frame["task"],
                    frame["side"],
                    frame["kb"],
                    frame["key"],
                    frame["ts"],
                    frame["vals"],
                ),
                key=lambda r: int(r[0]),
            )
            for rid, p, side, kb, key, ts, vals in rows:
                task = self._task(int(p))
                okey = (int(ts), _SIDE_BYTE[int(side)], kb)
                if okey not in task.outer:
                    task.outer[okey] = [key, []]
                    bisect.insort(task.order, okey)
                task.outer[okey][1].append((int(rid), vals))
        self._changes = ({}, set(), {}, set())  # window rows added, removed; outer rows added, removed

    def _task(self, p: int) -> _JoinTask:
        task = self.tasks.get(p)
        if task is None:
            task = self.tasks[p] = _JoinTask(p)
        return task

    def _save(self) -> None:
        for store, added, removed in (
            (self.window_store, *self._changes[:2]),
            (self.outer_store, *self._changes[2:]),
        ):
            if removed:
                store.delete(pd.Index(list(removed), name="_id"))
            if added:
                store.upsert(pd.DataFrame(list(added.values()), index=pd.Index(list(added), name="_id")))
            added.clear()
            removed.clear()
        self.window_store.meta.update(
            seq=self.seq,
            left_columns=list(self.columns[0]),
            right_columns=list(self.columns[1]),
            tasks={p: t.meta() for p, t in self.tasks.items()},
        )

    def _removed(self, which: int, rid: int) -> None:
        added, removed = self._changes[2 * which], self._changes[2 * which + 1]
        if added.pop(rid, None) is None:
            removed.add(rid)

    # --- per batch -----------------------------------------------------------------------------------
    def process_side(self, side: int, batch: pd.DataFrame) -> pd.DataFrame | None:
        if batch.empty:
            return None
        on = self.node.on if self.node.on is not None else "_key"
        cols = _values(batch)
        seen = self.columns[side]
        seen.extend(c for c in cols if c not in seen)
        n = len(batch)
        ts = datetime_to_ms(batch["_timestamp"]).tolist()
        keys = batch[on].tolist() if on in batch else [None] * n
        null_value = tombstones(batch).tolist()
        values = batch[cols].to_dict("records")
        parts = batch["_partition"].tolist() if "_partition" in batch else [0] * n
        out: list = []
        for i in range(n):
            kb = key_bytes(keys[i])
            task = self._task(int(parts[i]) if self.node.on is None or kb is None else self._partition(kb))
            self._record(task, side, i, keys[i], kb, int(ts[i]), values[i], bool(null_value[i]), out)
        self._save()
        return self._frame(batch, out) if out else None

    def _partition(self, kb: bytes) -> int:
        """The task a record joining on a column would go to: its repartition topic's partition."""
        from streamframe.operators.partitioner import partition_for

        p = self._task_of.get(kb)
        if p is None:
            if len(self._task_of) > 1_000_000:
                self._task_of = {}
            p = self._task_of[kb] = partition_for(kb, self._partitions)
        return p

    def _record(
        self, task: _JoinTask, side: int, i: int, key, kb, t: int, vals: dict, null_value: bool, out: list
    ) -> None:
        """KStreamKStreamJoinProcessor#process for one record, then KStreamJoinWindow's put."""
        task.stream_time = max(task.stream_time, t)
        if kb is None:
            if self.outer_side[side] and not null_value:  # KIP-962: a null key on an outer side
                out.append((i, None, t, side, vals, None))
            return
        if null_value:
            return
        if self.spurious_fix and t == task.stream_time:
            self._emit_closed(task, side, i, out)
        other = 1 - side
        before, after = (self.before, self.after) if side == 0 else (self.after, self.before)
        lo = max(0, t - before, task.max_ts[other] - self.retention + 1)  # the store's retention bound
        hi = max(0, t + after)
        matched = False
        entries = task.windows[other].get(kb)
        if entries:
            a = bisect.bisect_left(entries, (lo, -1))
            b = bisect.bisect_right(entries, (hi, _MAX_LONG))
            for other_ts, _rid, other_vals in entries[a:b]:
                matched = True
                if self.spurious_fix:
                    self._drop_pending(task, (other_ts, _SIDE_BYTE[other], kb))
                out.append((i, key, max(t, other_ts), side, vals, other_vals))
        rid = self.seq
        self.seq += 1
        if self.outer_side[side] and not matched:
            if not self.spurious_fix or hi < task.stream_time:  # too old to wait for a match (no grace)
                out.append((i, key, t, side, vals, None))
            else:
                task.min_time = min(task.min_time, t)
                okey = (t, _SIDE_BYTE[side], kb)
                if okey not in task.outer:
                    task.outer[okey] = [key, []]
                    bisect.insort(task.order, okey)
                task.outer[okey][1].append((rid, vals))
                self._changes[2][rid] = {
                    "task": task.p,
                    "side": side,
                    "kb": kb,
                    "key": key,
                    "ts": t,
                    "vals": vals,
                }
        bisect.insort(task.windows[side].setdefault(kb, []), (t, rid, vals), key=lambda e: e[:2])
        heapq.heappush(task.expiry[side], (t, rid, kb))
        task.max_ts[side] = max(task.max_ts[side], t)
        self._changes[0][rid] = {"task": task.p, "side": side, "kb": kb, "ts": t, "vals": vals}
        self._expire(task, side)

    def _expire(self, task: _JoinTask, side: int) -> None:
        """Drop window-store records no later record can see any more (ts <= max ts - retention)."""
        heap, bound = task.expiry[side], task.max_ts[side] - self.retention
        while heap and heap[0][0] <= bound:
            _ts, rid, kb = heapq.heappop(heap)
            entries = task.windows[side][kb]
            entries.pop(0)  # the oldest of its key, as it is the oldest of the side
            if not entries:
                del task.windows[side][kb]
            self._removed(0, rid)

    def _drop_pending(self, task: _JoinTask, okey: tuple) -> None:
        entry = task.outer.pop(okey, None)
        if entry is None:
            return
        del task.order[bisect.bisect_left(task.order, okey)]
        for rid, _vals in entry[1]:
            self._removed(1, rid)

    def _emit_closed(self, task: _JoinTask, side: int, i: int, out: list) -> None:
        """emitNonJoinedOuterRecords (emit interval 0): the outer store's records whose window closed."""
        after = self.after if side == 0 else self.before  # joinAfterMs of the processing side
        if _java_long(task.min_time + after + self.grace) >= task.stream_time:
            return
        task.min_time = _MAX_LONG
        left_open = right_open = False
        done = []
        for okey in task.order:
            task.min_time = okey[0]
            if left_open and right_open:
                break
            is_left = okey[1] == _LEFT
            if okey[0] + (self.after if is_left else self.before) + self.grace >= task.stream_time:
                if is_left:
                    left_open = True
                else:
                    right_open = True
                continue
            key, items = task.outer[okey]
            for _rid, vals in items:
                out.append((i, key, okey[0], 0 if is_left else 1, vals, None))
            done.append(okey)
        for okey in done:
            self._drop_pending(task, okey)

    def _frame(self, batch: pd.DataFrame, out: list) -> pd.DataFrame:
        """Output rows: left values, then right values (a name the left side has gets suffixes[1]);
        `on` (a column join) once, holding the key."""
        on, suffix = self.node.on, self.node.suffixes[1]
        clash = set(self.columns[0])
        rename = {c: f"{c}{suffix}" if c in clash else c for c in self.columns[1] if c != on}
        rows = []
        for _i, key, _t, side, this, other in out:
            left, right = (this, other) if side == 0 else (other, this)
            row = dict(left) if left else {}
            if right:
                row.update((rename[c], v) for c, v in right.items() if c != on)
            if on is not None:
                row[on] = key
            rows.append(row)
        present = set().union(*rows)
        order = [c for c in self.columns[0] if c in present]
        if on is not None and on not in order:
            order.insert(0, on)
        order += [
            c for c in (rename[c] for c in self.columns[1] if c != on) if c in present and c not in order
        ]
        pos = np.array([o[0] for o in out])
        data = {c: [row.get(c, np.nan) for row in rows] for c in order}
        keys = np.empty(len(out), dtype=object)
        keys[:] = [o[1] for o in out]
        data["_key"] = keys
        data["_timestamp"] = ms_to_datetime([o[2] for o in out])
        for meta in ("_partition", "_offset", "_headers"):
            if meta in batch:
                data[meta] = batch[meta].to_numpy()[pos]
        return pd.DataFrame(data, index=batch.index[pos])
