"""Brute-force evaluation of Kafka Streams' windowed-aggregation + ``suppress(untilWindowCloses)`` rules.

A plain-Python model of exactly what ``tests/oracle/kstreams/.../WindowOracle.java`` computes, written
from the rules in the docstring of :mod:`tests.oracle.kstreams` (which cites the Kafka Streams 4.3.1
classes they come from). It is an oracle in its own right: no Kafka, no Java, deterministic.

>>> import pandas as pd
>>> recs = pd.DataFrame({"key": ["a", "a", "a"], "ts": [1, 12, 3], "amount": [1.0, 2.0, 4.0],
...                      "partition": [0, 0, 0]})
>>> final_windows(recs, window="tumbling", size_ms=10)[["key", "window_start", "count", "sum"]].values.tolist()
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
) -> pd.DataFrame:
    """The final (suppressed) windowed count/sum per key that Kafka Streams emits for ``records``."""
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
    else:
        raise ValueError(f"window must be 'tumbling', 'hopping' or 'session', got {window!r}")
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


def _public(agg: dict) -> dict:
    return {c: agg[c] for c in COLUMNS}
