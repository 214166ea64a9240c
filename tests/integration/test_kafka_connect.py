"""A real Kafka Connect 4.3.1 worker (distributed mode) on the real broker, driven through
%%connect / %connect.

The worker is started through streamframe.local in the suite's STREAMFRAME_HOME (beside the session's
broker) once for this module, and stopped at the end. The FileStream source connector reads a file into
a topic and the FileStream sink connector writes that topic to another file: the two files must match,
before and after a pause/resume, through a restart; then delete, and Connect's errors as one line.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid

import pytest
from IPython.core.error import UsageError

from streamframe import cli, local
from streamframe.connectors.connect_rest import ENV_URL, ConnectClient
from streamframe.magics.connect import ConnectMagics

pytestmark = pytest.mark.integration

SOURCE_CLASS = "org.apache.kafka.connect.file.FileStreamSourceConnector"
SINK_CLASS = "org.apache.kafka.connect.file.FileStreamSinkConnector"


@pytest.fixture(scope="module")
def worker(bootstrap, tmp_path_factory):
    previous_url = os.environ.pop(ENV_URL, None)  # the magics must find the worker through local state
    previous_home = os.environ.get("STREAMFRAME_HOME")
    if (
        local.status() is None
    ):  # STREAMFRAME_BOOTSTRAP named another cluster: the worker's state goes elsewhere
        os.environ["STREAMFRAME_HOME"] = str(tmp_path_factory.mktemp("connect-home"))
    started = time.monotonic()
    worker = local.start_connect(bootstrap=None if local.status() is not None else bootstrap)
    print(f"Kafka Connect worker ready at {worker.url} in {time.monotonic() - started:.1f} s")
    try:
        yield worker
    finally:
        assert local.stop_connect()
        if previous_url is not None:
            os.environ[ENV_URL] = previous_url
        if previous_home is not None:
            os.environ["STREAMFRAME_HOME"] = previous_home


@pytest.fixture(scope="module")
def shell(worker):
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.register_magics(ConnectMagics(ip))
    return ip


def _payload(name: str, cls: str, **config) -> str:
    return json.dumps({"name": name, "config": {"connector.class": cls, "tasks.max": "1", **config}})


def _wait_for_lines(path, expected: list[str], timeout: float = 60.0) -> list[str]:
    deadline, got = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        got = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        if len(got) >= len(expected):
            break
        time.sleep(0.25)
    return got


@pytest.fixture(scope="module")
def pipeline(shell, tmp_path_factory):
    """file → FileStreamSource → topic → FileStreamSink → file, created with %%connect."""
    data = tmp_path_factory.mktemp("connect-files")
    source_file, sink_file = data / "in.txt", data / "out.txt"
    # ASCII: FileStreamSourceTask records its position in characters but skips bytes on restart, so a
    # restarted source would re-read part of a non-ASCII file (Kafka's example connector; see the
    # restart test).
    lines = [f'line {i}: {{"qty": {i}, "symbol": "AAPL"}}' for i in range(300)]
    source_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tag = uuid.uuid4().hex[:6]
    topic, src, sink = f"connect-lines-{tag}", f"file-src-{tag}", f"file-sink-{tag}"
    # The broker does not auto-create topics: the source creates its own (Connect's topic.creation.*).
    created = shell.run_cell_magic("connect", "", _payload(
        src, SOURCE_CLASS, file=str(source_file), topic=topic,
        **{"topic.creation.default.replication.factor": 1, "topic.creation.default.partitions": 1,
           "demo.password": "hunter2-secret"},
    ))  # fmt: skip
    assert list(created["component"]) == ["connector", "task 0"]
    assert set(created["state"]) == {"RUNNING"}
    shell.run_cell_magic("connect", "", _payload(sink, SINK_CLASS, file=str(sink_file), topics=topic))
    return {"source_file": source_file, "sink_file": sink_file, "lines": lines, "topic": topic,
            "src": src, "sink": sink}  # fmt: skip


def test_worker_state_and_cli(worker, capsys):
    assert local.connect_status() == worker
    assert (worker.home / "connect.json").exists() and worker.log_path.exists()
    info = ConnectClient(worker.url).info()
    assert info["version"] == local.KAFKA_VERSION
    assert local.start_connect(bootstrap=worker.bootstrap) == worker  # reused, not a second JVM
    assert cli.main(["local", "status"]) in (0, 1)
    assert f"Kafka Connect running at {worker.url} (pid {worker.pid}" in capsys.readouterr().out
    assert cli.main(["local", "logs", "--connect", "--lines", "200"]) == 0
    assert "Kafka Connect" in capsys.readouterr().out


def test_a_file_goes_through_a_topic_and_back(shell, pipeline):
    got = _wait_for_lines(pipeline["sink_file"], pipeline["lines"])
    assert got == pipeline["lines"]

    status = shell.run_line_magic("connect", f"status {pipeline['src']}")
    assert list(status["component"]) == ["connector", "task 0"]
    assert set(status["state"]) == {"RUNNING"} and set(status["type"]) == {"source"}

    listed = shell.run_line_magic("connect", "list").set_index("connector")
    for name, kind, cls in (
        (pipeline["src"], "source", SOURCE_CLASS),
        (pipeline["sink"], "sink", SINK_CLASS),
    ):
        row = listed.loc[name]
        assert (row["type"], row["class"], row["state"], row["tasks"], row["tasks_running"]) == (
            kind, cls, "RUNNING", 1, 1,
        )  # fmt: skip

    config = shell.run_line_magic("connect", f"config {pipeline['src']}")["value"]
    assert config["file"] == str(pipeline["source_file"]) and config["topic"] == pipeline["topic"]
    assert config["demo.password"] == "********"  # secrets are masked in the table

    plugins = shell.run_line_magic("connect", "plugins")
    assert {SOURCE_CLASS, SINK_CLASS} <= set(plugins["class"])


def test_pause_resume_restart_delete(shell, pipeline):
    src, sink, source_file, sink_file = (pipeline[k] for k in ("src", "sink", "source_file", "sink_file"))
    assert _wait_for_lines(sink_file, pipeline["lines"]) == pipeline["lines"]

    paused = shell.run_line_magic("connect", f"pause {src}")
    assert set(paused["state"]) == {"PAUSED"}
    more = [f"appended {i}" for i in range(25)]
    with open(source_file, "a", encoding="utf-8") as fh:
        fh.write("\n".join(more) + "\n")
    time.sleep(3.0)  # a paused source reads nothing
    assert len(sink_file.read_text(encoding="utf-8").splitlines()) == len(pipeline["lines"])

    resumed = shell.run_line_magic("connect", f"resume {src}")
    assert set(resumed["state"]) == {"RUNNING"}
    assert _wait_for_lines(sink_file, pipeline["lines"] + more) == pipeline["lines"] + more

    restarted = shell.run_line_magic("connect", f"restart {src} --tasks")
    assert set(restarted["state"]) == {"RUNNING"}
    restarted = shell.run_line_magic("connect", f"restart {sink}")
    assert set(restarted["state"]) == {"RUNNING"}
    # The restarted source resumes from its committed offset: nothing is read twice; UTF-8 goes through.
    with open(source_file, "a", encoding="utf-8") as fh:
        fh.write("after restart: é ü ✓ 日本\n")
    expected = pipeline["lines"] + more + ["after restart: é ü ✓ 日本"]
    assert _wait_for_lines(sink_file, expected) == expected

    for name in (sink, src):
        assert shell.run_line_magic("connect", f"delete {name}") is None
    listed = shell.run_line_magic("connect", "list")
    assert src not in set(listed["connector"]) and sink not in set(listed["connector"])
    with pytest.raises(UsageError) as err:
        shell.run_line_magic("connect", f"status {src}")
    assert str(err.value) == f"%connect: Kafka Connect (HTTP 404): No status found for connector {src}"


def test_connect_errors_are_one_line(shell, tmp_path):
    name = f"bad-sink-{uuid.uuid4().hex[:6]}"
    with pytest.raises(UsageError) as err:  # a sink needs topics
        shell.run_cell_magic("connect", "", _payload(name, SINK_CLASS, file=str(tmp_path / "x.txt"),
                                                     **{"secret.password": "hunter2-secret"}))  # fmt: skip
    message = str(err.value)
    assert message.startswith("%connect: Kafka Connect (HTTP 400): Connector configuration is invalid")
    assert "Must configure one of topics or topics.regex" in message
    assert "\n" not in message and "hunter2" not in message

    with pytest.raises(UsageError,
                       match=r"^%connect: Kafka Connect \(HTTP 400\): Failed to find any class .* Nope"):
        shell.run_cell_magic("connect", "", _payload(name, "Nope"))

    first = shell.run_cell_magic(
        "connect", "--no-wait", _payload(name, SINK_CLASS, topics="t", file=str(tmp_path / "o"))
    )
    assert first is None
    try:
        with pytest.raises(UsageError) as err:  # registering the same name twice fails, as in Kafka Connect
            shell.run_cell_magic(
                "connect", "", _payload(name, SINK_CLASS, topics="t", file=str(tmp_path / "o"))
            )
        assert str(err.value) == f"%connect: Kafka Connect (HTTP 409): Connector {name} already exists"
        # ... unless the configuration is replaced on purpose
        flat = {"connector.class": SINK_CLASS, "tasks.max": "1", "topics": "t2", "file": str(tmp_path / "o")}
        replaced = shell.run_cell_magic("connect", f"{name} --replace", json.dumps(flat))
        assert set(replaced["connector"]) == {name}
        assert shell.run_line_magic("connect", f"config {name}")["value"]["topics"] == "t2"
    finally:
        shell.run_line_magic("connect", f"delete {name}")
    with pytest.raises(UsageError, match=r"^%connect: Kafka Connect \(HTTP 404\): Unknown connector"):
        shell.run_line_magic("connect", f"pause {name}")


def test_worker_start_failures_say_why(worker, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMFRAME_HOME", str(tmp_path / "other"))  # never touches the module's worker
    with socket.socket() as refused:
        refused.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{refused.getsockname()[1]}"
    with pytest.raises(local.ConnectWorkerError, match=f"no Kafka broker answers at {dead}"):
        local.start_connect(bootstrap=dead)

    with socket.socket() as silent:  # accepts connections, never speaks Kafka
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        started = time.monotonic()
        with pytest.raises(local.ConnectWorkerError) as err:
            local.start_connect(bootstrap=f"127.0.0.1:{silent.getsockname()[1]}", timeout=8)
    assert time.monotonic() - started < 30
    message = str(err.value)
    assert "did not become ready" in message and "is the Kafka cluster at 127.0.0.1:" in message
    assert "--- last lines of" in message and "connect.log" in message
    assert local.connect_status() is None  # the half-started worker was stopped
    monkeypatch.undo()
    assert local.connect_status() == worker
