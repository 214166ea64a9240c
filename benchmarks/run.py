"""Run the benchmarks against a real Kafka broker and print records/s and ratios (`make bench`).

    python benchmarks/run.py                       # workloads 1 to 4 at full size, isolated local broker
    python benchmarks/run.py --workload 2 --records 200000 --bootstrap 127.0.0.1:9092 --json results.json

Workloads: 1 filter+assign+write (filter_assign.py), 2 windowed count+sum (windowed.py), 3 stream-table
enrichment (enrich.py), 4 workload 1 over Avro input (filter_assign_avro.py). Each produces its input
once; every contestant reads the same input topics and writes to its own fresh output topic;
contestants run alternately `--rounds` times and the best time of each is reported (the machine is
shared with the broker, so the best run is the least disturbed one). Outputs are read back and
compared: a workload whose contestants disagree fails instead of reporting a number.

Optional, not run here (it takes 10 minutes or more): `python benchmarks/soak.py`, a live session-window
query sampled for flat memory, state file and restart time (README.md, "Soak").
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks import common, enrich, filter_assign, filter_assign_avro, windowed  # noqa: E402

WORKLOADS = {1: filter_assign, 2: windowed, 3: enrich, 4: filter_assign_avro}
BASELINE = "hand-written loop"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workload", default="all",
                   help="1, 2, 3, 4, a list such as 2,3, or all (default)")
    p.add_argument("--records", type=int,
                   help="input records (default: 1,000,000 for workloads 1 and 4, 2,000,000 for 2 and 3)")
    p.add_argument("--partitions", type=int, default=8, help="input partitions (default 8)")
    p.add_argument("--rounds", type=int, default=2, help="runs of each contestant, alternating; best is kept")
    p.add_argument(
        "--keys", type=int, default=windowed.KEYS, help="workload 2: distinct keys (default 10,000)"
    )
    p.add_argument(
        "--table-keys", type=int, default=enrich.TABLE_KEYS, help="workload 3: table keys (default 100,000)"
    )
    p.add_argument(
        "--contestants", help="run only these (comma-separated names; the hand-written loop always runs)"
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="after the timed rounds, run each streamframe contestant once more under cProfile, "
        "print a summary and save the .prof files in DIR",
    )
    p.add_argument("--bootstrap", help="an existing broker (default: start an isolated local one)")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    p.add_argument("--keep-topics", action="store_true", help="do not delete the benchmark's topics")
    args = p.parse_args(argv)
    for name in ("records", "partitions", "rounds", "keys", "table_keys"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    try:
        args.workloads = (
            sorted(WORKLOADS)
            if args.workload == "all"
            else sorted({int(w) for w in args.workload.split(",")})
        )
    except ValueError:
        p.error(f"--workload takes 1, 2, 3, 4, a list such as 2,3, or all; got {args.workload!r}")
    if not set(args.workloads) <= set(WORKLOADS):
        p.error(f"--workload takes 1, 2, 3, 4, a list such as 2,3, or all; got {args.workload!r}")
    return args


def _seconds(result) -> float:
    return result if isinstance(result, float) else result.seconds


def _timed_out(result) -> bool:
    return bool(getattr(result, "notes", {}).get("timed_out"))


def _notes(result) -> str:
    notes = getattr(result, "notes", {})
    shown = []
    if "processed_s" in notes:
        shown.append(f"all read and processed at {notes['processed_s']:.2f} s, then the last checkpoint")
    if "state_mb" in notes:
        shown.append(f"SQLite state {notes['state_mb']:.0f} MB")
    if "first_record_s" in notes:
        shown.append(f"first record at {notes['first_record_s']:.2f} s, close {notes['close_s']:.2f} s")
    return f"  ({'; '.join(shown)})" if shown else ""


def run_workload(number: int, bootstrap: str, args, console: Console) -> dict:
    mod = WORKLOADS[number]
    records = args.records or mod.RECORDS
    contestants = dict(mod.CONTESTANTS)
    if args.contestants:
        wanted = {c.strip() for c in args.contestants.split(",")} | {BASELINE}
        contestants = {n: f for n, f in contestants.items() if n in wanted}
    options = {2: {"keys": args.keys}, 3: {"table_keys": args.table_keys}}.get(number, {})
    console.print(
        f"\n[bold]workload {number} {mod.TITLE}[/bold]: producing {records:,} records "
        f"({args.partitions} partitions) ..."
    )
    started = time.monotonic()
    inp = mod.prepare(bootstrap, records, args.partitions, **options)
    topics = list(inp.topics)
    try:
        console.print(f"  {inp.describe()}; produced in {inp.seconds:.1f} s")
        for topic in inp.topics:  # reading them also warms the broker up before the timed runs
            common.count(bootstrap, topic)
        present = common.count(bootstrap, inp.topics[0])
        if present != records:
            raise SystemExit(f"the input topic holds {present:,} records, not {records:,}")
        runs: dict[str, list] = {name: [] for name in contestants}
        outputs: dict[str, str] = {}
        names = list(contestants)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # each round starts with the next
                if any(_timed_out(x) for x in runs[name]):
                    continue  # stopped once already: another run would only stop again
                out = common.create_topic(bootstrap, common.unique_topic("bench-out"), args.partitions)
                topics.append(out)
                gc.collect()
                result = contestants[name](bootstrap, inp, out)
                runs[name].append(result)
                seconds = _seconds(result)
                if _timed_out(result):
                    written = result.notes["records_out"]
                    console.print(
                        f"  round {r + 1}: {name:<28} [red]stopped after {seconds:.0f} s[/red], "
                        f"{written:,} output records written by then (~{written / seconds:,.0f}/s)"
                    )
                    continue
                outputs.setdefault(name, out)
                console.print(
                    f"  round {r + 1}: {name:<28} {seconds:6.2f} s  {records / seconds:>12,.0f} records/s"
                    f"{_notes(result)}"
                )
        console.print("checking that the contestants wrote the same records ...")
        finished = [n for n in names if n in outputs]
        checked = mod.check(
            bootstrap,
            {n: outputs[n] for n in finished},
            inp,
            {n: [x for x in runs[n] if not _timed_out(x)] for n in finished},
        )
        console.print(f"  {checked['summary']}")
        for name, why in checked.get("invalid", {}).items():
            console.print(f"  [bold red]{name} WROTE OTHER RESULTS[/bold red] than the {BASELINE}: {why}")
        for note in checked.get("notes", []):
            console.print(f"  [yellow]note:[/yellow] {note}")
        profiles = {}
        if args.profile:
            profiles = profile(number, mod, contestants, bootstrap, inp, topics, args, console)
        console.print(f"  workload {number} took {time.monotonic() - started:.0f} s in all")
        seconds = {name: [_seconds(x) for x in rs] for name, rs in runs.items()}
        invalid = checked.get("invalid", {})
        best = {
            name: min(_seconds(x) for x in rs if not _timed_out(x))
            for name, rs in runs.items()
            if name in outputs and name not in invalid
        }
        return {
            "workload": f"{number} {mod.TITLE}",
            "number": number,
            "input": inp.describe(),
            "records": records,
            "partitions": args.partitions,
            "bytes_per_record": round(inp.bytes_per_record, 1),
            "output_records": checked["output_records"],
            "check": checked["summary"],
            "notes": checked.get("notes", []),
            "invalid": invalid,
            "rounds": args.rounds,
            "seconds": seconds,
            "details": {name: [getattr(x, "notes", {}) for x in rs] for name, rs in runs.items()},
            "timed_out": {name: [_timed_out(x) for x in rs] for name, rs in runs.items()},
            "records_per_s": {name: round(records / s) for name, s in best.items()},
            "ratio": {name: round(best[BASELINE] / s, 3) for name, s in best.items() if name != BASELINE},
            "profiles": profiles,
        }
    finally:
        if not args.keep_topics:
            common.delete_topics(bootstrap, topics)


def profile(number, mod, contestants, bootstrap, inp, topics, args, console) -> dict:
    from benchmarks import profiling

    args.profile.mkdir(parents=True, exist_ok=True)
    saved = {}
    for name, run in contestants.items():
        if name == BASELINE:
            continue
        if name in getattr(mod, "CHILD", {}):  # capped in a child process: profile it here, uncapped
            if inp.records > 50_000:
                console.print(f"  not profiling {name} at this size (it is capped); try --records 30000")
                continue
            run = mod.CHILD[name]
        out = common.create_topic(bootstrap, common.unique_topic("bench-out"), args.partitions)
        topics.append(out)
        path = args.profile / f"workload{number}-{name.replace(' ', '-')}.prof"
        gc.collect()
        with profiling.profiled(path):
            result = run(bootstrap, inp, out)
        console.print(f"  profile of {name} ({_seconds(result):.2f} s under cProfile), saved to {path}:")
        console.print(profiling.summary(path), markup=False, highlight=False)
        console.print(profiling.cumulative(path), markup=False, highlight=False)
        saved[name] = str(path)
    return saved


def report(result: dict, console: Console) -> None:
    console.print(
        f"\n[bold]workload {result['workload']}[/bold]: {result['input']} → "
        f"{result['output_records']:,} output records"
    )
    table = Table()
    table.add_column("contestant")
    table.add_column("records/s (best)", justify="right")
    table.add_column(f"vs {BASELINE}", justify="right")
    table.add_column("each run (s)", justify="right")
    for name, seconds in result["seconds"].items():
        each = "  ".join(f">{s:.0f}" if t else f"{s:.2f}" for s, t in zip(seconds, result["timed_out"][name]))
        if name in result["invalid"]:
            table.add_row(name, "wrong output", "—", each)
            continue
        if name not in result["records_per_s"]:
            table.add_row(name, "did not finish", "—", each)
            continue
        ratio = "1.00x" if name == BASELINE else f"{result['ratio'][name]:.2f}x"
        table.add_row(name, f"{result['records_per_s'][name]:,.0f}", ratio, each)
    console.print(table)
    ratios = ", ".join(
        [f"{name} {r:.2f}x" for name, r in result["ratio"].items()]
        + [
            f"{name} {'wrote wrong output' if name in result['invalid'] else 'did not finish'}"
            for name in result["seconds"]
            if name not in result["records_per_s"]
        ]
    )
    console.print(
        f"[bold]workload {result['workload']}: {ratios} {BASELINE}[/bold] "
        f"(best of {result['rounds']} alternating runs each; same broker, same input)"
    )


def environment(bootstrap: str, args) -> dict:
    import confluent_kafka

    from streamframe.local import KAFKA_VERSION

    return {
        "broker": bootstrap
        if args.bootstrap
        else f"{bootstrap} (isolated local Apache Kafka {KAFKA_VERSION})",
        "python": platform.python_version(),
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
    results = []
    with common.broker(args.bootstrap) as bootstrap:
        env = environment(bootstrap, args)
        console.print(
            f"broker {env['broker']}; Python {env['python']}, confluent-kafka {env['confluent_kafka']} "
            f"(librdkafka {env['librdkafka']}); {env['cpus']} CPUs, shared with the broker"
        )
        for number in args.workloads:
            results.append(run_workload(number, bootstrap, args, console))
    for result in results:
        report(result, console)
    if args.json:
        args.json.write_text(
            json.dumps({"environment": env, "workloads": results}, indent=2, default=str) + "\n"
        )
        console.print(f"results written to {args.json}")
    return 1 if any(r["invalid"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
