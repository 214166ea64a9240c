"""The TimeMerger (streamframe/runtime/merge.py): the event-time order a join's inputs are fed in.

Simulated fetches: poll batches that each hold slices of several partitions of both topics, released
after every batch up to the time every pending partition has reached (as Query._release_merged does).

* without `ahead`: exactly the order of a straightforward reference merge (every row sorted by
  running-max time, table first on a tie, then batch and row), chunked where the source changes;
* with `ahead` (the stream of a stream–table join, see `ahead_source`): each stream row comes after
  every table row with a smaller time and before every one with a larger time, each partition's rows
  in offset order — with no time tie across the two topics, each stream row sees exactly the table
  rows the reference merge puts before it;
* finely interleaved batches still make one chunk per run of a source (not one per batch switch).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import streamframe as sf
from streamframe.runtime.merge import TimeMerger, ahead_source
from streamframe.runtime.topology import Topology
from streamframe.time.extract import datetime_to_ms

TABLE, STREAM = 0, 1  # source ids
TOPICS = {TABLE: "customers", STREAM: "orders"}


class Raw:
    def __init__(self, topic: str, n: int):
        self.topic, self.n = topic, n

    def __len__(self) -> int:
        return self.n


def _records(rng, partitions: int, per_partition: int, parity: int) -> dict[int, np.ndarray]:
    """{partition: timestamps in offset order}: rising with noise (out of order), all of one parity so
    that the two topics never share a time."""
    out = {}
    for p in range(partitions):
        ts = np.arange(per_partition) * 10 + rng.integers(-40, 40, per_partition)
        out[p] = 2 * np.abs(ts) + parity
    return out


def _schedule(rng, topics: dict[int, dict[int, np.ndarray]], max_slice: int):
    """Poll batches: each a list of (source, partition, first offset, timestamps) slices from
    random partitions of random topics, each partition's slices in offset order."""
    pos = {(s, p): 0 for s, parts in topics.items() for p in parts}
    batches = []
    while any(pos[k] < len(topics[k[0]][k[1]]) for k in pos):
        src = int(rng.choice([s for s in topics if any(pos[(s, p)] < len(topics[s][p]) for p in topics[s])]))
        slices = []
        for p in rng.permutation(list(topics[src])):
            p = int(p)
            ts = topics[src][p]
            if pos[(src, p)] >= len(ts) or rng.random() < 0.3:
                continue
            n = int(rng.integers(1, max_slice + 1))
            a = pos[(src, p)]
            slices.append((p, a, ts[a:a + n]))
            pos[(src, p)] = min(a + n, len(ts))
        if slices:
            batches.append((src, slices))
    return batches


def _frame(slices) -> pd.DataFrame:
    parts = np.concatenate([np.full(len(ts), p) for p, _, ts in slices])
    offsets = np.concatenate([np.arange(a, a + len(ts)) for _, a, ts in slices])
    ts = np.concatenate([ts for _, _, ts in slices])
    # a poll batch holds each partition's records together; interleave them as a fetch might
    order = np.argsort(
        np.concatenate([np.arange(len(t)) * len(slices) + i for i, (_, _, t) in enumerate(slices)]),
        kind="stable",
    )
    return pd.DataFrame(
        {
            "_timestamp": pd.to_datetime(ts[order], unit="ms", utc=True),
            "_partition": parts[order].astype("int32"),
            "_offset": offsets[order],
        }
    )


def _run(topics, batches, ahead: bool):
    merger = TimeMerger({TABLE: 0, STREAM: 1})
    ends = {(s, p): len(ts) for s, parts in topics.items() for p, ts in parts.items()}
    read = dict.fromkeys(ends, 0)
    released, chunks, calls = [], [], []
    for src, slices in batches:
        frame = _frame(slices)
        merger.add(src, Raw(TOPICS[src], len(frame)), frame)
        for p, a, ts in slices:
            read[(src, p)] = a + len(ts)
        pending = [k for k in ends if read[k] < ends[k]]
        safe = min((merger.frontier(*k) for k in pending), default=float("inf"))
        others = min((merger.frontier(*k) for k in pending if k[0] != STREAM), default=float("inf"))
        calls.append(merger.release(safe, {STREAM: others} if ahead else None))
    calls.append(merger.release(float("inf")))
    for call in calls:
        sources = [src for src, _, _ in call]  # one chunk per run of a source
        assert all(a != b for a, b in zip(sources, sources[1:]))
        chunks += call
    for src, _, chunk in chunks:
        released += [(src, int(p), int(o)) for p, o in zip(chunk["_partition"], chunk["_offset"])]
    return released, chunks, merger


def _reference(topics, batches):
    """Every row by (running-max time, table first, batch, row), released in the same steps."""
    rows = []  # (key, prio, batch, row, src, partition, offset)
    running: dict = {}
    for b, (src, slices) in enumerate(batches):
        frame = _frame(slices)
        for r, (t, p, o) in enumerate(
            zip(datetime_to_ms(frame["_timestamp"]), frame["_partition"], frame["_offset"])
        ):
            k = running[(src, int(p))] = max(running.get((src, int(p)), -1), int(t))
            rows.append((k, 0 if src == TABLE else 1, b, r, src, int(p), int(o)))
    return rows


def _keys(topics):
    """(src, partition, offset) -> running-max time."""
    out = {}
    for s, parts in topics.items():
        for p, ts in parts.items():
            for o, k in enumerate(np.maximum.accumulate(ts)):
                out[(s, p, o)] = int(k)
    return out


def _reference_order(topics, batches):
    """The released order of the reference merger: after each batch, rows up to the safe time, sorted."""
    rows = _reference(topics, batches)
    ends = {(s, p): len(ts) for s, parts in topics.items() for p, ts in parts.items()}
    read = dict.fromkeys(ends, 0)
    running: dict = {}
    held, out = [], []
    i = 0
    for src, slices in batches:
        n = sum(len(ts) for _, _, ts in slices)
        held += rows[i : i + n]
        i += n
        for p, a, ts in slices:
            read[(src, p)] = a + len(ts)
        for r in rows[i - n : i]:
            running[(r[4], r[5])] = r[0]
        pending = [k for k in ends if read[k] < ends[k]]
        safe = min((running.get(k, -1) for k in pending), default=float("inf"))
        due = sorted(r for r in held if r[0] <= safe)
        held = [r for r in held if r[0] > safe]
        out += due
    out += sorted(held)
    return [(r[4], r[5], r[6]) for r in out]


@pytest.mark.parametrize("seed", range(6))
def test_release_is_the_reference_merge_in_whole_source_chunks(seed):
    rng = np.random.default_rng(seed)
    topics = {TABLE: _records(rng, 3, 60, 0), STREAM: _records(rng, 3, 200, 1)}
    batches = _schedule(rng, topics, 25)
    released, chunks, merger = _run(topics, batches, ahead=False)
    assert released == _reference_order(topics, batches)
    assert len(merger) == 0
    for _src, parts, chunk in chunks:  # labels name raw batches that hold them
        for label in chunk.index:
            assert any(base <= label < base + len(raw) for base, raw in parts)


@pytest.mark.parametrize("seed", range(6))
def test_stream_released_ahead_sees_the_table_as_of_its_time(seed):
    rng = np.random.default_rng(100 + seed)
    topics = {TABLE: _records(rng, 3, 60, 0), STREAM: _records(rng, 3, 200, 1)}
    batches = _schedule(rng, topics, 25)
    released, chunks, merger = _run(topics, batches, ahead=True)
    assert len(merger) == 0 and sorted(released) == sorted(_reference_order(topics, batches))
    for s, parts in topics.items():  # each partition in offset order
        for p in parts:
            offsets = [o for src, q, o in released if (src, q) == (s, p)]
            assert offsets == sorted(offsets)
    key = _keys(topics)
    tables = sorted(key[r] for r in released if r[0] == TABLE)
    seen = 0
    for r in released:  # the table rows before each stream row: exactly those with a smaller time
        if r[0] == TABLE:
            seen += 1
        else:
            assert seen == np.searchsorted(tables, key[r], side="right")


def test_finely_interleaved_batches_release_few_chunks():
    """Two batches of different partitions overlapping in time alternate row by row in merged order;
    they still come out as one chunk of each source run, each batch selected once."""
    merger = TimeMerger({TABLE: 0, STREAM: 1})
    n = 50_000
    for b in range(8):
        ts = np.arange(n) * 8 + b  # batch b: partition b, times interleaving with the other batches
        frame = pd.DataFrame(
            {
                "_timestamp": pd.to_datetime(ts, unit="ms", utc=True),
                "_partition": np.full(n, b, dtype="int32"),
                "_offset": np.arange(n),
            }
        )
        merger.add(STREAM, Raw("orders", n), frame)
    chunks = merger.release(float("inf"))
    assert len(chunks) == 1
    src, parts, chunk = chunks[0]
    assert len(parts) == 8 and len(chunk) == 8 * n
    assert (np.diff(datetime_to_ms(chunk["_timestamp"])) > 0).all()


def test_stream_ahead_waits_for_a_held_table_row():
    merger = TimeMerger({TABLE: 0, STREAM: 1})

    def frame(ts, p=0):
        return pd.DataFrame(
            {
                "_timestamp": pd.to_datetime(ts, unit="ms", utc=True),
                "_partition": np.full(len(ts), p, dtype="int32"),
                "_offset": np.arange(len(ts)),
            }
        )

    merger.add(TABLE, Raw("customers", 2), frame([10, 50]))
    merger.add(STREAM, Raw("orders", 4), frame([5, 20, 49, 60]))
    # a stream partition that lags at 3: the table row at 10 waits for it, and so does every order
    # after 10; the order at 5 goes ahead
    got = merger.release(3, {STREAM: float("inf")})
    assert [(s, datetime_to_ms(c["_timestamp"]).tolist()) for s, _, c in got] == [(STREAM, [5])]
    got = merger.release(30, {STREAM: float("inf")})  # the table row at 50 still held: orders up to 49
    assert [(s, datetime_to_ms(c["_timestamp"]).tolist()) for s, _, c in got] == [
        (TABLE, [10]),
        (STREAM, [20, 49]),
    ]
    got = merger.release(float("inf"))
    assert [(s, datetime_to_ms(c["_timestamp"]).tolist()) for s, _, c in got] == [
        (TABLE, [50]),
        (STREAM, [60]),
    ]


def _ahead(frame):
    top = Topology(frame._node)
    return ahead_source(frame._node, top.ops, frame._node.sources())


def test_ahead_source_only_for_stream_table_enrichment():
    orders, customers = sf.stream("orders"), sf.table("customers", key="id")
    enriched = orders.join(customers, on="id", how="left")
    assert _ahead(enriched) == orders._node.id
    assert _ahead(enriched[enriched["qty"] > 1].join(sf.table("regions", key="r"), on="r")) == orders._node.id
    # something stateful below the join, or two streams: their order across partitions matters
    assert _ahead(enriched.groupby("segment").agg(n=("qty", "sum"))) is None
    assert _ahead(orders.join(sf.stream("views"), within=10)) is None
    assert _ahead(orders) is None  # no join (a repartition copy keeps its event-time order)
