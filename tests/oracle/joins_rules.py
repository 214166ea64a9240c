"""A record-by-record Python model of Kafka Streams' stream–stream windowed join rules.

Written from the rules in the docstring of :mod:`tests.oracle.joins` ("Stream-stream windowed joins",
Kafka Streams 4.3.1 ``KStreamKStreamJoin`` with ``JoinWindows.ofTimeDifferenceAndGrace(within, grace)``
and the oracle's emit interval 0), as plainly as possible: lists scanned in full, no indexes, so that it
checks ``streamframe/operators/stream_join.py``'s ``StreamStreamJoinOp`` rather than repeating its code.

>>> recs = [
...     {"side": "left", "key": "a", "value": {"l": 1}, "ts": 100},
...     {"side": "right", "key": "a", "value": {"r": 1}, "ts": 105},
...     {"side": "left", "key": "b", "value": {"l": 2}, "ts": 120},
... ]
>>> stream_stream_join(recs, "left", within=10, grace=0)
[('a', {'l': 1}, {'r': 1}, 105)]
>>> recs.append({"side": "left", "key": "c", "value": {"l": 3}, "ts": 131})
>>> stream_stream_join(recs, "left", within=10, grace=0)[1:]
[('b', {'l': 2}, None, 120)]

``records``: dicts with ``side`` ("left"/"right"), ``key`` (str, or None: a null key), ``value`` (a dict,
or None: a null value), ``ts`` (ms), optional ``task`` (default 0: a partition pair; each task has its
own stream time and stores), in the order the task processes them. Returns the join's output records in
emission order: ``(key, left value or None, right value or None, timestamp)``.
"""

from __future__ import annotations

LONG_MAX = 2**63 - 1
SIDE_BYTE = {"left": 1, "right": 0}  # TimestampedKeyAndJoinSide: right before left at one timestamp


def _as_long(x: int) -> int:
    return (x + 2**63) % 2**64 - 2**63


class _Task:
    def __init__(self):
        self.stream_time = -1  # ConsumerRecord.NO_TIMESTAMP
        self.min_time = LONG_MAX
        self.windows = {"left": [], "right": []}  # (key, ts, seq, value), in put order
        self.observed = {"left": -1, "right": -1}  # each window store's max put timestamp
        self.outer = []  # (ts, side, key, seq, value): the outer-join store's entries


def stream_stream_join(records, how: str, within: int, grace: int = 0) -> list[tuple]:
    if how not in ("inner", "left", "outer"):
        raise ValueError(how)
    before = after = within
    retention = before + after + grace
    outer_of = {"left": how in ("left", "outer"), "right": how == "outer"}
    has_outer_store = how != "inner"
    tasks: dict = {}
    out: list = []
    seq = 0

    def joined(side, this, other):
        return (this, other) if side == "left" else (other, this)

    for rec in records:
        task = tasks.setdefault(rec.get("task", 0), _Task())
        side, key, value, ts = rec["side"], rec["key"], rec["value"], rec["ts"]
        other_side = "right" if side == "left" else "left"
        join_before, join_after = (before, after) if side == "left" else (after, before)
        outer = outer_of[side]
        # 1. shared stream time, before anything is skipped
        task.stream_time = max(task.stream_time, ts)
        # 2. null key (outer side, non-null value: joined with null at once) / null value: dropped
        if key is None:
            if outer and value is not None:
                out.append((None, *joined(side, value, None), ts))
            continue
        if value is None:
            continue
        # 3. an in-order record first emits the outer store's records whose window closed
        if has_outer_store and ts == task.stream_time:
            if not _as_long(task.min_time + join_after + grace) >= task.stream_time:
                task.min_time = LONG_MAX
                open_sides: set = set()
                emitted = []
                for entry in sorted(task.outer, key=lambda e: (e[0], SIDE_BYTE[e[1]], e[2].encode(), e[3])):
                    e_ts, e_side, e_key, _e_seq, e_value = entry
                    task.min_time = e_ts
                    if open_sides == {"left", "right"}:
                        break
                    look_back = after if e_side == "left" else before
                    if task.min_time + look_back + grace >= task.stream_time:
                        open_sides.add(e_side)
                        continue
                    out.append((e_key, *joined(e_side, e_value, None), e_ts))
                    emitted.append(entry)
                task.outer = [e for e in task.outer if e not in emitted]
        # 4. matches in the other side's window store (what its retention still shows)
        lo = max(0, ts - join_before)
        hi = max(0, ts + join_after)
        visible_from = task.observed[other_side] - retention + 1
        matches = sorted(
            (
                w
                for w in task.windows[other_side]
                if w[0] == key and lo <= w[1] <= hi and w[1] >= visible_from
            ),
            key=lambda w: (w[1], w[2]),
        )
        for _k, o_ts, _o_seq, o_value in matches:
            # the other record's whole (ts, side, key) list leaves the outer store
            task.outer = [e for e in task.outer if (e[0], e[1], e[2]) != (o_ts, other_side, key)]
            out.append((key, *joined(side, value, o_value), max(ts, o_ts)))
        # 5. no match on an outer side: at once if already too old, else wait in the outer store
        if outer and not matches:
            if hi < task.stream_time:
                out.append((key, *joined(side, value, None), ts))
            else:
                task.min_time = min(task.min_time, ts)
                task.outer.append((ts, side, key, seq, value))
        # KStreamJoinWindow: the record enters its own window store after the join processor ran
        task.windows[side].append((key, ts, seq, value))
        task.observed[side] = max(task.observed[side], ts)
        seq += 1
    return out
