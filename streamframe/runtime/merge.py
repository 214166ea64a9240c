"""Timestamp-synchronized input for queries that join: several inputs, one order of event time.

Kafka Streams feeds a task's records from all its input partitions by picking, each time, the
partition whose head record has the smallest timestamp. Taken over a whole partition, that order is
the order of each record's running-maximum timestamp in its partition (a record waits behind the
largest timestamp before it), so this merger sorts decoded rows by that key, keeping each partition's
offset order, with table updates before stream records on a tie — a stream record sees the table as
of its own time. In a bounded run it releases rows only up to the time every unfinished partition has
reached, so the order does not depend on how the broker happened to batch the fetches.

Kafka Streams synchronizes each task (one partition number of every input) on its own. The one stream
of stream–table joins (`ahead_source`) is released that way too: its rows wait for the tables, not for
its own other partitions, so once the tables have caught up an enrichment streams through as it is
read instead of holding every partition back to the slowest one.

All of it is column-wise: one sort of the rows due per release, one row selection per raw batch in a
chunk — never work per row or per run of rows (poll batches holding different partitions overlap in
time, so merged order switches between them every few rows).
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

    def clear(self) -> None:
        """Forget every row held and every partition's time, as at a restart (the readers rewound)."""
        self.entries.clear()
        self.running.clear()

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
                             "min": int(key.min()), "max": int(key.max()), "seq": next(self._seq)})

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

    def release(self, safe: float = float("inf"), ahead: dict[int, float] | None = None
                ) -> list[tuple[int, list, pd.DataFrame]]:
        """Rows with key <= safe, in merged order, as (source id, [(base, raw batch)], rows) chunks: a
        chunk runs as long as the source does (across the source's raw batches).

        `ahead` {source id: time}: a source whose order across its own partitions nothing depends on
        (the one stream of stream–table joins, see `ahead_source`; the time: what the other sources'
        pending partitions have reached). Its rows are released up to that time and short of the first
        row another source still holds, even past `safe`; each comes after every other source's row
        with a key up to its own (a table update first on a tie, as always) and before every one with a
        larger key, in batch order otherwise (so each partition's rows in offset order): only its rows of
        different partitions — different tasks in Kafka Streams — are no longer ordered by time among
        themselves, and a run of them between two table updates needs no reordering at all."""
        entries = self.entries
        free = set(ahead or ())
        limit = {}  # source id -> release its rows up to this key (safe, or further ahead)
        for src, until in (ahead or {}).items():
            for e in entries:
                if e["src"] != src and e["max"] > safe:  # the first row another source still holds
                    k = e["key"]
                    until = min(until, int(k[k > safe].min()) - 1)
            limit[src] = max(until, safe)
        bound = [limit.get(e["src"], safe) for e in entries]
        active = [i for i, e in enumerate(entries) if e["min"] <= bound[i]]
        if not active:
            return []
        sizes = np.array([len(entries[i]["key"]) for i in active])
        keys = np.concatenate([entries[i]["key"] for i in active])
        entry = np.repeat(np.array(active, dtype="int64"), sizes)
        row = np.arange(len(keys)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        is_free = np.repeat(np.array([entries[i]["src"] in free for i in active]), sizes)
        due = keys <= np.repeat(np.array([bound[i] for i in active], dtype="float64"), sizes)
        # Merged: rows up to `safe`, by (key, priority, batch, row). Batches of a source are added in
        # offset order per partition and the running-max key never decreases within a partition, so
        # each partition's rows keep their offset order.
        order = np.flatnonzero(due & ~is_free)
        if len(order):
            prio = np.repeat(np.array([self.priority.get(entries[i]["src"], 1) for i in active],
                                      dtype="int8"), sizes)
            order = order[np.lexsort((row[order], entry[order], prio[order], keys[order]))]
        if free:
            # The free source's rows by batch and row, each slotted in after every merged row with a
            # key up to its own (a stable sort of slot numbers: 2i for "before merged row i").
            mine = np.flatnonzero(due & is_free)
            if len(order):
                slot = np.searchsorted(keys[order], keys[mine], side="right")
                place = np.concatenate([2 * slot, 2 * np.arange(len(order)) + 1])
                order = np.concatenate([mine, order])[np.argsort(place, kind="stable")]
            else:
                order = mine
        entry, row = entry[order], row[order]
        src = np.array([e["src"] for e in entries])[entry]
        cuts = np.flatnonzero(src[1:] != src[:-1]) + 1
        bounds = np.concatenate(([0], cuts, [len(order)])).tolist()
        chunks = [self._chunk(entry[a:b], row[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        kept = []
        for i, e in enumerate(entries):
            if e["min"] <= bound[i]:
                rest = e["key"] > bound[i]
                if not rest.any():
                    continue
                key = e["key"][rest]
                e = {**e, "frame": e["frame"][rest], "key": key, "min": int(key.min())}
            kept.append(e)
        self.entries = kept
        return chunks

    def _chunk(self, entry: np.ndarray, row: np.ndarray) -> tuple[int, list, pd.DataFrame]:
        """One source's run of released rows, (batch index, row) pairs in order, as one frame."""
        entries = self.entries
        if (entry[1:] >= entry[:-1]).all():  # batch after batch (one batch; a free source's rows)
            starts = np.flatnonzero(np.concatenate(([True], entry[1:] != entry[:-1])))
            back = None
        else:  # one selection per batch (rows in merged order within it), then back into merged order
            by_batch = np.argsort(entry, kind="stable")
            entry, row = entry[by_batch], row[by_batch]
            starts = np.flatnonzero(np.concatenate(([True], entry[1:] != entry[:-1])))
            back = np.empty(len(by_batch), dtype="int64")
            back[by_batch] = np.arange(len(by_batch))
        ends = np.append(starts[1:], len(entry))
        frames, parts = [], []
        for a, b in zip(starts.tolist(), ends.tolist()):
            e = entries[int(entry[a])]
            rows, frame = row[a:b], e["frame"]
            if not (len(rows) == len(frame) and (rows[1:] > rows[:-1]).all()):
                frame = frame.take(rows)  # else the whole batch in its own order: no copy
            frames.append(frame)
            parts.append((e["base"], e["raw"]))
        chunk = frames[0] if len(frames) == 1 else pd.concat(frames)
        if back is not None:
            chunk = chunk.take(back)
        return entries[int(entry[0])]["src"], parts, chunk


def ahead_source(root, ops: dict, merged: list) -> int | None:
    """The source whose rows a TimeMerger may release ahead of the others' frontier (`release`'s
    `ahead`), or None: the one stream among the merged sources (the others tables) when every join it
    meets is a stream–table join it is the stream side of and no other stateful operator is below
    it, so that nothing depends on the order of its rows across its partitions — Kafka Streams
    synchronizes the time of each task (partition number) on its own, and an enrichment's lookups
    are in the table as of each row's time whatever the other partitions do. `merged`: the sources
    the merger takes; `ops`: the topology's operators by node id."""
    from streamframe.plan.nodes import Join, KafkaSource

    streams = [s for s in merged if not (isinstance(s, KafkaSource) and s.table)]
    if len(streams) != 1:
        return None
    stream = streams[0]
    joins = [n for n in root.walk() if isinstance(n, Join) and n.join != "global"]
    if not joins:  # a merger for another purpose (a repartition copy in event-time order)
        return None
    for node in joins:
        if node.join != "stream_table" or any(s.id == stream.id for s in node.parents[1].sources()):
            return None
    stack, seen = [ops[stream.id]], set()
    while stack:
        op = stack.pop()
        for child in op.children:
            if id(child) in seen:
                continue
            seen.add(id(child))
            if child.stateful and not (isinstance(child.node, Join)
                                                          and child.node.join in ("stream_table", "global")):
                return None
            stack.append(child)
    return stream.id


def locate(parts: list, errors: dict[int, str]) -> list[tuple[object, dict[int, str]]]:
    """Errors of a released chunk, by label, as [(raw batch, {position: reason})]."""
    out = []
    for base, raw in parts:
        mine = {label - base: why for label, why in errors.items() if base <= label < base + len(raw)}
        if mine:
            out.append((raw, mine))
    return out
