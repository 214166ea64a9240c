"""The magics against the real broker, in a real InteractiveShell: topics, produce, tail, queries."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import streamframe as sf
from streamframe.connectors import default_registry
from tests.integration.helpers import consume_all, create_topic, produce

pytestmark = pytest.mark.integration


@pytest.fixture
def shell(conn):
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance()
    if "kafka_topics" not in sh.magics_manager.magics["line"]:
        sh.run_line_magic("load_ext", "streamframe")
    yield sh
    sh.run_line_magic("config", "KafkaMagics.tail_default = 10")
    default_registry().stop_all(delete=True)


def test_produce_json_lines_then_tail_reads_them(shell, topic_name, bootstrap):
    with capture_output() as out:
        shell.run_cell_magic("kafka_produce", f"{topic_name} --key customer --timestamp ts", """
{"order": 1, "customer": "ann", "amount": 9.5, "ts": 1700000000000}
{"order": 2, "customer": "bob", "amount": 3.0, "ts": "2023-11-14T22:13:21Z"}

{"order": 3, "customer": "ann", "amount": 1.25, "ts": 1700000002000}
""")
    assert out.stdout.strip() == f"wrote 3 records to {topic_name!r} (created the topic with 1 partition)"
    records = consume_all(bootstrap, topic_name, expect=3)
    assert [m.key() for m in records] == [b"ann", b"bob", b"ann"]
    assert [m.timestamp()[1] for m in records] == [1700000000000, 1700000001000, 1700000002000]
    assert records[0].value() == b'{"order": 1, "customer": "ann", "amount": 9.5, "ts": 1700000000000}'

    last = shell.run_line_magic("kafka_tail", f"{topic_name} -n 2")
    assert last["order"].tolist() == [2, 3]
    assert last["_key"].tolist() == ["bob", "ann"]
    assert last["_offset"].tolist() == [1, 2] and last["_partition"].tolist() == [0, 0]
    assert last["_timestamp"].tolist() == list(
        pd.to_datetime([1700000001000, 1700000002000], unit="ms", utc=True)
    )
    everything = shell.run_line_magic("kafka_tail", topic_name)
    assert everything["amount"].tolist() == [9.5, 3.0, 1.25]


def test_produce_csv_and_text_then_tail_decodes_them(shell, topic_name):
    shell.run_cell_magic(
        "kafka_produce",
        f"{topic_name} --format csv --key id --partitions 2",
        'id,name,qty\n1,ann,5\n2,"b, c",7\n',
    )
    got = shell.run_line_magic("kafka_tail", f"{topic_name} --format csv --columns id,name,qty")
    assert sorted(got[["id", "name", "qty"]].values.tolist()) == [[1, "ann", 5], [2, "b, c", 7]]
    assert set(got["_partition"]) <= {0, 1}
    text_topic = f"{topic_name}-text"
    shell.run_cell_magic("kafka_produce", f"{text_topic} --format text", "hello world\nsecond line\n")
    got = shell.run_line_magic("kafka_tail", text_topic)  # auto: not JSON, so text
    assert got["value"].tolist() == ["hello world", "second line"]


def test_tail_of_an_unknown_topic_is_one_usage_line(shell, topic_name):
    shell.run_line_magic("kafka_topics", f"create {topic_name}")
    with pytest.raises(UsageError) as err:
        shell.run_line_magic("kafka_tail", f"{topic_name}x")
    message = str(err.value)
    assert message.startswith("%kafka_tail: topic") and "does not exist" in message and "\n" not in message
    assert topic_name in message  # the similar topic is named


@pytest.mark.parametrize("live", [False, True], ids=["terminal", "kernel"])
def test_tail_follow_shows_records_as_they_arrive(shell, topic_name, bootstrap, monkeypatch, live):
    from streamframe.magics.common import StreamframeMagics

    monkeypatch.setattr(
        StreamframeMagics, "live", property(lambda self: live)
    )  # kernel: a display updated in place
    create_topic(bootstrap, topic_name)
    produce(bootstrap, topic_name, [b'{"n": 0}'])

    def later():
        time.sleep(1.0)
        produce(bootstrap, topic_name, [b'{"n": 41}', b'{"n": 42}'])

    threading.Thread(target=later, daemon=True).start()
    started = time.monotonic()
    with capture_output() as out:
        result = shell.run_line_magic("kafka_tail", f"{topic_name} --follow --timeout 3")
    assert result is None and 2.5 < time.monotonic() - started < 8
    shown = out.stdout + "".join(o.data.get("text/plain", "") for o in out.outputs)
    assert "41" in shown and "42" in shown
    if live:  # the table and the status line were displayed once, then updated in place
        assert (
            "following" in out.outputs[-1].data["text/plain"]
            and "2 new records" in out.outputs[-1].data["text/plain"]
        )
    assert f"stopped following {topic_name!r} after 2 new records" in out.stdout


def test_tail_default_is_configurable(shell, topic_name, bootstrap):
    create_topic(bootstrap, topic_name, partitions=3)
    produce(
        bootstrap,
        topic_name,
        [f'{{"i": {i}}}'.encode() for i in range(20)],
        timestamps=[1_700_000_000_000 + i for i in range(20)],
        partitions=[i % 3 for i in range(20)],
    )
    shell.run_line_magic("config", "KafkaMagics.tail_default = 4")
    got = shell.run_line_magic("kafka_tail", topic_name)
    assert got["i"].tolist() == [16, 17, 18, 19]  # the last over all partitions, by timestamp


def test_kafka_topics_create_list_describe_delete(shell, topic_name):
    with capture_output() as out:
        shell.run_line_magic(
            "kafka_topics", f"create {topic_name} --partitions 3 --config retention.ms=3600000"
        )
    assert out.stdout.strip() == f"created topic {topic_name!r} with 3 partitions"
    listed = shell.run_line_magic("kafka_topics", "")
    assert listed.set_index("name").loc[topic_name, "partitions"] == 3
    assert shell.run_line_magic("kafka_topics", f"list '{topic_name[:-3]}*'")["name"].tolist() == [topic_name]
    with pytest.raises(UsageError, match="already exists"):
        shell.run_line_magic("kafka_topics", f"create {topic_name}")
    shell.run_cell_magic("kafka_produce", topic_name, '{"a": 1}\n{"a": 2}')
    with capture_output():
        described = shell.run_line_magic("kafka_topics", f"describe {topic_name}")
    assert described["partition"].tolist() == [0, 1, 2] and described["records"].sum() == 2
    assert described.attrs["config"]["retention.ms"] == "3600000"
    with pytest.raises(UsageError, match="retention.ms"):
        shell.run_line_magic("kafka_topics", f"create {topic_name}-bad --config retention.ms=soon")
    shell.run_line_magic("kafka_topics", f"delete {topic_name}")
    assert topic_name not in shell.run_line_magic("kafka_topics", "")["name"].tolist()
    with pytest.raises(UsageError, match="does not exist"):
        shell.run_line_magic("kafka_topics", f"delete {topic_name}")


def test_sf_queries_lists_a_running_query_and_sf_stop_stops_it(shell, topic_name, bootstrap):
    create_topic(bootstrap, topic_name)
    produce(bootstrap, topic_name, [b'{"x": 1}', b'{"x": 2}'])
    s = sf.stream(topic_name)
    query = s[s.x > 0].start(name=f"q-{topic_name}")
    deadline = time.monotonic() + 30
    while query.metrics["records_in"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    table = shell.run_line_magic("sf_queries", "--running").set_index("name")
    row = table.loc[query.name]
    assert row["status"] == "running" and row["records_in"] == 2 and row["records_out"] == 2
    with pytest.raises(UsageError, match="no query called 'nope'"):
        shell.run_line_magic("sf_stop", "nope")
    with capture_output() as out:
        shell.run_line_magic("sf_stop", query.name)
    assert query.status == "stopped" and f"query {query.name!r} stopped" in out.stdout
    assert shell.run_line_magic("sf_queries", "").set_index("name").loc[query.name, "status"] == "stopped"
    assert query.name not in shell.run_line_magic("sf_queries", "--running")["name"].tolist()


def test_sf_stop_all(shell, topic_name, bootstrap):
    create_topic(bootstrap, topic_name)
    a = sf.stream(topic_name).start(name=f"a-{topic_name}")
    b = sf.stream(topic_name)[["x"]].start(name=f"b-{topic_name}")
    shell.run_line_magic("sf_stop", "--all")
    assert a.status == b.status == "stopped"


def test_source_magic_as_a_cell_with_properties(shell, topic_name, monkeypatch):
    from streamframe.magics.common import StreamframeMagics
    from streamframe.magics.connectors import ProgressView

    shown = []
    monkeypatch.setattr(StreamframeMagics, "live", property(lambda self: True))
    monkeypatch.setattr(ProgressView, "_ipython_display_", lambda self: shown.append(self))
    shell.run_cell_magic(
        "kafka_source",
        "props",
        f"""
# a Kafka Connect style properties body
connector.class=generator
tasks.max=1
topic={topic_name}
schema=orders
rate=0
count=25
""",
    )
    status = shell.run_line_magic("connectors", "props --wait --timeout 20")["value"]
    assert status["state"] == "FINISHED" and status["records"] == 25 and status["config schema"] == "orders"
    ((bar, label),) = [(bar, label) for _, bar, label in shown[0].rows]  # the load's progress bar
    deadline = time.monotonic() + 5
    while bar.bar_style != "success" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (bar.value, bar.max, bar.bar_style, label.value) == (25, 25, "success", "25 / 25 FINISHED")
    got = sf.stream(topic_name).run(metadata=True)
    assert len(got) == 25 and (got["_key"] == got["customer_id"]).all()
