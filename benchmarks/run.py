"""Run the benchmarks against a real Kafka broker and print records/s and ratios (`make bench`).

    python benchmarks/run.py                       # 1,000,000 records, 8 partitions, isolated local broker
    python benchmarks/run.py --records 200000 --bootstrap 127.0.0.1:9092 --json results.json

Each contestant reads the same input topic and writes to its own fresh output topic; contestants run
alternately `--rounds` times and the best time of each is reported (the machine is shared with the broker,
so the best run is the least disturbed one). Outputs are read back and compared: a benchmark whose
contestants disagree fails instead of reporting a number.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks import common, filter_assign  # noqa: E402

CONTESTANTS = {"hand-written loop": filter_assign.run_hand_written, "streamframe": filter_assign.run_streamframe}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=1_000_000, help="input records (default 1,000,000)")
    p.add_argument("--partitions", type=int, default=8, help="input partitions (default 8)")
    p.add_argument("--rounds", type=int, default=2, help="runs of each contestant, alternating; best is kept")
    p.add_argument("--bootstrap", help="an existing broker (default: start an isolated local one)")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    p.add_argument("--keep-topics", action="store_true", help="do not delete the benchmark's topics")
    args = p.parse_args(argv)
    for name in ("records", "partitions", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    return args


def workload_1(bootstrap: str, args, console: Console) -> dict:
    topics = [common.create_topic(bootstrap, common.unique_topic("bench-trades"), args.partitions)]
    try:
        console.print(f"producing {args.records:,} trades to {topics[0]} ({args.partitions} partitions) ...")
        info = common.produce_trades(bootstrap, topics[0], args.records, args.partitions)
        console.print(f"  {info.bytes_per_record:.1f} bytes/record (JSON value; key: the symbol), "
                      f"produced in {info.seconds:.1f} s")
        present = common.count(bootstrap, info.topic)  # also warms the broker up before the timed runs
        if present != args.records:
            raise SystemExit(f"the input topic holds {present:,} records, not {args.records:,}")
        times: dict[str, list[float]] = {name: [] for name in CONTESTANTS}
        outputs: dict[str, str] = {}
        for r in range(args.rounds):
            for name, run in CONTESTANTS.items():
                out = common.create_topic(bootstrap, common.unique_topic("bench-out"), args.partitions)
                topics.append(out)
                seconds = run(bootstrap, info.topic, out)
                times[name].append(seconds)
                outputs.setdefault(name, out)
                console.print(f"  round {r + 1}: {name:<18} {seconds:6.2f} s  "
                              f"{args.records / seconds:>12,.0f} records/s")
        console.print("checking that the contestants wrote the same records ...")
        read = {name: common.read_topic(bootstrap, topic) for name, topic in outputs.items()}
        (a, ra), (b, rb) = read.items()
        common.compare(a, ra, b, rb)
        console.print(f"  both wrote {ra.records:,} records, every one equal (key, timestamp, fields); "
                      f"sum of notional {ra.notional_sum:,.2f}")
        best = {name: min(ts) for name, ts in times.items()}
        return {
            "workload": "1 filter+assign+write",
            "records": args.records,
            "partitions": args.partitions,
            "bytes_per_record": round(info.bytes_per_record, 1),
            "output_records": ra.records,
            "rounds": args.rounds,
            "seconds": times,
            "records_per_s": {name: round(args.records / s) for name, s in best.items()},
            "ratio": round(best["hand-written loop"] / best["streamframe"], 3),
        }
    finally:
        if not args.keep_topics:
            common.delete_topics(bootstrap, topics)


def report(result: dict, console: Console) -> None:
    console.print(f"\n[bold]workload {result['workload']}[/bold]: {result['records']:,} JSON records of "
                  f"{result['bytes_per_record']:.0f} B in {result['partitions']} partitions, "
                  f"qty > 100 keeps {result['output_records']:,}")
    table = Table()
    table.add_column("contestant")
    table.add_column("records/s (best)", justify="right")
    table.add_column("each run (s)", justify="right")
    for name, rate in result["records_per_s"].items():
        table.add_row(name, f"{rate:,.0f}", "  ".join(f"{s:.2f}" for s in result["seconds"][name]))
    console.print(table)
    console.print(f"[bold]workload 1 filter+assign+write: streamframe {result['ratio']:.2f}x hand-written loop"
                  f"[/bold] (best of {result['rounds']} alternating runs each; same broker, same input)")


def environment(bootstrap: str, args) -> dict:
    import confluent_kafka

    from streamframe.local import KAFKA_VERSION

    return {
        "broker": bootstrap if args.bootstrap else f"{bootstrap} (isolated local Apache Kafka {KAFKA_VERSION})",
        "python": platform.python_version(),
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    console = Console(soft_wrap=True)
    with common.broker(args.bootstrap) as bootstrap:
        env = environment(bootstrap, args)
        console.print(f"broker {env['broker']}; Python {env['python']}, confluent-kafka {env['confluent_kafka']} "
                      f"(librdkafka {env['librdkafka']}); {env['cpus']} CPUs, shared with the broker")
        result = workload_1(bootstrap, args, console)
    report(result, console)
    if args.json:
        args.json.write_text(json.dumps({"environment": env, "workloads": [result]}, indent=2) + "\n")
        console.print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
