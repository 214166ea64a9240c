"""The `streamframe` command: the local broker, the demo, headless runs.

    streamframe local start [--port N]   start (or reuse) the embedded Apache Kafka; prints its address
    streamframe local status|stop|logs   inspect, stop, or show the broker's log
    streamframe demo [--duration S] [--rate R]
    streamframe run script.py            run a script's queries headless until they end or Ctrl-C
"""

from __future__ import annotations

import argparse
import runpy
import sys
import time


def _local(args) -> int:
    from streamframe import local

    if args.action == "start":
        print(f"fetching/starting Apache Kafka {local.KAFKA_VERSION} ...", file=sys.stderr)
        broker = local.start(port=args.port)
        print(f"Kafka {local.KAFKA_VERSION} running at {broker.bootstrap} (pid {broker.pid}, home {broker.home})")
    elif args.action == "status":
        broker = local.status()
        if broker is None:
            print("no local broker is running (`streamframe local start` starts one)")
            return 1
        print(f"running at {broker.bootstrap} (pid {broker.pid}, home {broker.home})")
    elif args.action == "stop":
        print("stopped" if local.stop() else "no local broker was running")
    elif args.action == "logs":
        print(local.logs(args.lines))
    elif args.action == "fetch":
        print(f"Kafka jars in {local.ensure_jars()}")
    return 0


def _demo(args) -> int:
    from streamframe.demo import run_demo

    return run_demo(duration=args.duration, rate=args.rate)


def _run(args) -> int:
    from streamframe import session

    sys.argv = [args.script, *args.args]
    runpy.run_path(args.script, run_name="__main__")
    try:
        while any(q.status == "running" for q in session.queries()):
            time.sleep(0.5)
    except KeyboardInterrupt:
        session.stop_all()
    failed = [q for q in session.queries() if q.status == "failed"]
    for q in failed:
        print(f"query {q.name} failed: {q.exception}", file=sys.stderr)
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="streamframe", description="pandas-style stream processing on Apache Kafka")
    sub = p.add_subparsers(dest="command", required=True)
    loc = sub.add_parser("local", help="the embedded Apache Kafka broker")
    loc.add_argument("action", choices=["start", "stop", "status", "logs", "fetch"])
    loc.add_argument("--port", type=int, default=None, help="listen on this port (default: a free one)")
    loc.add_argument("--lines", type=int, default=50, help="how many log lines `logs` shows")
    loc.set_defaults(fn=_local)
    demo = sub.add_parser("demo", help="live trades through a StreamFrame pipeline, in the terminal")
    demo.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    demo.add_argument("--rate", type=float, default=2000.0, help="trades per second (default 2000)")
    demo.set_defaults(fn=_demo)
    run = sub.add_parser("run", help="run a script's queries headless (scale out: same script, N processes)")
    run.add_argument("script")
    run.add_argument("args", nargs=argparse.REMAINDER)
    run.set_defaults(fn=_run)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    from streamframe.errors import StreamframeError

    try:
        return args.fn(args)
    except StreamframeError as e:
        print(f"streamframe: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
