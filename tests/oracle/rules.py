"""Brute-force evaluation of Kafka Streams' windowed-aggregation + ``suppress(untilWindowCloses)`` rules.

A plain-Python model of exactly what ``tests/oracle/kstreams/.../WindowOracle.java`` computes, written
from the rules in the docstring of :mod:`tests.oracle.kstreams` (which cites the Kafka Streams 4.3.1
classes they come from). It is an oracle in its own right: no Kafka, no Java, deterministic.

>>> import pandas as pd
>>> recs = pd.DataFrame({"key": ["a", "a", "a"], "ts": [1, 12, 3], "amount": [1.0, 2.0, 4.0],
...                      "partition": [0, 0, 0]})
>>> final_windows(recs, window="tumbling", size_ms=10)[
...     ["key", "window_start", "count", "sum"]].values.tolist()
[['a', 0, 1, 1.0]]
>>> final_windows(recs, window="tumbling", size_ms=10).attrs["dropped_records"]
1

``records`` has columns key, ts, amount, partition, in per-partition offset order (rows of different
partitions may interleave: only the order within a partition matters). Each partition is one Kafka
Streams task with its own stream time, stores and suppression buffer.

The result has columns key, window_start, window_end, count, sum (sorted by key, window_start,
window_end), i.e. the final results Kafka Streams emits for the input as it stands: a window that the
last stream time of its partition has not closed is not in it. ``attrs["dropped_records"]`` is what
the ``dropped-records-total`` task metric would count (one per expired window a record missed, so a
late record in a hopping topology can count several times; plus null keys and negative timestamps).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

NO_TIMESTAMP = -1  # ConsumerRecord.NO_TIMESTAMP: the initial observedStreamTime of every processor

COLUMNS = ["key", "window_start", "window_end", "count", "sum"]


def windows_for(ts: int, size_ms: int, advance_ms: int) -> list[int]:
    """Start times of the time windows containing ``ts`` (``TimeWindows.windowsFor``).

    All ``s = k * advance`` (epoch-aligned, ``s >= 0``) with ``s <= ts < s + size``, ascending.
    """
    start = (max(0, ts - size_ms + advance_ms) // advance_ms) * advance_ms
    out = []
    while start <= ts:
        out.append(start)
        start += advance_ms
    return out


def final_windows(
    records: pd.DataFrame,
    *,
    window: str,
    size_ms: int | None = None,
    advance_ms: int | None = None,
    gap_ms: int | None = None,
    grace_ms: int = 0,
    retention_ms: int | None = None,
) -> pd.DataFrame:
    """The final (suppressed) windowed count/sum per key that Kafka Streams emits for ``records``.

    ``window="sliding"``: ``size_ms`` is the time difference; ``retention_ms`` is the window store's
    retention (default ``2 * size_ms + grace_ms``, as Kafka Streams'), which decides what it can still see.
    """
    if window == "tumbling":
        if size_ms is None or size_ms <= 0:
            raise ValueError("tumbling windows need size_ms > 0")
        advance_ms = size_ms
    elif window == "hopping":
        if size_ms is None or advance_ms is None or not 0 < advance_ms <= size_ms:
            raise ValueError("hopping windows need size_ms > 0 and 0 < advance_ms <= size_ms")
    elif window == "session":
        if gap_ms is None or gap_ms <= 0:
            raise ValueError("session windows need gap_ms > 0")
    elif window == "sliding":
        if size_ms is None or size_ms < 0:
            raise ValueError("sliding windows need size_ms (the time difference) >= 0")
        if retention_ms is not None and retention_ms < 2 * size_ms + grace_ms:
            raise ValueError("a sliding window store's retention must be at least 2 * size_ms + grace_ms")
    else:
        raise ValueError(f"window must be 'tumbling', 'hopping', 'session' or 'sliding', got {window!r}")
    if grace_ms < 0:
        raise ValueError("grace_ms must be >= 0")
    missing = {"key", "ts", "partition"} - set(records.columns)
    if missing:
        raise ValueError(f"records lack columns {sorted(missing)}")

    rows: list[dict] = []
    dropped = 0
    amounts = records["amount"] if "amount" in records.columns else pd.Series([None] * len(records))
    by_partition: dict[int, list[tuple]] = {}
    for key, ts, amount, part in zip(records["key"], records["ts"], amounts, records["partition"]):
        by_partition.setdefault(int(part), []).append((key, ts, amount))
    for part in sorted(by_partition):
        if window == "session":
            emitted, d = _session_task(by_partition[part], gap_ms, grace_ms)
        elif window == "sliding":
            emitted, d = _sliding_task(by_partition[part], size_ms, grace_ms, retention_ms)
        else:
            emitted, d = _time_window_task(by_partition[part], size_ms, advance_ms, grace_ms)
        rows.extend(emitted)
        dropped += d

    out = pd.DataFrame(rows, columns=COLUMNS)
    out = out.astype({"window_start": "int64", "window_end": "int64", "count": "int64", "sum": "float64"})
    out = out.sort_values(["key", "window_start", "window_end"], kind="mergesort").reset_index(drop=True)
    out.attrs["dropped_records"] = dropped
    return out


def _valid(key, ts) -> tuple[bool, int]:
    """(keep?, ts). Negative or missing timestamps are dropped by RecordQueue, null keys by the aggregate."""
    if ts is None or (isinstance(ts, float) and math.isnan(ts)) or int(ts) < 0:
        return False, NO_TIMESTAMP
    if key is None or (isinstance(key, float) and math.isnan(key)):
        return False, int(ts)
    return True, int(ts)


def _amount(amount) -> float:
    """The sum field as a double; a missing or non-numeric value adds 0.0 (the record still counts)."""
    if amount is None or isinstance(amount, (bool, str)):
        return 0.0
    value = float(amount)
    return 0.0 if math.isnan(value) else value


class _SuppressBuffer:
    """``KTableSuppressProcessor`` with ``untilWindowCloses``: buffer by window end, evict when closed."""

    def __init__(self, suppress_ms: int):
        self.suppress_ms = suppress_ms
        self.stream_time = NO_TIMESTAMP
        self.buffer: dict[
            tuple, tuple[int, dict | None]
        ] = {}  # windowed key -> (window end, value or tombstone)
        self.emitted: list[dict] = []

    def process(self, wkey: tuple, window_end: int, value: dict | None, timestamp: int) -> None:
        self.stream_time = max(self.stream_time, timestamp)
        self.buffer[wkey] = (window_end, value)  # same windowed key: replaced
        expiry = self.stream_time - self.suppress_ms
        for k in sorted(
            (k for k, (end, _) in self.buffer.items() if end <= expiry), key=lambda k: self.buffer[k][0]
        ):
            _, val = self.buffer.pop(k)
            if val is not None:  # tombstones are dropped (safeToDropTombstones)
                self.emitted.append(dict(val))


def _time_window_task(recs: Iterable[tuple], size_ms: int, advance_ms: int, grace_ms: int):
    """One task of ``KStreamWindowAggregate`` + suppress for tumbling/hopping windows."""
    observed = NO_TIMESTAMP
    store: dict[tuple, dict] = {}  # (key, start) -> aggregate row, with "_ts" = max record ts in the window
    suppress = _SuppressBuffer(grace_ms)
    dropped = 0
    for key, ts, amount in recs:
        ok, ts = _valid(key, ts)
        if not ok:
            dropped += 1
            continue
        observed = max(observed, ts)  # includes the current record
        close = observed - grace_ms
        for start in windows_for(ts, size_ms, advance_ms):
            end = start + size_ms
            if end > close:
                agg = store.get((key, start))
                if agg is None:
                    agg = {
                        "key": key,
                        "window_start": start,
                        "window_end": end,
                        "count": 0,
                        "sum": 0.0,
                        "_ts": ts,
                    }
                    store[(key, start)] = agg
                agg["count"] += 1
                agg["sum"] = agg["sum"] + _amount(amount)
                agg["_ts"] = max(agg["_ts"], ts)
                suppress.process((key, start, end), end, _public(agg), agg["_ts"])
            else:
                dropped += 1  # "Skipping record for expired window", once per window
    return suppress.emitted, dropped


def _session_task(recs: Iterable[tuple], gap_ms: int, grace_ms: int):
    """One task of ``KStreamSessionWindowAggregate`` (RocksDB session store) + suppress."""
    observed = NO_TIMESTAMP
    store_time = NO_TIMESTAMP  # the session store's own observedStreamTime: max session end put/removed
    retention = gap_ms + grace_ms  # SessionStoreMaterializer.retentionPeriod() default
    sessions: dict[tuple, dict] = {}  # (key, start, end) -> aggregate row
    suppress = _SuppressBuffer(gap_ms + grace_ms)
    dropped = 0
    for key, ts, amount in recs:
        ok, ts = _valid(key, ts)
        if not ok:
            dropped += 1
            continue
        observed = max(observed, ts)
        close = observed - grace_ms - gap_ms
        # store.findSessions(key, ts - gap, ts + gap), limited by the store's retention (getActualFrom)
        earliest_end = max(ts - gap_ms, store_time - retention + 1)
        found = sorted(
            (s for s in sessions if s[0] == key and s[2] >= earliest_end and s[1] <= ts + gap_ms),
            key=lambda s: (s[2], s[1]),
        )
        start = min([ts] + [s[1] for s in found])
        end = max([ts] + [s[2] for s in found])
        if end < close:
            dropped += 1
            continue
        count, total = 0, 0.0
        for s in found:  # the merger, in store order (ascending end)
            count += sessions[s]["count"]
            total = total + sessions[s]["sum"]
        if (start, end) != (ts, ts):
            for s in found:
                del sessions[s]
                store_time = max(store_time, s[2])
                suppress.process(s, s[2], None, s[2])
        agg = {
            "key": key,
            "window_start": start,
            "window_end": end,
            "count": count + 1,
            "sum": total + _amount(amount),
        }
        sessions[(key, start, end)] = agg
        store_time = max(store_time, end)
        suppress.process((key, start, end), end, _public(agg), end)
    return suppress.emitted, dropped


class _SlidingTask:
    """One task of ``KStreamSlidingWindowAggregate`` (its ``processReverse`` path: the default RocksDB
    timestamped window store supports backward fetches) + suppress. See (f) in tests/oracle/kstreams.py.

    The window store maps (key, window start) -> [count, sum, ts], ts being the window's timestamp (the
    max ts of the records aggregated into it, ``ValueTimestampHeaders.timestamp``); ``store_time`` is the
    RocksDB segmented store's own observedStreamTime (max window start put), which hides windows that
    start before ``store_time - retention + 1`` from fetches (``getActualFrom``).
    """

    def __init__(self, size_ms: int, grace_ms: int, retention_ms: int):
        self.d, self.grace, self.retention = size_ms, grace_ms, retention_ms
        self.observed = NO_TIMESTAMP
        self.store_time = NO_TIMESTAMP
        self.store: dict = {}  # key -> {start: [count, sum, ts]}
        self.suppress = _SuppressBuffer(grace_ms)
        self.dropped = 0

    # --- the store ---
    def _fetch(self, key, lo: int, hi: int, backward: bool) -> list[tuple[int, list]]:
        lo = max(lo, self.store_time - self.retention + 1)
        wins = self.store.get(key, {})
        return sorted(((s, list(v)) for s, v in wins.items() if lo <= s <= hi), reverse=backward)

    def _put(self, key, start: int, value: list) -> None:
        self.store_time = max(self.store_time, start)
        self.store.setdefault(key, {})[start] = value

    # --- the processor ---
    def process(self, key, ts: int, amount) -> None:
        self.observed = max(self.observed, ts)  # updateObservedStreamTime
        close = self.observed - self.grace
        if ts + self.d < close:  # even the window [ts, ts + d] is closed: the record is dropped
            self.dropped += 1
            return
        rec = (key, ts, _amount(amount))
        if ts < self.d:
            self._early(rec, close)
        else:
            self._reverse(rec, close)

    def _update(self, rec, start: int, value: list, close: int) -> None:
        """``updateWindowAndForward``: aggregate the record into [start, start + d] unless it is closed."""
        key, ts, amount = rec
        end = start + self.d
        if end >= close:
            new = [value[0] + 1, value[1] + amount, max(ts, value[2])]
            self._put(key, start, new)
            self.suppress.process((key, start, end), end, self._row(key, start, new), new[2])
        else:
            self.dropped += 1  # logSkippedRecordForExpiredWindow, once per closed window

    def _put_right(self, rec, agg: list) -> None:
        """``createCurrentRecordRightWindow``: [ts + 1, ts + 1 + d] gets a copy of ``agg`` (no close
        check)."""
        key, ts, _ = rec
        start = ts + 1
        self._put(key, start, list(agg))
        self.suppress.process(
            (key, start, start + self.d), start + self.d, self._row(key, start, agg), agg[2]
        )

    def _row(self, key, start: int, value: list) -> dict:
        return {
            "key": key,
            "window_start": start,
            "window_end": start + self.d,
            "count": value[0],
            "sum": value[1],
        }

    def _reverse(self, rec, close: int) -> None:
        key, ts, _ = rec
        d = self.d
        starts: set[int] = set()
        left_agg = right_agg = prev = None
        left_done = right_done = False
        for start, value in self._fetch(key, max(0, ts - 2 * d), ts + 1, backward=True):
            starts.add(start)
            end = start + d
            if start == ts + 1:
                right_done = True
            elif end > ts:
                if right_agg is None:
                    right_agg = value
                self._update(rec, start, value, close)
            elif end == ts:
                left_done = True
                self._update(rec, start, value, close)
                if value[2] < ts:
                    prev = value[2]
                else:
                    return  # a record with this ts was seen: its windows exist already
            else:  # end < ts
                left_agg, prev = value, value[2]
                break
        # createWindows
        if prev is not None and prev + 1 not in starts and prev + 1 + d >= ts:
            self._update(rec, prev + 1, [0, 0.0, ts], close)  # createPreviousRecordRightWindow
        if not left_done:
            base = left_agg if prev is not None and ts - d <= prev else [0, 0.0, ts]
            self._update(rec, ts - d, [base[0], base[1], ts], close)
        if not right_done and right_agg is not None and right_agg[2] > ts:
            self._put_right(rec, right_agg)

    def _early(self, rec, close: int) -> None:
        """``processEarly`` (0 <= ts < d): the window [0, d] stands in for every left window."""
        key, ts, _ = rec
        combined = right_agg = prev = None
        right_done = False
        starts: set[int] = set()
        for start, value in self._fetch(key, 0, ts + 1, backward=False):
            starts.add(start)
            if start == 0:
                combined = value
                if value[2] < ts:
                    prev = value[2]
            elif start <= ts:
                right_agg = value
                self._update(rec, start, value, close)
            else:  # start == ts + 1
                right_done = True
        if right_agg is None and combined is not None and combined[2] > ts:
            right_agg = combined
        if not right_done and right_agg is not None and right_agg[2] > ts:
            self._put_right(rec, right_agg)
        if prev is not None and prev + 1 not in starts:
            self._update(rec, prev + 1, [0, 0.0, ts], close)
        self._update(rec, 0, combined if combined is not None else [0, 0.0, ts], close)


def _sliding_task(recs: Iterable[tuple], size_ms: int, grace_ms: int, retention_ms: int | None):
    task = _SlidingTask(size_ms, grace_ms, 2 * size_ms + grace_ms if retention_ms is None else retention_ms)
    for key, ts, amount in recs:
        ok, ts = _valid(key, ts)
        if not ok:
            task.dropped += 1
            continue
        task.process(key, ts, amount)
    return task.suppress.emitted, task.dropped


def _public(agg: dict) -> dict:
    return {c: agg[c] for c in COLUMNS}
