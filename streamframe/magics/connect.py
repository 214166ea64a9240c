"""``%%connect`` and ``%connect``: drive a real Kafka Connect cluster through its REST API.

    %%connect                                   # the cell is the payload of POST /connectors
    {"name": "lines", "config": {"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                                 "tasks.max": "1", "file": "/data/in.txt", "topic": "lines"}}

    %connect list                               # every connector: type, class, state, tasks
    %connect status lines                       # the connector's state and one row per task
    %connect pause|resume|restart|delete lines

The worker: ``%config ConnectMagics.url = 'http://host:8083'``, else ``$STREAMFRAME_CONNECT_URL``, else
the local one (``streamframe local start --connect``). Results are pandas DataFrames; every failure is
one line (Connect's own message and the HTTP status), never a traceback.
"""

from __future__ import annotations

import time

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, kwds, magic_arguments
from traitlets import Float, Unicode

from streamframe.connectors.connect_rest import ENV_URL, ConnectClient, parse_payload
from streamframe.errors import ConnectRestError
from streamframe.kafka.config import redact
from streamframe.magics.common import StreamframeMagics, command

USAGE = f"""\
%%connect [NAME] [--replace] [--no-wait] [--url URL]
    Create a connector from the cell: the JSON payload of `POST /connectors`,
    {{"name": "...", "config": {{"connector.class": "...", "tasks.max": "1", ...}}}}
    (a flat config object with "name" also works; NAME names it if the payload does not).
    --replace   create or replace its configuration (PUT /connectors/NAME/config)
    --no-wait   return at once instead of waiting for its tasks to start

%connect list                      connectors with their type, class, state and tasks
%connect plugins                   the connector classes the worker can run
%connect status NAME               the connector's state and one row per task
%connect config NAME               its configuration (secrets masked)
%connect pause NAME | resume NAME  pause or resume it and its tasks (waits for the new state)
%connect restart NAME [--tasks] [--failed]
                                   restart the connector (and its tasks / only the failed ones)
%connect delete NAME               delete it (waits until its status is gone too)
Options of every command: --url URL (the worker), --no-wait, --help.

The worker: --url, else %config ConnectMagics.url = 'http://host:8083', else ${ENV_URL},
else the local worker of `streamframe local start --connect`."""

_NEEDS_NAME = ("status", "config", "pause", "resume", "restart", "delete")
_COMMANDS = ("list", "plugins", *_NEEDS_NAME)
_SETTLING = {"RESTARTING", "UNASSIGNED"}


@magics_class
class ConnectMagics(StreamframeMagics):
    """``%%connect`` / ``%connect``: a Kafka Connect cluster from a cell (see ``%connect --help``)."""

    url = Unicode(
        None, allow_none=True,
        help=f"The Kafka Connect REST URL (default: ${ENV_URL}, else the local worker).",
    ).tag(config=True)  # fmt: skip
    timeout = Float(30.0, help="Seconds to wait for each REST call.").tag(config=True)
    wait = Float(
        20.0,
        help="Seconds %%connect, pause, resume, restart and delete wait for the new state (0: do not wait).",
    ).tag(config=True)

    @cell_magic("connect")
    @command
    @magic_arguments("connect")
    @kwds(description=USAGE)
    @argument("name", nargs="?")
    @argument("--replace", action="store_true")
    @argument("--url", default=None)
    @argument("--no-wait", dest="no_wait", action="store_true")
    def connect_cell(self, args, cell=None):
        """Create a Kafka Connect connector from the cell's JSON payload. See ``%connect --help``."""
        client = self._client(args.url)
        if args.replace:
            name, config = parse_payload(cell, args.name)
            client.put_config(name, config)
            verb = "configured"
        else:
            created = client.create(cell, args.name)
            name, verb = created["name"], "created"
        print(f"{verb} connector {name!r}")
        if args.no_wait or self.wait <= 0:
            return None
        return self._settle(client, name, _started)

    @line_magic("connect")
    @command
    @magic_arguments("connect")
    @kwds(description=USAGE)
    @argument("command", nargs="?")
    @argument("name", nargs="?")
    @argument("--tasks", action="store_true")
    @argument("--failed", action="store_true")
    @argument("--url", default=None)
    @argument("--no-wait", dest="no_wait", action="store_true")
    def connect_line(self, args, cell=None):
        """Drive a Kafka Connect cluster: list, plugins, status|config|pause|resume|restart|delete NAME."""
        command, name = args.command, args.name
        if not command:
            print(USAGE)
            return None
        if command not in _COMMANDS:
            raise UsageError(f"unknown command {command!r}; one of {', '.join(_COMMANDS)}")
        if command in _NEEDS_NAME and not name:
            raise UsageError(f"%connect {command}: which connector? `%connect {command} NAME`")
        if command not in _NEEDS_NAME and name:
            raise UsageError(f"%connect {command} takes no connector name (got {name!r})")
        if (args.tasks or args.failed) and command != "restart":
            raise UsageError(f"%connect {command}: --tasks and --failed go with restart")
        client = self._client(args.url)
        wait = not args.no_wait and self.wait > 0
        if command == "list":
            return list_frame(client.list(expand=True))
        if command == "plugins":
            return pd.DataFrame(client.plugins(), columns=["class", "type", "version"])
        if command == "status":
            return status_frame(client.status(name))
        if command == "config":
            config = redact(client.config(name))
            return pd.DataFrame({"value": config}).rename_axis("key").sort_index()
        if command == "delete":
            client.delete(name)
            if wait:  # its status record goes a moment after its config: wait, so `status` agrees
                self._gone(client, name)
            print(f"deleted connector {name!r}")
            return None
        if command == "pause":
            client.pause(name)
            done = _all_in("PAUSED")
        elif command == "resume":
            client.resume(name)
            done = _all_in("RUNNING")
        else:
            client.restart(name, include_tasks=args.tasks, only_failed=args.failed)
            done = _started
        print(f"{command} requested for connector {name!r}")
        return self._settle(client, name, done) if wait else None

    def _client(self, url: str | None) -> ConnectClient:
        return ConnectClient(url or self.url or None, timeout=self.timeout)

    def _gone(self, client: ConnectClient, name: str) -> None:
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            try:
                client.status(name)
            except ConnectRestError as exc:
                if exc.status == 404:
                    return
                raise
            time.sleep(0.25)

    def _settle(self, client: ConnectClient, name: str, done) -> pd.DataFrame:
        """Poll the status until ``done(status)`` (or ``wait`` s pass); return it as a DataFrame."""
        deadline, status = time.monotonic() + self.wait, None
        while True:
            try:
                status = client.status(name)
            except ConnectRestError as exc:
                if exc.status != 404:  # 404: the status record is not written yet
                    raise
            if status is not None and done(status):
                return status_frame(status)
            if time.monotonic() > deadline:
                if status is None:
                    raise ConnectRestError(f"connector {name!r} reported no status within {self.wait:g} s")
                frame = status_frame(status)
                states = ", ".join(sorted(set(frame["state"])))
                print(f"connector {name!r} is still {states} after {self.wait:g} s")
                return frame
            time.sleep(0.25)


def _states(status: dict) -> list[str]:
    return [status["connector"]["state"], *(t.get("state") for t in status.get("tasks", []))]


def _started(status: dict) -> bool:
    """The connector and its tasks are assigned and not restarting (RUNNING, or settled as FAILED/PAUSED);
    a FAILED or STOPPED connector (``"initial_state": "STOPPED"``) has no tasks to wait for."""
    states = _states(status)
    if states[0] in ("FAILED", "STOPPED"):
        return True
    return len(states) > 1 and not _SETTLING.intersection(states)


def _all_in(state: str):
    return lambda status: all(s == state for s in _states(status))


def _first_line(trace: str | None) -> str:
    return (trace or "").strip().splitlines()[0] if (trace or "").strip() else ""


STATUS_COLUMNS = ["connector", "type", "component", "state", "worker_id", "error"]


def status_frame(status: dict) -> pd.DataFrame:
    """One row for the connector, then one per task: component ("connector", "task 0", ...), state,
    worker_id, and the first line of the error trace of a failed one."""
    name, kind = status.get("name", ""), status.get("type", "")
    conn = status.get("connector", {})
    rows = [(name, kind, "connector", conn.get("state"), conn.get("worker_id"),
             _first_line(conn.get("trace")))]
    for task in sorted(status.get("tasks", []), key=lambda t: t.get("id", 0)):
        rows.append((name, kind, f"task {task.get('id')}", task.get("state"), task.get("worker_id"),
                     _first_line(task.get("trace"))))  # fmt: skip
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


LIST_COLUMNS = ["connector", "type", "class", "state", "tasks", "tasks_running", "worker_id", "error"]


def list_frame(expanded: dict) -> pd.DataFrame:
    """``GET /connectors?expand=status&expand=info`` as one row per connector, sorted by name."""
    rows = []
    for name in sorted(expanded):
        status = expanded[name].get("status", {})
        info = expanded[name].get("info", {})
        conn, tasks = status.get("connector", {}), status.get("tasks", [])
        errors = [_first_line(x.get("trace")) for x in (conn, *tasks) if x.get("trace")]
        rows.append((
            name, status.get("type") or info.get("type"), info.get("config", {}).get("connector.class"),
            conn.get("state"), len(tasks), sum(t.get("state") == "RUNNING" for t in tasks),
            conn.get("worker_id"), errors[0] if errors else "",
        ))  # fmt: skip
    return pd.DataFrame(rows, columns=LIST_COLUMNS)
