"""Workload 3: stream–table enrichment. Each order looks its customer up in a 100,000-key table and is
written with the customer's fields added (a left join: an order whose customer is not in the table is
written with those fields null).

Input: a table topic of `table_keys` customers `{"id":…,"name":"customer 000123","segment":"smb",
"tier":3,"credit":1234.5}` keyed by id, and a stream topic of `records` orders `{"order_id":…,"id":…,
"qty":…,"price":…,"ts":…}` keyed by the customer id (so both are co-partitioned by the producer's
partitioner, Java's murmur2), record timestamp = `ts`. Customer ids are uniform over 102 % of the
table's keys, so about 2 % of the orders find no customer. Every table record is older than every
order, so "the table as of each order's time" and "the whole table first" give the same result.

Contestants, each into its own fresh output topic:
  * `run_hand_written`: confluent-kafka; read the table topic to its end into a dict, then the orders:
    orjson per record, a dict lookup, the merged object out with the order's key and timestamp;
  * `run_streamframe`: `sf.stream(s).join(sf.table(t, key="id"), on="id", how="left", repartition=False)
    .to_topic(out, until="end")` (both inputs merged in event-time order, as Kafka Streams does;
    `repartition=False`: the orders are keyed by the id already, as a Kafka Streams topology would join
    them, with no selectKey);
  * `run_streamframe_rekeyed`: the same without `repartition=False`: the orders are first copied
    through a repartition topic keyed by their `id` (what a join on a column costs when the stream is
    not keyed by it: Kafka Streams' selectKey + join);
  * `run_streamframe_global`: the same with `sf.global_table(t, key="id")` (loaded whole first);
  * `run_streamframe_live`: the `sf.table` join (`repartition=False`) started live (consumer group,
    SQLite state, changelog), timed until it has written every order and its stop() has checkpointed;
  * `run_streamframe_global_short_polls`: the global-table run with `poll_timeout=0.005` (a Query
    option; default 0.1 s);
  * `run_kafka_streams`: Kafka Streams (Java, `kstreams_bench/.../Enrich.java`): table(customers),
    stream(orders).leftJoin(table), its default RocksDB store.
The three `sf.table` contestants run in a child process stopped after TIMEOUT_S (see `capped`): a guard
kept from when they could not finish at this size (README, workload 3); it costs them nothing, they
time themselves inside the child.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
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
import streamframe.operators.join
import streamframe.runtime.query  # noqa: F401 - imported before timing, as the loop's modules are
from benchmarks import common, kstreams
from benchmarks.common import Run, consumer_config, producer_config

TITLE = "stream-table enrichment"
RECORDS = 2_000_000
TABLE_KEYS = 100_000
MISS = 0.02  # the share of customer ids with no table row
START_MS = 1_700_000_000_000
SEGMENTS = np.array(["retail", "smb", "mid-market", "enterprise", "public"], dtype=object)
TABLE_FIELDS = ("name", "segment", "tier", "credit")
BATCH = 10_000


@dataclass
class Input:
    stream: str
    table: str
    records: int
    table_keys: int
    partitions: int
    value_bytes: int
    table_bytes: int
    seconds: float

    @property
    def topics(self) -> list[str]:
        return [self.stream, self.table]

    @property
    def bytes_per_record(self) -> float:
        return self.value_bytes / max(self.records, 1)

    def describe(self) -> str:
        return (
            f"{self.records:,} JSON orders of {self.bytes_per_record:.0f} B joined with a "
            f"{self.table_keys:,}-key table ({self.table_bytes / max(self.table_keys, 1):.0f} B rows), "
            f"{self.partitions} partitions, left join, ~{MISS:.0%} misses"
        )


def customers(n: int, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype="int64")
    return pd.DataFrame(
        {
            "id": ids,
            "name": [f"customer {i:06d}" for i in range(n)],
            "segment": SEGMENTS[rng.integers(0, len(SEGMENTS), n)],
            "tier": rng.integers(1, 6, n),
            "credit": np.round(rng.uniform(100.0, 50_000.0, n), 2),
        }
    )


def orders(first: int, n: int, table_keys: int, seed: int = 13) -> pd.DataFrame:
    rng = np.random.default_rng(seed + first)
    ids = np.arange(first, first + n, dtype="int64")
    return pd.DataFrame(
        {
            "order_id": ids,
            "id": rng.integers(0, int(table_keys * (1 + MISS)), n),
            "qty": rng.integers(1, 100, n),
            "price": np.round(rng.uniform(1.0, 900.0, n), 2),
            "ts": START_MS + ids,
        }
    )


def prepare(
    bootstrap: str, records: int, partitions: int, table_keys: int = TABLE_KEYS, chunk: int = 250_000
) -> Input:
    from streamframe.serde.json_encode import encode_json_rows

    table = common.create_topic(bootstrap, common.unique_topic("bench-customers"), partitions)
    stream = common.create_topic(bootstrap, common.unique_topic("bench-orders"), partitions)
    t0 = time.perf_counter()
    df = customers(table_keys)
    # Every table row is older than every order: the join sees the whole table, whatever its order.
    table_bytes = common.produce_records(
        bootstrap,
        table,
        encode_json_rows(df),
        [str(i).encode() for i in df["id"].tolist()],
        (START_MS - 3_600_000 + df["id"]).tolist(),
    )
    total = 0
    for first in range(0, records, chunk):
        df = orders(first, min(chunk, records - first), table_keys)
        total += common.produce_records(
            bootstrap,
            stream,
            encode_json_rows(df),
            [str(i).encode() for i in df["id"].tolist()],
            df["ts"].tolist(),
        )
    return Input(stream, table, records, table_keys, partitions, total, table_bytes, time.perf_counter() - t0)


# --- contestants -------------------------------------------------------------------------------------
def run_hand_written(bootstrap: str, inp: Input, out: str) -> Run:
    t0 = time.perf_counter()
    failed = []
    consumer = Consumer(consumer_config(bootstrap))
    producer = Producer(producer_config(bootstrap, on_delivery=lambda err, msg: failed.append(err)))
    consume, produce, poll = consumer.consume, producer.produce, producer.poll
    loads, dumps = orjson.loads, orjson.dumps

    ends = {topic: common.watermarks(consumer, topic) for topic in (inp.table, inp.stream)}

    def read(topic: str):
        end = common.assign_from_beginning(consumer, topic, ends[topic])
        remaining = set(end)
        while remaining:
            batch = []
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
                batch.append(m)
            yield batch
            poll(0)

    table = {}
    for batch in read(inp.table):
        for m in batch:
            value = m.value()
            if value is None:  # a tombstone deletes the key
                table.pop(int(m.key()), None)
                continue
            row = loads(value)
            table[row.pop("id")] = row
    missing = dict.fromkeys(TABLE_FIELDS)
    for batch in read(inp.stream):
        for m in batch:
            rec = loads(m.value())
            rec.update(table.get(rec["id"], missing))
            value, key, ts = dumps(rec), m.key(), m.timestamp()[1]
            try:
                produce(out, value, key, timestamp=ts)
            except BufferError:
                poll(0.1)
                produce(out, value, key, timestamp=ts)
    if producer.flush(120) or failed:
        raise RuntimeError(f"hand-written loop: records to {out} not delivered ({failed[:1]})")
    consumer.close()
    return Run(time.perf_counter() - t0, {})


def _run(bootstrap: str, inp: Input, out: str, table_kind, repartition=None, **options) -> Run:
    t0 = time.perf_counter()
    sf.connect(bootstrap)
    enriched = sf.stream(inp.stream).join(
        table_kind(inp.table, key="id"), on="id", how="left", repartition=repartition
    )
    query = enriched.to_topic(out, until="end", **options)
    elapsed = time.perf_counter() - t0
    m = query.metrics
    if m["errors"] or m["status"] != "finished":
        raise RuntimeError(f"streamframe run did not finish cleanly: {m}")
    return Run(elapsed, {"records_in": m["records_in"], "records_out": m["records_out"]})


def run_streamframe(bootstrap: str, inp: Input, out: str, **options) -> Run:
    return _run(bootstrap, inp, out, sf.table, repartition=False, **options)


def run_streamframe_rekeyed(bootstrap: str, inp: Input, out: str, **options) -> Run:
    return _run(bootstrap, inp, out, sf.table, **options)


def run_streamframe_global(bootstrap: str, inp: Input, out: str, **options) -> Run:
    return _run(bootstrap, inp, out, sf.global_table, **options)


def run_streamframe_live(bootstrap: str, inp: Input, out: str, app_id: str | None = None, **options) -> Run:
    """The sf.table join started live (consumer group, SQLite state and changelog), timed until it has
    written every order and its stop() has checkpointed."""
    app_id = app_id or f"bench-{uuid.uuid4().hex[:8]}"
    state_dir = _state_dir(app_id)
    try:
        t0 = time.perf_counter()
        sf.connect(bootstrap, app_id=app_id)
        enriched = sf.stream(inp.stream).join(
            sf.table(inp.table, key="id"), on="id", how="left", repartition=False
        )
        query = enriched.to_topic(out, name="enrich", state_dir=state_dir, **options)
        # records_in counts records when they are read; a join writes them after its time merge
        while query.metrics_.records_out < inp.records:
            if query.status != "running":
                query.wait(0)
                raise RuntimeError(f"streamframe live query ended early: {query.metrics}")
            time.sleep(0.01)
        processed = time.perf_counter() - t0
        query.stop(timeout=120)
        elapsed = time.perf_counter() - t0
        query.wait(0)
        m = query.metrics
        if m["errors"] or m["status"] != "stopped":
            raise RuntimeError(f"streamframe live query did not stop cleanly: {m}")
        return Run(elapsed, {"processed_s": processed, "records_out": m["records_out"]})
    finally:
        common.delete_topics(bootstrap, common.topics_with_prefix(bootstrap, app_id))
        shutil.rmtree(state_dir, ignore_errors=True)


def _state_dir(app_id: str) -> Path:
    return Path(tempfile.gettempdir()) / f"streamframe-bench-state-{app_id}"


CHILD = {
    "streamframe": run_streamframe,
    "streamframe re-keyed": run_streamframe_rekeyed,
    "streamframe live": run_streamframe_live,
}


def capped(name: str):
    """CHILD[name] run in a child process, killed after TIMEOUT_S. A guard: a stream–table join
    (sf.table) once took hours at this size (its time merge did Python work per run of rows, see
    README), and a Query's own timeout= is not checked while it releases time-merged input, nor can a
    live query's thread be stopped in the middle of that. The child times itself, so its start-up
    (imports, connecting) is not counted."""

    def run(bootstrap: str, inp: Input, out: str) -> Run:
        app_id = f"bench-{uuid.uuid4().hex[:8]}"
        args = [
            sys.executable,
            "-m",
            "benchmarks.enrich",
            name,
            bootstrap,
            json.dumps(dataclasses.asdict(inp)),
            out,
            app_id,
        ]
        t0 = time.perf_counter()
        with subprocess.Popen(
            args,
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        ) as child:
            try:
                stdout, _ = child.communicate(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
                elapsed = time.perf_counter() - t0
                common.delete_topics(bootstrap, common.topics_with_prefix(bootstrap, app_id))
                shutil.rmtree(_state_dir(app_id), ignore_errors=True)
                written = sum(common.end_offsets(bootstrap, out).values())
                return Run(elapsed, {"timed_out": True, "records_out": written})
        if child.returncode:
            raise RuntimeError(f"{name} in a child process failed (exit {child.returncode})")
        result = json.loads(stdout.decode().strip().splitlines()[-1])
        return Run(result["seconds"], result["notes"])

    return run


def run_streamframe_global_short_polls(bootstrap: str, inp: Input, out: str) -> Run:
    """The global-table run with poll_timeout=0.005 (default 0.1 s): after loading, the global table's
    reader is polled every loop and waits out the whole poll timeout, having nothing to read."""
    return run_streamframe_global(bootstrap, inp, out, poll_timeout=0.005)


def run_kafka_streams(bootstrap: str, inp: Input, out: str) -> Run:
    """Kafka Streams: KStream-KTable left join, its default RocksDB store (the table's topic as changelog)."""
    return kstreams.run(
        "Enrich", bootstrap, stream=inp.stream, table=inp.table, output=out, expected=inp.records
    )


TIMEOUT_S = 90.0
CONTESTANTS = {
    "hand-written loop": run_hand_written,
    "streamframe": capped("streamframe"),
    "streamframe re-keyed": capped("streamframe re-keyed"),
    "streamframe global": run_streamframe_global,
    "streamframe live": capped("streamframe live"),
    "streamframe global poll 5ms": run_streamframe_global_short_polls,
    "kafka streams": run_kafka_streams,
}


# --- checking ----------------------------------------------------------------------------------------
@dataclass
class Digest:
    records: int
    values: int  # sum of per-record digests of (key, timestamp, fields), numbers compared by value
    exact: int  # the same over the value bytes as written
    matched: int  # records that found their customer
    types: collections.Counter  # (field, JSON type) -> records


def _number(v):
    return int(v) if type(v) is float and v.is_integer() else v


def _h(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def digest(bootstrap: str, topic: str) -> Digest:
    values = exact = n = matched = 0
    types: collections.Counter = collections.Counter()
    for m in common.messages(bootstrap, topic):
        raw = m.value()
        rec = orjson.loads(raw)
        head = m.key() + b"|" + str(m.timestamp()[1]).encode() + b"|"
        canon = orjson.dumps({k: _number(v) for k, v in rec.items()}, option=orjson.OPT_SORT_KEYS)
        values += _h(head + canon)
        exact += _h(head + raw)
        matched += rec.get("name") is not None
        types.update((k, type(v).__name__) for k, v in rec.items())
        n += 1
    mask = (1 << 64) - 1
    return Digest(n, values & mask, exact & mask, matched, types)


def check(bootstrap: str, outputs: dict[str, str], inp: Input, runs: dict[str, list[Run]]) -> dict:
    """Same record count and the same content checksum (key, timestamp, every field; a number compared
    by value) as the hand-written loop, else a contestant's output is invalid (and gets no number);
    differences only in how numbers are written are noted."""
    read = {name: digest(bootstrap, topic) for name, topic in outputs.items()}
    base_name = next(iter(read))
    base = read[base_name]
    invalid, notes = {}, []
    if base.records != inp.records:
        raise SystemExit(
            f"the benchmark is invalid: {base_name} wrote {base.records:,} records for {inp.records:,} orders"
        )
    for name, d in read.items():
        if (d.records, d.values, d.matched) != (base.records, base.values, base.matched):
            invalid[name] = (
                f"{d.records:,} vs {base.records:,} records, checksum {d.values:016x} vs "
                f"{base.values:016x}, {d.matched:,} vs {base.matched:,} matched a customer"
            )
        elif d.exact != base.exact:
            differ = sorted(
                f"{f}: {t} {d.types[(f, t)]:,} vs {base.types[(f, t)]:,}"
                for f, t in set(d.types) | set(base.types)
                if d.types[(f, t)] != base.types[(f, t)]
            )
            notes.append(
                f"{name} writes numbers differently from {base_name} (same values): " + "; ".join(differ)
            )
    return {
        "invalid": invalid,
        "output_records": base.records,
        "matched": base.matched,
        "checksum": f"{base.values:016x}",
        "notes": notes,
        "summary": f"{len(read) - len(invalid)} of {len(read)} wrote {base.records:,} records "
        f"({base.matched:,} matched a customer), content checksum "
        f"{base.values:016x} equal (key, timestamp, every field)",
    }


if __name__ == "__main__":  # the child process of capped(name)
    name, bootstrap, inp, out, app_id = sys.argv[1:6]
    kwargs = {"app_id": app_id} if name == "streamframe live" else {}
    run = CHILD[name](bootstrap, Input(**json.loads(inp)), out, **kwargs)
    print(json.dumps({"seconds": run.seconds, "notes": run.notes}))
