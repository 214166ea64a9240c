"""Workload 2: a tumbling-window count and sum per key, event time from the payload, final results only.

Input: `records` JSON events `{"event_id":…,"user":"u01234","qty":…,"price":…,"ts":…}` keyed by `user`
(10,000 keys), placed by the producer's partitioner (Java's murmur2, as Kafka Streams' producers do), so
grouping by the record key needs no repartition. Event time covers 200 s whatever the size (at 2,000,000
records: 10,000 records per second, ~10 per key and window, 20 windows), with
out-of-order jitter (90 % up to 0.2 s, 9 % up to 1.5 s, 1 % up to 8 s), so some records are late.

The rule both contestants follow (Kafka Streams'): per input partition, stream time is the largest
event time seen so far, the current record included; a record updates its window only if
`window_end > stream_time - grace` (else it is late, dropped and counted); a window is final, and is
written once, when `window_end + grace <= stream_time` of its partition.

Contestants, each into its own fresh output topic:
  * `run_hand_written`: confluent-kafka, orjson per record, dict state per partition, the rule above in
    per-record Python, each closed window written as JSON (key `{"_key", "window_start"}`);
  * `run_streamframe`: `sf.stream(t, value="json", timestamp="ts").groupby("_key")
    .window(tumbling="10s", grace="2s").agg(n=("qty","count"), total=("qty","sum")).emit("final")
    .to_topic(out, until="end")` — a bounded run (state in memory, outputs flushed at the end);
  * `run_streamframe_live`: the same frame `.to_topic(out)` started live — consumer group, durable
    SQLite state and changelog topic, a checkpoint every `commit_interval` — timed until it has read
    the whole input and its stop() has checkpointed and committed offsets at the end offsets;
  * `run_streamframe_small_batches`: the bounded run with `batch_size=20_000` (a Query option; default
    50,000), to show how much of streamframe's time is per batch rather than per record;
  * `run_kafka_streams`: Kafka Streams (Java, `kstreams_bench/.../WindowedCountSum.java`): groupByKey,
    windowedBy(10 s, grace 2 s), aggregate, suppress(untilWindowCloses), its default RocksDB store with
    a changelog — the counterpart of the live run's durable state.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from confluent_kafka import Consumer, KafkaError, Producer

import streamframe as sf
import streamframe.kafka.reader
import streamframe.kafka.writer
import streamframe.operators.window
import streamframe.runtime.query  # noqa: F401 - imported before timing, as the loop's modules are
from benchmarks import common, kstreams
from benchmarks.common import Run, consumer_config, producer_config

TITLE = "windowed count+sum"
RECORDS = 2_000_000
KEYS = 10_000
SIZE_MS, GRACE_MS = 10_000, 2_000
START_MS = 1_700_000_000_000  # fixed, so every run has the same windows
SPAN_S = 200  # event time the input covers, whatever its size: 20 windows (at 2,000,000 records, 10,000
              # records per second of event time, ~10 records per key and window)
BATCH = 10_000


@dataclass
class Input:
    topic: str
    records: int
    partitions: int
    keys: int
    value_bytes: int
    seconds: float

    @property
    def topics(self) -> list[str]:
        return [self.topic]

    @property
    def bytes_per_record(self) -> float:
        return self.value_bytes / max(self.records, 1)

    def describe(self) -> str:
        return (f"{self.records:,} JSON records of {self.bytes_per_record:.0f} B, {self.keys:,} keys, "
                f"{self.partitions} partitions; tumbling 10 s, grace 2 s, emit final")



def events(first: int, n: int, keys: int, rate: int, seed: int = 7) -> pd.DataFrame:
    """Events first..first+n-1, vectorized: a uniform key, a quantity, a price, and an event time
    advancing `rate` records per second, jittered."""
    rng = np.random.default_rng(seed + first)
    ids = np.arange(first, first + n, dtype="int64")
    nominal = START_MS + ids * 1000 // rate
    r = rng.random(n)
    jitter = np.where(r < 0.90, rng.integers(0, 200, n),
                      np.where(r < 0.99, rng.integers(0, 1500, n), rng.integers(0, 8000, n)))
    names = np.array([f"u{i:05d}" for i in range(keys)], dtype=object)
    return pd.DataFrame({
        "event_id": ids,
        "user": names[rng.integers(0, keys, n)],
        "qty": rng.integers(1, 500, n),
        "price": np.round(rng.uniform(5.0, 500.0, n), 2),
        "ts": nominal - jitter,
    })


def prepare(bootstrap: str, records: int, partitions: int, keys: int = KEYS, chunk: int = 250_000) -> Input:
    from streamframe.serde.json_encode import encode_json_rows

    topic = common.create_topic(bootstrap, common.unique_topic("bench-events"), partitions)
    t0, total = time.perf_counter(), 0
    rate = max(records // SPAN_S, 1)
    for first in range(0, records, chunk):
        df = events(first, min(chunk, records - first), keys, rate)
        total += common.produce_records(bootstrap, topic, encode_json_rows(df),
                                        [u.encode() for u in df["user"].tolist()], df["ts"].tolist())
    return Input(topic, records, partitions, keys, total, time.perf_counter() - t0)


# --- contestants -------------------------------------------------------------------------------------
def run_hand_written(bootstrap: str, inp: Input, out: str) -> Run:
    t0 = time.perf_counter()
    failed = []
    consumer = Consumer(consumer_config(bootstrap))
    producer = Producer(producer_config(bootstrap, on_delivery=lambda err, msg: failed.append(err)))
    topic = inp.topic
    end = common.assign_from_beginning(consumer, topic)
    remaining = set(end)
    windows = {p: {} for p in end}  # partition -> {window_start: {key: [count, sum]}}
    stream_time = dict.fromkeys(end, -1)
    closes_at = dict.fromkeys(end, float("inf"))  # partition -> when its oldest open window is final
    late = emitted = 0
    consume, produce, poll = consumer.consume, producer.produce, producer.poll
    loads, dumps = orjson.loads, orjson.dumps
    size, grace = SIZE_MS, GRACE_MS

    def close(p: int, st: int) -> None:
        nonlocal emitted
        wins = windows[p]
        for ws in sorted(w for w in wins if w + size + grace <= st):
            for key, (n, total) in wins.pop(ws).items():
                value = dumps({"window_start": ws, "window_end": ws + size, "n": n, "total": total})
                k = dumps({"_key": key.decode(), "window_start": ws})
                try:
                    produce(out, value, k)
                except BufferError:
                    poll(0.1)
                    produce(out, value, k)
                emitted += 1
        closes_at[p] = min(wins) + size + grace if wins else float("inf")

    while remaining:
        for m in consume(num_messages=BATCH, timeout=0.1):
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"consuming {topic}: {m.error()}")
            p, offset = m.partition(), m.offset()
            last = end[p] - 1
            if offset >= last:
                if offset > last:
                    continue
                remaining.discard(p)
            rec = loads(m.value())
            ts = rec["ts"]
            st = stream_time[p]
            if ts > st:
                stream_time[p] = st = ts
            ws = ts - ts % size
            if ws + size > st - grace:
                wins = windows[p]
                win = wins.get(ws)
                if win is None:
                    win = wins[ws] = {}
                    if ws + size + grace < closes_at[p]:
                        closes_at[p] = ws + size + grace
                key = m.key()
                agg = win.get(key)
                if agg is None:
                    win[key] = [1, rec["qty"]]
                else:
                    agg[0] += 1
                    agg[1] += rec["qty"]
            else:
                late += 1
            if st >= closes_at[p]:
                close(p, st)
        poll(0)
    if producer.flush(120) or failed:
        raise RuntimeError(f"hand-written loop: records to {out} not delivered ({failed[:1]})")
    consumer.close()
    return Run(time.perf_counter() - t0, {"late": late, "windows": emitted})


def frame(topic: str):
    return (sf.stream(topic, value="json", timestamp="ts").groupby("_key")
            .window(tumbling="10s", grace="2s").agg(n=("qty", "count"), total=("qty", "sum")).emit("final"))


def run_streamframe(bootstrap: str, inp: Input, out: str, **options) -> Run:
    t0 = time.perf_counter()
    sf.connect(bootstrap)
    query = frame(inp.topic).to_topic(out, until="end", **options)
    elapsed = time.perf_counter() - t0
    m = query.metrics
    if m["errors"] or m["status"] != "finished":
        raise RuntimeError(f"streamframe run did not finish cleanly: {m}")
    return Run(elapsed, {"late": m["late_drops"], "windows": m["records_out"]})


def run_streamframe_live(bootstrap: str, inp: Input, out: str, **options) -> Run:
    app_id = f"bench-{uuid.uuid4().hex[:8]}"
    state_dir = Path(tempfile.mkdtemp(prefix="streamframe-bench-state-"))
    try:
        t0 = time.perf_counter()
        sf.connect(bootstrap, app_id=app_id)
        query = frame(inp.topic).to_topic(out, name="windowed", state_dir=state_dir, **options)
        deadline = time.monotonic() + 600
        while query.metrics_.records_in < inp.records:
            if query.status != "running":
                query.wait(0)
                raise RuntimeError(f"streamframe live query ended early: {query.metrics}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamframe live query too slow: {query.metrics}")
            time.sleep(0.01)
        processed = time.perf_counter() - t0
        query.stop(timeout=120)  # the last checkpoint: changelog, outputs, SQLite, then the offsets
        elapsed = time.perf_counter() - t0
        query.wait(0)
        m = query.metrics
        if m["errors"] or m["status"] != "stopped":
            raise RuntimeError(f"streamframe live query did not stop cleanly: {m}")
        committed = common.committed_offsets(bootstrap, query.group_id, inp.topic)
        ends = common.end_offsets(bootstrap, inp.topic)
        if committed != ends:
            raise RuntimeError(f"streamframe live query committed {committed}, not the end offsets {ends}")
        db = state_dir / app_id / "windowed.sqlite"
        return Run(elapsed, {"late": m["late_drops"], "windows": m["records_out"], "processed_s": processed,
                             "state_mb": db.stat().st_size / 1e6 if db.exists() else 0.0})
    finally:
        common.delete_topics(bootstrap, common.topics_with_prefix(bootstrap, app_id))
        shutil.rmtree(state_dir, ignore_errors=True)


def run_streamframe_small_batches(bootstrap: str, inp: Input, out: str) -> Run:
    """The bounded run with batch_size=20,000 (default 50,000): what per-batch costs remain."""
    return run_streamframe(bootstrap, inp, out, batch_size=SMALL_BATCH)


def run_kafka_streams(bootstrap: str, inp: Input, out: str) -> Run:
    """Kafka Streams with its default store (RocksDB, logged to a changelog topic): fault-tolerant state,
    as streamframe's live run has."""
    got = kstreams.run("WindowedCountSum", bootstrap, input=inp.topic, output=out, expected=inp.records,
                       size_ms=SIZE_MS, grace_ms=GRACE_MS)
    return Run(got.seconds, {**got.notes, "windows": None})


SMALL_BATCH = 20_000
CONTESTANTS = {
    "hand-written loop": run_hand_written,
    "streamframe": run_streamframe,
    "streamframe live": run_streamframe_live,
    "streamframe batch 20k": run_streamframe_small_batches,
    "kafka streams": run_kafka_streams,
}


# --- checking ----------------------------------------------------------------------------------------
def read_windows(bootstrap: str, topic: str) -> dict:
    """{(key, window_start): (count, sum)} of an output topic; raises on a window written twice."""
    got = {}
    for m in common.messages(bootstrap, topic):
        k, v = orjson.loads(m.key()), orjson.loads(m.value())
        w = (k["_key"], k["window_start"])
        if w in got:
            raise SystemExit(f"OUTPUTS INVALID: window {w} written twice to {topic} (emit final writes once)")
        got[w] = (v["n"], v["total"])
    return got


def check(bootstrap: str, outputs: dict[str, str], inp: Input, runs: dict[str, list[Run]]) -> dict:
    """Every contestant must write the same final windows (key, window_start, count, sum) and drop the
    same number of late records as the hand-written loop, else its output is invalid (and gets no number)."""
    read = {name: read_windows(bootstrap, topic) for name, topic in outputs.items()}
    base_name = next(iter(read))
    base = read[base_name]
    invalid = {}
    lates = {name: {r.notes["late"] for r in rs} for name, rs in runs.items()}
    late = next(iter(lates[base_name]))
    for name, got in read.items():
        if got == base and lates[name] == {late}:
            continue
        missing, extra = base.keys() - got.keys(), got.keys() - base.keys()
        differ = [w for w in base.keys() & got.keys() if base[w] != got[w]]
        first = differ[0] if differ else None
        invalid[name] = (
            f"{len(got):,} windows vs {len(base):,}; {len(missing):,} missing, {len(extra):,} extra, "
            f"{len(differ):,} with other values"
            + (f" (first {first}: {got[first]} vs {base[first]})" if first else "")
            + f"; late records dropped {sorted(lates[name])} vs {late}"
        )
    n = sum(c for c, _ in base.values())
    return {
        "invalid": invalid,
        "output_records": len(base),
        "late_drops": late,
        "summary": f"{len(read) - len(invalid)} of {len(read)} wrote the same {len(base):,} final windows "
        f"(key, window_start, count, sum) covering {n:,} records; {late:,} late records dropped by each; "
        f"sum of qty {sum(s for _, s in base.values()):,}",
    }
