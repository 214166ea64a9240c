"""Timestamp-synchronized input for queries that join: several inputs, one order of event time.

Kafka Streams feeds a task's records from all its input partitions by picking, each time, the
partition whose head record has the smallest timestamp. Taken over a whole partition, that order is
the order of each record's running-maximum timestamp in its partition (a record waits behind the
largest timestamp before it), so this merger sorts decoded rows by that key, keeping each partition's
offset order, with table updates before stream records on a tie — a stream record sees the table as
of its own time. In a bounded run it releases rows only up to the time every unfinished partition has
reached, so the order does not depend on how the broker happened to batch the fetches.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from streamframe.time.extract import datetime_to_ms


class TimeMerger:
    def __init__(self, priority: dict[int, int]):
        self.priority = priority  # source id -> 0 (table side: first on a tie) or 1
        self.entries: list[dict] = []
        self.running: dict[tuple[int, int], int] = {}  # (source id, partition) -> running max ts
        self._seq = itertools.count()
        self._base = 0

    def __len__(self) -> int:
        return sum(len(e["frame"]) for e in self.entries)

    def add(self, src_id: int, raw, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        ts = datetime_to_ms(frame["_timestamp"])
        parts = frame["_partition"].to_numpy()
        key = np.empty(len(frame), dtype="int64")
        for p in np.unique(parts):
            rows = np.flatnonzero(parts == p)
            seed = self.running.get((src_id, int(p)), -1)
            running = np.maximum.accumulate(np.maximum(ts[rows], seed))
            key[rows] = running
            self.running[(src_id, int(p))] = int(running[-1])
        # Labels unique across raw batches (base + position), so one chunk can span several batches of
        # a source and an error still names its record (see `locate`).
        base = self._base
        self._base += len(raw)
        frame = frame.set_axis(frame.index + base)
        self.entries.append({"src": src_id, "raw": raw, "base": base, "frame": frame, "key": key,
                             "min": int(key.min()), "seq": next(self._seq)})

    def frontier(self, src_id: int, partition: int) -> int:
        """The running max time a partition has reached (-1: nothing from it yet)."""
        return self.running.get((src_id, partition), -1)

    def pending_offsets(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> the smallest offset of a row still held (not yet processed)."""
        out: dict = {}
        for e in self.entries:
            frame = e["frame"]
            firsts = frame.groupby("_partition", sort=False)["_offset"].min()
            for part, first in firsts.items():
                key = (e["raw"].topic, int(part))
                out[key] = min(out.get(key, int(first)), int(first))
        return out

    def release(self, safe: float = float("inf")) -> list[tuple[int, list, pd.DataFrame]]:
        """Rows with key <= safe, in merged order, as (source id, [(base, raw batch)], rows) chunks: a
        chunk runs as long as the source does (across the source's raw batches)."""
        # Only batches with a row at or before `safe` take part: a backlog waiting for another input
        # is not sorted again on every poll.
        active = [i for i, e in enumerate(self.entries) if e["min"] <= safe]
        if not active:
            return []
        keys = np.concatenate([self.entries[i]["key"] for i in active])
        prio = np.concatenate([np.full(len(self.entries[i]["key"]), self.priority.get(self.entries[i]["src"], 1))
                               for i in active])
        entry = np.concatenate([np.full(len(self.entries[i]["key"]), i) for i in active])
        row = np.concatenate([np.arange(len(self.entries[i]["key"])) for i in active])
        order = np.lexsort((row, entry, prio, keys))
        order = order[keys[order] <= safe]
        if not len(order):
            return []
        src = np.array([e["src"] for e in self.entries])[entry[order]]
        chunks, taken = [], {i: [] for i in range(len(self.entries))}
        for piece in np.split(order, np.flatnonzero(np.diff(src)) + 1):
            frames, parts = [], {}
            for run in np.split(piece, np.flatnonzero(np.diff(entry[piece])) + 1):
                i = int(entry[run[0]])
                e = self.entries[i]
                frames.append(e["frame"].iloc[row[run]])
                parts[i] = (e["base"], e["raw"])
                taken[i].extend(row[run].tolist())
            chunk = frames[0] if len(frames) == 1 else pd.concat(frames)
            chunks.append((self.entries[int(entry[piece[0]])]["src"], list(parts.values()), chunk))
        kept = []
        for i, e in enumerate(self.entries):
            if taken[i]:
                mask = np.ones(len(e["frame"]), dtype=bool)
                mask[taken[i]] = False
                if not mask.any():
                    continue
                e = {**e, "frame": e["frame"][mask], "key": e["key"][mask], "min": int(e["key"][mask].min())}
            kept.append(e)
        self.entries = kept
        return chunks


def locate(parts: list, errors: dict[int, str]) -> list[tuple[object, dict[int, str]]]:
    """Errors of a released chunk, by label, as [(raw batch, {position: reason})]."""
    out = []
    for base, raw in parts:
        mine = {label - base: why for label, why in errors.items() if base <= label < base + len(raw)}
        if mine:
            out.append((raw, mine))
    return out
