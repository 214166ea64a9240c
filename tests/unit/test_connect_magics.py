"""%%connect / %connect without a worker: arguments, help, payloads, one-line errors, result tables.

What needs a real Kafka Connect worker (creating, pausing, moving a file through a topic) is in
tests/integration/test_kafka_connect.py; here every failure must happen before, or instead of, a call.
"""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError

from streamframe.connectors import connect_rest
from streamframe.connectors.connect_rest import one_line, parse_payload, resolve_url
from streamframe.errors import ConnectRestError
from streamframe.local.proc import free_port
from streamframe.magics import connect as connect_magics
from streamframe.magics.connect import ConnectMagics, list_frame, status_frame

SOURCE = {
    "name": "lines",
    "config": {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
        "tasks.max": "1",
        "file": "/tmp/in.txt",
        "topic": "lines",
    },
}


@pytest.fixture
def no_worker(tmp_path, monkeypatch):
    """No worker anywhere: an empty STREAMFRAME_HOME and no STREAMFRAME_CONNECT_URL."""
    monkeypatch.setenv("STREAMFRAME_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(connect_rest.ENV_URL, raising=False)


@pytest.fixture
def shell(no_worker):
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    magics = ConnectMagics(ip)
    ip.register_magics(magics)
    yield ip
    # %config writes into the shell's shared Config, which later ConnectMagics instances would inherit.
    ip.config.ConnectMagics.pop("url", None)
    magics.url = None


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_the_loader_registers_them_with_the_other_families():
    import streamframe.magics

    assert ConnectMagics in streamframe.magics.MAGICS
    assert set(ConnectMagics.magics["line"]) == {"connect"} and set(ConnectMagics.magics["cell"]) == {
        "connect"
    }


def test_load_ext_streamframe_registers_them(no_worker):
    from IPython.core.interactiveshell import InteractiveShell

    import streamframe

    ip = InteractiveShell.instance()
    streamframe.load_ipython_extension(ip)
    registered = ip.magics_manager.magics
    assert isinstance(registered["line"]["connect"].__self__, ConnectMagics)
    assert isinstance(registered["cell"]["connect"].__self__, ConnectMagics)
    url = _dead_url()
    try:
        ip.run_line_magic("config", f"ConnectMagics.url = '{url}'")
        with pytest.raises(UsageError, match=f"cannot reach Kafka Connect at {url} "):
            ip.run_line_magic("connect", "list")
    finally:
        ip.config.ConnectMagics.pop("url", None)
        registered["line"]["connect"].__self__.url = None


@pytest.mark.parametrize("line", ["--help", "-h", "", "status --help", "list -h"])
def test_line_help(shell, capsys, line):
    assert shell.run_line_magic("connect", line) is None
    out = capsys.readouterr().out
    assert "%connect status NAME" in out and "%%connect [NAME]" in out and "STREAMFRAME_CONNECT_URL" in out


def test_cell_help_does_not_touch_the_body(shell, capsys):
    assert shell.run_cell_magic("connect", "--help", "not json") is None
    assert "POST /connectors" in capsys.readouterr().out


@pytest.mark.parametrize(
    "line, expected",
    [
        ("bogus", "unknown command 'bogus'"),
        ("status", "which connector?"),
        ("delete", "which connector?"),
        ("list extra", "takes no connector name"),
        ("pause lines --tasks", "--tasks and --failed go with restart"),
        ("status lines extra", "unrecognized arguments: extra"),
        ("status lines --nope", "unrecognized arguments: --nope"),
        ('status "lines', "No closing quotation"),
        ("status lines --url", "expected one argument"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(shell, line, expected):
    with pytest.raises(UsageError) as err:
        shell.run_line_magic("connect", line)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("", "the cell body is empty"),  # IPython's own check
        ("  \n", "empty connector payload"),
        ('{"name": "x", "config": {', "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"config": {"connector.class": "C"}}', "has no name"),
        ('{"name": "x", "config": {"tasks.max": "1"}}', 'no "connector.class"'),
        ('{"name": "x", "config": "C"}', '"config" must be a JSON object'),
        ('{"name": "x", "tasks.max": 1, "config": {"connector.class": "C"}}', "unexpected keys"),
    ],
)
def test_bad_payloads_fail_before_any_call(shell, cell, expected):
    shell.run_line_magic("config", f"ConnectMagics.url = '{_dead_url()}'")  # a call would say "cannot reach"
    with pytest.raises(UsageError) as err:
        shell.run_cell_magic("connect", "", cell)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_no_worker_known_says_how_to_start_one(shell):
    with pytest.raises(
        UsageError, match=r"no Kafka Connect worker is known: start one with `streamframe local"
    ):
        shell.run_line_magic("connect", "list")


def test_config_url_wins_over_the_environment(shell, monkeypatch):
    env_url, config_url = _dead_url(), _dead_url()
    monkeypatch.setenv(connect_rest.ENV_URL, env_url)
    with pytest.raises(UsageError, match=f"cannot reach Kafka Connect at {env_url} "):
        shell.run_line_magic("connect", "list")
    shell.run_line_magic("config", f"ConnectMagics.url = '{config_url}'")
    with pytest.raises(UsageError) as err:
        shell.run_line_magic("connect", "status lines")
    assert str(err.value).startswith(f"%connect: cannot reach Kafka Connect at {config_url} (")
    other = _dead_url()
    with pytest.raises(UsageError, match=f"at {other} "):  # --url wins over both
        shell.run_line_magic("connect", f"list --url {other}")


def test_resolve_url_order(no_worker, monkeypatch):
    with pytest.raises(ConnectRestError, match="no Kafka Connect worker is known"):
        resolve_url()
    monkeypatch.setenv(connect_rest.ENV_URL, "connect.example:8083/")
    assert resolve_url() == "http://connect.example:8083"
    assert resolve_url("https://other:8443") == "https://other:8443"


def test_parse_payload_shapes():
    name, config = parse_payload(json.dumps(SOURCE))
    assert name == "lines" and config == SOURCE["config"]
    flat = {"name": "lines", **SOURCE["config"], "tasks.max": 2, "errors.log.enable": True}
    name, config = parse_payload(flat)
    assert name == "lines" and "name" not in config
    assert config["tasks.max"] == "2" and config["errors.log.enable"] == "true"  # Connect stores strings
    assert parse_payload({"config": SOURCE["config"]}, name="given")[0] == "given"
    with pytest.raises(ConnectRestError, match="two names"):
        parse_payload({"name": "a", "config": {**SOURCE["config"], "name": "b"}})


def test_connect_error_messages_become_one_line():
    message = (
        "Connector configuration is invalid and contains the following 2 error(s):\n"
        "Must configure one of topics or topics.regex\nMust configure one of topics or topics.regex\n"
        "You can also find the above list of errors at the endpoint "
        "`/connector-plugins/{connectorType}/config/validate`"
    )
    assert one_line(message) == (
        "Connector configuration is invalid and contains the following 2 error(s): "
        "Must configure one of topics or topics.regex"
    )
    plugins = (
        "Failed to find any class that implements Connector and which name matches Nope, "
        "available connectors are: "
        "PluginDesc{klass=class org.apache.kafka.connect.file.FileStreamSinkConnector, "
        "name='x', version='4.3.1', "
        "encodedVersion=4.3.1, type=sink, typeName='sink', location='classpath'}"
    )
    assert one_line(plugins).endswith(
        "available connectors are: org.apache.kafka.connect.file.FileStreamSinkConnector"
    )


# Shapes as the real Kafka Connect 4.3.1 worker answers them.
STATUS = {
    "name": "lines",
    "connector": {"state": "RUNNING", "worker_id": "127.0.0.1:8083", "version": "4.3.1"},
    "tasks": [
        {
            "id": 1,
            "state": "FAILED",
            "worker_id": "127.0.0.1:8083",
            "trace": "org.x.Boom: no file\n\tat a.b(C.java)",
        },
        {"id": 0, "state": "RUNNING", "worker_id": "127.0.0.1:8083", "version": "4.3.1"},
    ],
    "type": "source",
}


def test_status_frame_has_the_connector_then_one_row_per_task():
    frame = status_frame(STATUS)
    assert list(frame.columns) == ["connector", "type", "component", "state", "worker_id", "error"]
    assert list(frame["component"]) == ["connector", "task 0", "task 1"]
    assert list(frame["state"]) == ["RUNNING", "RUNNING", "FAILED"]
    assert list(frame["error"]) == ["", "", "org.x.Boom: no file"]


def test_list_frame_rows_per_connector():
    expanded = {
        "lines": {"status": STATUS, "info": {"name": "lines", "config": SOURCE["config"], "type": "source"}},
        "a-sink": {
            "status": {
                "name": "a-sink",
                "connector": {"state": "PAUSED", "worker_id": "w"},
                "tasks": [],
                "type": "sink",
            },
            "info": {"name": "a-sink", "config": {"connector.class": "S"}, "type": "sink"},
        },
    }
    frame = list_frame(expanded)
    assert list(frame["connector"]) == ["a-sink", "lines"]
    row = frame.set_index("connector").loc["lines"]
    assert (row["type"], row["state"], row["tasks"], row["tasks_running"]) == ("source", "RUNNING", 2, 1)
    assert row["class"].endswith("FileStreamSourceConnector") and row["error"] == "org.x.Boom: no file"
    assert list(list_frame({}).columns) == connect_magics.LIST_COLUMNS


def test_a_rebalance_is_waited_out_and_other_errors_are_not(no_worker):
    """A distributed worker answers 409 "rebalance in progress" while joining, and 500 "a rebalance is
    expected" right after a config change: both are retried; any other error is raised at once."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    answers = {
        "/connectors/a/config": [
            (409, "Cannot complete request momentarily due to rebalance"),
            (500, "Request cannot be completed because a rebalance is expected"),
            (200, None),
        ],
        "/connectors/b/config": [(500, "Something else broke"), (200, None)],
    }
    asked = []

    class Worker(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            asked.append(self.path)
            status, message = answers[self.path].pop(0)
            body = json.dumps(
                {"topics": "t"} if status == 200 else {"error_code": status, "message": message}
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Worker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = connect_rest.ConnectClient(f"http://127.0.0.1:{server.server_port}", timeout=5)
        assert client.config("a") == {"topics": "t"}
        with pytest.raises(ConnectRestError, match=r"^Kafka Connect \(HTTP 500\): Something else broke$"):
            client.config("b")
    finally:
        server.shutdown()
    assert asked == ["/connectors/a/config"] * 3 + ["/connectors/b/config"]
