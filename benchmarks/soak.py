"""Soak: a live session-window query over UUID keys at a steady rate, for minutes or hours (issue 13, item 8).

    python benchmarks/soak.py                      # 10 minutes, isolated local broker
    python benchmarks/soak.py --minutes 120 --rate 500 --bootstrap 127.0.0.1:9092

A producer process writes `--rate` records/s, each of a UUID key that gets five records 0.4 s apart and
is never seen again (one session each), timestamped with the wall clock. The query, in this process,
counts and sums per session (gap and grace `--gap`, emitted final) into a topic with durable state, so
closed sessions are purged from its store once stream time passes their retention. Every `--sample`
seconds it records this process's RSS, the state file's size (SQLite file, WAL and shared memory) and
rows, then stops the query and starts it again `--restarts` times, timing each restart to its first
record processed (the state restored from the file) and keeping the best (the machine is shared with
the broker and the producer: the best restart is the least disturbed one). The samples after
`--warmup` minutes must be flat: for each of RSS, file size, rows and restart time, the median of
their second half within 10% of the first half's. Not part of `make test`; `make bench` runs run.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks import common  # noqa: E402

EVENTS, SPACING_TICKS, TICK = 5, 4, 0.1  # records per key, ticks between a key's records, s per tick
FLAT = 1.10
MEASURES = {"rss_mb": "RSS MB", "file_kb": "state file KB", "rows": "state rows", "restart_s": "restart s"}
# The file's size counts its WAL, which SQLite lets grow to 1000 pages (4 MB) before it starts over.


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    p.add_argument("--rate", type=int, default=200, help="records per second (default 200)")
    p.add_argument("--gap", default="5s", help="session gap, also the grace (default 5s)")
    p.add_argument("--sample", type=float, default=30.0, help="s between samples and restarts (default 30)")
    p.add_argument("--restarts", type=int, default=3, help="restarts per sample, the best kept (default 3)")
    p.add_argument("--warmup", type=float, default=2.0, help="minutes of samples not judged (default 2)")
    p.add_argument("--partitions", type=int, default=2, help="input partitions (default 2)")
    p.add_argument("--bootstrap", help="an existing broker (default: start an isolated local one)")
    p.add_argument("--produce", nargs=3, metavar=("BOOTSTRAP", "TOPIC", "SECONDS"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def produce(bootstrap: str, topic: str, rate: int, seconds: float) -> None:
    """The producer process: `rate` records/s for `seconds`, keys cycling through a pool of live ones."""
    import orjson
    from confluent_kafka import Producer

    producer = Producer(common.producer_config(bootstrap))
    per_tick = max(1, round(rate * TICK))
    pool = [[uuid.uuid4().hex, EVENTS] for _ in range(per_tick * SPACING_TICKS)]
    started, tick = time.monotonic(), 0
    while time.monotonic() - started < seconds:
        now_ms = int(time.time() * 1000)
        for _ in range(per_tick):
            entry = pool.pop(0)
            producer.produce(topic, orjson.dumps({"ts": now_ms, "v": random.randint(1, 100)}),
                             key=entry[0].encode())
            entry[1] -= 1
            pool.append(entry if entry[1] else [uuid.uuid4().hex, EVENTS])
        producer.poll(0)
        tick += 1
        time.sleep(max(0.0, started + tick * TICK - time.monotonic()))
    producer.flush(30)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def state_file(path: Path) -> tuple[float, float, int]:
    """KB of the SQLite file with its WAL and shared memory, KB of the WAL, and the file's rows."""
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
    wal = path.with_name(path.name + "-wal")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT count(*) FROM state").fetchone()[0]
    finally:
        db.close()
    return size / 1024, (wal.stat().st_size if wal.exists() else 0) / 1024, rows


def start(sf, topic: str, out: str, gap: str, state_dir: Path):
    sessions = (sf.stream(topic, timestamp="ts").groupby("_key").window(session=gap, grace=gap)
                .agg(n=("v", "count"), total=("v", "sum")).emit("final"))
    return sessions.to_topic(out, name="soak", state_dir=state_dir)


def restart(sf, query, topic: str, out: str, gap: str, state_dir: Path):
    """Stop `query`, start it again: the new query, the seconds to its first record processed, and the
    records the stopped one read."""
    began = time.monotonic()
    query.stop()
    read = query.metrics["records_in"]
    query = start(sf, topic, out, gap, state_dir)
    while query.metrics["records_in"] == 0:
        if query.status == "failed":
            raise query.exception
        time.sleep(0.01)
    return query, time.monotonic() - began, read


def verdict(samples: list[dict], warmup_s: float) -> dict[str, float]:
    """Per measure, the median of the second half of the samples after warm-up over the first half's."""
    judged = [s for s in samples if s["elapsed_s"] >= warmup_s and s["restart_s"] is not None]
    if len(judged) < 4:
        raise SystemExit(f"only {len(judged)} samples after warm-up: run longer or sample more often")
    half = len(judged) // 2
    return {m: median(s[m] for s in judged[-half:]) / median(s[m] for s in judged[:half]) for m in MEASURES}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.produce:
        bootstrap, topic, seconds = args.produce
        produce(bootstrap, topic, args.rate, float(seconds))
        return 0
    logging.basicConfig(level=logging.ERROR)
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
    import streamframe as sf

    duration = args.minutes * 60
    with common.broker(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as tmp:
        topic, out = common.unique_topic("soak-in"), common.unique_topic("soak-out")
        common.create_topic(bootstrap, topic, args.partitions)
        app_id = f"soak-{uuid.uuid4().hex[:6]}"
        sf.connect(bootstrap, app_id=app_id)
        state_dir = Path(tmp)
        path = state_dir / app_id / "soak.sqlite"
        producer = subprocess.Popen([sys.executable, __file__, "--rate", str(args.rate), "--produce",
                                     bootstrap, topic, str(duration + 5)])
        console.print(f"soak: {args.rate} records/s of UUID keys ({EVENTS} records each, one session), "
                      f"session gap and grace {args.gap}, {args.minutes:g} min, sample and restart every "
                      f"{args.sample:g} s, warm-up {args.warmup:g} min; broker {bootstrap}")
        query = start(sf, topic, out, args.gap, state_dir)
        samples, done, began = [], 0, time.monotonic()  # done: records read by the queries stopped
        try:
            while (elapsed := time.monotonic() - began) < duration:
                time.sleep(min(args.sample, duration - elapsed))
                if query.status == "failed":
                    raise query.exception
                sample = {"elapsed_s": time.monotonic() - began, "rss_mb": rss_mb()}
                found = state_file(path) if path.exists() else (0.0, 0.0, 0)
                sample["file_kb"], sample["wal_kb"], sample["rows"] = found
                sample["records_in"] = done + query.metrics["records_in"]
                sample["restart_s"] = None
                if time.monotonic() - began < duration:
                    times = []
                    for _ in range(args.restarts):
                        query, took, read = restart(sf, query, topic, out, args.gap, state_dir)
                        times.append(took)
                        done += read
                    sample["restart_s"] = min(times)
                samples.append(sample)
                console.print("  ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                        for k, v in sample.items()))
        finally:
            query.stop()
            producer.terminate()
            producer.wait(30)
            common.delete_topics(bootstrap, [topic, out])
    table = Table(title="soak samples")
    for name in ("elapsed s", "records in", "RSS MB", "state file KB", "of it WAL KB", "state rows",
                 "restart s"):
        table.add_column(name, justify="right")
    for s in samples:
        table.add_row(f"{s['elapsed_s']:.0f}", f"{s['records_in']:,}", f"{s['rss_mb']:.1f}",
                      f"{s['file_kb']:.0f}", f"{s['wal_kb']:.0f}", f"{s['rows']:,}",
                      "-" if s["restart_s"] is None else f"{s['restart_s']:.2f}")
    console.print(table)
    ratios = verdict(samples, args.warmup * 60)
    flat = all(r <= FLAT for r in ratios.values())
    console.print("after warm-up, second half / first half (medians): " + ", ".join(
        f"{MEASURES[m]} {r:.3f}" for m, r in ratios.items()))
    console.print(f"verdict: {'FLAT' if flat else 'NOT FLAT'} (each within {FLAT - 1:.0%})")
    return 0 if flat else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
