"""The `streamframe` command: the local broker, the demo, headless runs, the Jupyter kernel.

    streamframe local start [--port N] [--connect] [--sasl]
                                         start (or reuse) the embedded Apache Kafka (and a Kafka Connect
                                         worker); prints their addresses. --sasl: a SASL_PLAINTEXT
                                         (SCRAM-SHA-512) listener with ACLs
    streamframe local user NAME          create a SCRAM user (password from $STREAMFRAME_PASSWORD or asked)
    streamframe local allow NAME (--topic T | --group G) [--operation OP ...] [--prefixed]
                                         an ACL letting user NAME do OP (default read) on T or G
    streamframe local status|stop|logs   inspect, stop (the worker too), or show the broker's (--connect:
                                         the worker's) log
    streamframe demo [--duration S] [--rate R]
    streamframe run [--processing-guarantee G] script.py|analysis.ipynb
                                         run a script's (or a notebook's cells') queries headless until
                                         they end or Ctrl-C
    streamframe install-kernel [--user|--sys-prefix|--prefix P] [--name N]
                                         a Jupyter kernel that preloads `%load_ext streamframe`
"""

from __future__ import annotations

import argparse
import json
import os
import re
import runpy
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path


def _local(args) -> int:
    from streamframe import local
    from streamframe.errors import ConfigError

    if args.action in ("user", "allow") and not args.name:
        raise ConfigError(f"`streamframe local {args.action}` needs the user's name")
    if args.action == "start":
        print(f"fetching/starting Apache Kafka {local.KAFKA_VERSION} ...", file=sys.stderr)
        broker = local.start(port=args.port, sasl=True if args.sasl else None)
        print(
            f"Kafka {local.KAFKA_VERSION} running at {broker.bootstrap} "
            f"(pid {broker.pid}, home {broker.home})"
        )
        if broker.sasl:
            print(f"SASL_PLAINTEXT (SCRAM-SHA-512) with ACLs; the admin's client config: "
                  f"{broker.home / 'admin.properties'}")
        if args.connect:
            print(f"starting Kafka Connect {local.KAFKA_VERSION} ...", file=sys.stderr)
            worker = local.start_connect()
            print(f"Kafka Connect {local.KAFKA_VERSION} running at {worker.url} (pid {worker.pid})")
    elif args.action == "status":
        broker, worker = local.status(), local.connect_status()
        if broker is None:
            print("no local broker is running (`streamframe local start` starts one)")
        else:
            print(f"running at {broker.bootstrap} (pid {broker.pid}, home {broker.home})")
        if worker is not None:
            print(f"Kafka Connect running at {worker.url} (pid {worker.pid}, bootstrap {worker.bootstrap})")
        if broker is None:
            return 1
    elif args.action == "stop":
        worker = local.connect_status()  # local.stop() stops the worker first, then the broker
        stopped = local.stop()
        if worker is not None:
            print(f"stopped Kafka Connect at {worker.url}")
        print("stopped" if stopped else "no local broker was running")
    elif args.action == "logs":
        print(local.connect_logs(args.lines) if args.connect else local.logs(args.lines))
    elif args.action == "user":
        import getpass

        password = os.environ.get("STREAMFRAME_PASSWORD") or getpass.getpass(f"password for {args.name}: ")
        local.add_user(args.name, password)
        print(f"user {args.name!r} created (SCRAM-SHA-512)")
    elif args.action == "allow":
        local.allow(args.name, topic=args.topic, group=args.group, operations=args.operation or ["read"],
                    prefixed=args.prefixed)
        what = f"topic {args.topic!r}" if args.topic is not None else f"group {args.group!r}"
        print(f"User:{args.name} may {', '.join(args.operation or ['read'])} {what}"
              f"{' (and every name starting so)' if args.prefixed else ''}")
    elif args.action == "fetch":
        print(f"Kafka jars in {local.ensure_jars()}")
        if args.connect:
            print(f"Kafka Connect jars in {local.ensure_connect_jars()}")
    return 0


#: Used when the package runs without its source tree (a wheel): the same spec as extension/kernel.json.
KERNEL_SPEC = {
    "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}", "--ext=streamframe"],
    "display_name": "Python 3 (streamframe)",
    "language": "python",
    "metadata": {"debugger": True},
}


def kernel_spec(display_name: str | None = None, env: dict[str, str] | None = None) -> dict:
    """The kernel.json to install: extension/kernel.json with this interpreter as the kernel's python."""
    template = Path(__file__).resolve().parent.parent / "extension" / "kernel.json"
    spec = json.loads(template.read_text()) if template.exists() else json.loads(json.dumps(KERNEL_SPEC))
    spec["argv"] = [sys.executable if a == "python" else a for a in spec["argv"]]
    if display_name:
        spec["display_name"] = display_name
    if env:
        spec["env"] = dict(env)
    return spec


def install_kernel(
    name: str = "streamframe",
    user: bool = False,
    prefix: str | None = None,
    display_name: str | None = None,
    env: dict[str, str] | None = None,
) -> Path:
    """Install the kernel spec (for the user, or under ``prefix``); return the directory it went to."""
    from jupyter_client.kernelspec import KernelSpecManager

    from streamframe.errors import ConfigError

    if not re.fullmatch(r"[a-z0-9._-]+", name, re.IGNORECASE):  # jupyter_client's rule for kernel names
        raise ConfigError(f"kernel name {name!r} may only contain ASCII letters, digits, '.', '_' and '-'")
    with tempfile.TemporaryDirectory(prefix="streamframe-kernel-") as tmp:
        source = Path(tmp) / name
        source.mkdir()
        (source / "kernel.json").write_text(json.dumps(kernel_spec(display_name, env), indent=1) + "\n")
        try:  # the Python logos of ipykernel's own spec, for the launcher
            from ipykernel.kernelspec import RESOURCES

            for logo in Path(RESOURCES).glob("logo-*"):
                shutil.copy(logo, source / logo.name)
        except ImportError:
            pass
        try:
            dest = KernelSpecManager().install_kernel_spec(str(source), name, user=user, prefix=prefix)
        except OSError as exc:
            where = prefix or ("the user's Jupyter data dir" if user else "the system's Jupyter data dir")
            raise ConfigError(
                f"cannot install the kernel into {where}: {exc.strerror or exc} (try --user or --prefix)"
            ) from None
    return Path(dest)


def _install_kernel(args) -> int:
    from streamframe.errors import ConfigError

    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env takes KEY=VALUE, not {item!r}")
        env[key] = value
    prefix = sys.prefix if args.sys_prefix else args.prefix
    dest = install_kernel(
        args.name, user=prefix is None, prefix=prefix, display_name=args.display_name, env=env
    )
    print(f"installed kernel {args.name!r} ({kernel_spec(args.display_name)['display_name']}) in {dest}")
    return 0


def _demo(args) -> int:
    from streamframe.demo import run_demo

    return run_demo(duration=args.duration, rate=args.rate)


def _run(args) -> int:
    from streamframe import session
    from streamframe.connectors import default_registry

    # SIGTERM (what a container runtime or a process manager sends) stops the queries as Ctrl-C does:
    # each finishes its batch, delivers its outputs and commits, so a process taking its partitions over
    # starts where this one ended.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.argv = [args.script, *args.args]
    if args.processing_guarantee:  # read by sf.connect(), so the script's own connect() sees it too
        os.environ["STREAMFRAME_PROCESSING_GUARANTEE"] = args.processing_guarantee
    connectors = default_registry()
    try:
        if args.script.endswith(".ipynb"):
            from streamframe.notebook_run import run_notebook

            run_notebook(args.script)
        else:
            runpy.run_path(args.script, run_name="__main__")
        # Live until every query and connector ends by itself (a bounded load finishes) or a signal.
        while (any(q.status == "running" for q in session.queries())
               or any(c.state in ("RUNNING", "PAUSED") for c in connectors)):
            time.sleep(0.5)
    except KeyboardInterrupt:
        _stop(session, connectors)
    except BaseException:  # a failing cell or script: what it started stops and commits before the exit
        _stop(session, connectors)
        raise
    for q in session.queries():
        m = q.metrics
        print(
            f"query {q.name}: {m['status']}, {m['records_in']:,} records in, {m['records_out']:,} out, "
            f"{m['errors']:,} errors",
            flush=True,
        )
    for c in connectors:
        print(f"connector {c.name}: {c.state}, {c.records:,} records", flush=True)
    failed = [q for q in session.queries() if q.status == "failed"]
    for q in failed:
        print(f"query {q.name} failed: {q.exception}", file=sys.stderr)
    broken = [c for c in connectors if c.state == "FAILED"]
    for c in broken:
        print(f"connector {c.name} failed: {c.last_error}", file=sys.stderr)
    return 1 if failed or broken else 0


def _stop(session, connectors) -> None:
    session.stop_all()
    for c in connectors:
        if c.state in ("RUNNING", "PAUSED"):
            c.stop()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="streamframe", description="pandas-style stream processing on Apache Kafka"
    )
    sub = p.add_subparsers(dest="command", required=True)
    loc = sub.add_parser("local", help="the embedded Apache Kafka broker")
    loc.add_argument("action", choices=["start", "stop", "status", "logs", "fetch", "user", "allow"])
    loc.add_argument("name", nargs="?", help="user / allow: the user's name")
    loc.add_argument("--port", type=int, default=None, help="listen on this port (default: a free one)")
    loc.add_argument("--lines", type=int, default=50, help="how many log lines `logs` shows")
    loc.add_argument(
        "--connect", action="store_true",
        help="start: also a Kafka Connect worker (distributed mode, REST API); logs/fetch: the worker's",
    )  # fmt: skip
    loc.add_argument("--sasl", action="store_true",
                     help="start: a SASL_PLAINTEXT (SCRAM-SHA-512) listener with ACLs (users: `local user`)")
    loc.add_argument("--topic", default=None, help="allow: the topic")
    loc.add_argument("--group", default=None, help="allow: the consumer group")
    loc.add_argument("--operation", action="append", default=None,
                     help="allow: read, write, create, describe, all, ... (repeatable; default read)")
    loc.add_argument("--prefixed", action="store_true", help="allow: every topic or group starting so")
    loc.set_defaults(fn=_local)
    demo = sub.add_parser("demo", help="live trades through a StreamFrame pipeline, in the terminal")
    demo.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    demo.add_argument("--rate", type=float, default=2000.0, help="trades per second (default 2000)")
    demo.set_defaults(fn=_demo)
    run = sub.add_parser("run", help="run a script's or a notebook's queries headless "
                                     "(scale out: the same one, N processes)")
    run.add_argument("--processing-guarantee", choices=("at_least_once", "exactly_once"), default=None,
                     help="every query's unless it sets its own (default: at_least_once)")
    run.add_argument("script", help="a Python script, or a notebook (.ipynb) whose code cells run in order")
    run.add_argument("args", nargs=argparse.REMAINDER)
    run.set_defaults(fn=_run)
    kern = sub.add_parser(
        "install-kernel", help="install a Jupyter kernel that preloads `%%load_ext streamframe`"
    )
    where = kern.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for the current user (the default)")
    where.add_argument("--sys-prefix", action="store_true", help=f"into this Python's prefix ({sys.prefix})")
    where.add_argument("--prefix", default=None, help="under PREFIX/share/jupyter/kernels")
    kern.add_argument("--name", default="streamframe", help="the kernel's name (default streamframe)")
    kern.add_argument(
        "--display-name", default=None, help="the name Jupyter shows (default 'Python 3 (streamframe)')"
    )
    kern.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE",
        help="an environment variable for the kernel, e.g. STREAMFRAME_BOOTSTRAP=host:9092",
    )  # fmt: skip
    kern.set_defaults(fn=_install_kernel)
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
