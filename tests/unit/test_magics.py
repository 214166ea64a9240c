"""The magics and connectors without a broker: registration, --help, one-line UsageErrors, %config, the
connectors' settings and their broker-free parts (file parsing, SQLite quoting, pandas variables,
synthetic data, progress bars)."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from streamframe.connectors import SyntheticData, generate
from streamframe.connectors.base import Context
from streamframe.connectors.config import Settings, parse_pairs, parse_properties
from streamframe.connectors.dataframe import PandasSink
from streamframe.connectors.file import FileSource
from streamframe.connectors.generator import GeneratorSource
from streamframe.connectors.registry import SHORT_NAMES, ConnectorRegistry, resolve
from streamframe.connectors.sqlite import SqliteSink, SqliteSource, quote
from streamframe.magics import KafkaMagics
from streamframe.magics.common import unquote

LINE_MAGICS = ["kafka_topics", "kafka_tail", "kafka_source", "kafka_sink", "connectors", "connector_stop",
               "sf_queries", "sf_stop", "kafka_produce", "schemas"]
HOSTILE = 'x"; DROP TABLE t; --'


@pytest.fixture
def shell(offline_shell):
    """The real InteractiveShell with the extension loaded; any attempt to reach Kafka fails the test."""
    sh = offline_shell
    if "kafka_topics" not in sh.magics_manager.magics["line"]:
        sh.run_line_magic("load_ext", "streamframe")
    yield sh
    sh.run_line_magic("config", "KafkaMagics.tail_default = 10")


def usage_error(shell, magic: str, line: str, cell: str | None = None) -> str:
    with pytest.raises(UsageError) as err:
        if cell is None:
            shell.run_line_magic(magic, line)
        else:
            shell.run_cell_magic(magic, line, cell)
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# --- registration, --help, %config ---------------------------------------------------------------

def test_load_ext_registers_every_magic_and_one_options_object(shell):
    magics = shell.magics_manager.magics
    for name in LINE_MAGICS:
        assert name in magics["line"], name
    for name in ("kafka_produce", "kafka_source", "kafka_sink"):
        assert name in magics["cell"], name
    from streamframe.magics import load_ipython_extension

    load_ipython_extension(shell)  # what %reload_ext does (without re-importing streamframe)
    assert sum(isinstance(c, KafkaMagics) for c in shell.configurables) == 1


@pytest.mark.parametrize("magic", LINE_MAGICS)
def test_every_magic_has_help(shell, magic):
    with capture_output() as out:
        result = shell.run_line_magic(magic, "--help")
    assert result is None
    assert out.stdout.lstrip(": \n").startswith(f"%{magic}") and "usage" not in out.stdout.lower()[:5]
    with capture_output() as short:
        shell.run_line_magic(magic, "-h")
    assert short.stdout == out.stdout


def test_config_changes_the_options_of_every_magic(shell):
    shell.run_line_magic("config", "KafkaMagics.tail_default = 3")
    shell.run_line_magic("config", "KafkaMagics.produce_format = 'csv'")
    options = next(c for c in shell.configurables if isinstance(c, KafkaMagics))
    assert (options.tail_default, options.produce_format) == (3, "csv")
    tail = shell.magics_manager.registry["TailMagics"]
    assert tail.options is options
    # the configured format applies: a CSV body with a broken row fails as CSV, before any connection
    assert "line 3 has 1 fields" in usage_error(shell, "kafka_produce", "t", "a,b\n1,2\n3\n")
    shell.run_line_magic("config", "KafkaMagics.produce_format = 'json'")


# --- one-line usage errors, with no broker --------------------------------------------------------

@pytest.mark.parametrize(
    "magic, line, expected",
    [
        ("kafka_topics", "frob", "invalid choice: 'frob'"),
        ("kafka_topics", "create", "create takes one topic name"),
        ("kafka_topics", "describe a b", "describe takes one topic name"),
        ("kafka_topics", "delete", "delete takes the topic name(s)"),
        ("kafka_topics", "list --partitions 3", "--partitions and --config go with create"),
        ("kafka_topics", "create t --partitions x", "invalid int value: 'x'"),
        ("kafka_tail", "", "the following arguments are required: topic"),
        ("kafka_tail", "t -n -1", "-n must be 0 or more"),
        ("kafka_tail", "t --timeout 3", "--timeout goes with --follow"),
        ("kafka_tail", "t --format xml", "invalid choice: 'xml'"),
        ("kafka_tail", "'t", "No closing quotation"),
        ("kafka_produce", "t", "is a cell magic"),
        ("kafka_source", "", "the following arguments are required: name"),
        ("kafka_source", "s topic", "expected key=value, got 'topic'"),
        (
            "kafka_source",
            "s topic=t",
            "missing connector.class=... (known: file, generator, pandas, sqlite, topic)",
        ),
        (
            "kafka_source",
            "s connector.class=kafka topic=t",
            "unknown connector.class 'kafka'; known: file, generator",
        ),
        ("kafka_source", "s connector.class=generator", "missing required setting topic="),
        ("kafka_source", "s connector.class=generator topic=t rat=5", "did you mean 'rate'?"),
        (
            "kafka_source",
            "s connector.class=generator topic=t schema=stocks",
            "use one of: trades, clicks, orders, iot",
        ),
        ("kafka_source", "s connector.class=generator topic=t count=-1", "count=-1 must be at least 0"),
        ("kafka_source", "s connector.class=generator topic=t tasks.max=two", "tasks.max='two'"),
        ("kafka_source", "s name=other connector.class=generator topic=t", "name=other differs"),
        ("kafka_source", "s connector.class=FileStreamSinkConnector topics=t file=x", "is a sink connector"),
        ("kafka_source", "s connector.class=topic topics=a topic=a", "cannot be copied into itself"),
        ("kafka_source", "s connector.class=file file=x.log topic=t key=id", "a text file has none"),
        (
            "kafka_sink",
            "s connector.class=generator topics=t",
            "has no sink; sinks: file, pandas, sqlite, topic",
        ),
        ("kafka_sink", "s connector.class=file file=x.csv", "missing required setting topics="),
        (
            "kafka_sink",
            "s connector.class=file topics=t file=x.csv until=later",
            "until='later' is not valid",
        ),
        (
            "kafka_sink",
            "s connector.class=pandas topics=t var=not-a-name",
            "is not a valid Python variable name",
        ),
        ("kafka_sink", "s connector.class=sqlite topics=t db=x.db", "missing required setting table="),
        (
            "kafka_sink",
            "s connector.class=file topics=t file=x errors.tolerance=some",
            "use one of: none, all",
        ),
        ("connectors", "nope", "no connector called 'nope'"),
        ("connectors", "--timeout 1", "--timeout goes with --wait"),
        ("connector_stop", "", "name one connector, or use --all"),
        ("connector_stop", "nope", "no connector called 'nope'"),
        ("sf_stop", "", "name one query, or use --all"),
        ("sf_stop", "nope", "no query called 'nope'"),
        ("sf_queries", "extra", "unrecognized arguments: extra"),
    ],
)
def test_bad_arguments_are_one_usage_line(shell, magic, line, expected):
    message = usage_error(shell, magic, line)
    assert message.startswith((f"%{magic}: ", f"%%{magic} "))
    assert expected in message


# Every magic, each with the positionals it needs left out, so a missing one cannot hide the bad flag.
ALL_MAGICS = [("line", m) for m in LINE_MAGICS if m != "kafka_produce"] + \
    [("cell", "kafka_produce"), ("cell", "kafka_source"), ("cell", "kafka_sink"), ("line", "connect"),
     ("cell", "connect")]


@pytest.mark.parametrize("kind, magic", ALL_MAGICS)
def test_a_bad_flag_is_named_before_a_missing_argument(shell, kind, magic):
    message = usage_error(shell, magic, "--bogus", "{}" if kind == "cell" else None)
    assert "unrecognized arguments: --bogus" in message
    assert "required" not in message
    assert message.startswith((f"%{magic}: ", f"%%{magic}: "))


@pytest.mark.parametrize(
    "magic, line, expected",
    [
        ("kafka_tail", "orders --folow", "unrecognized arguments: --folow; did you mean --follow?"),
        ("kafka_tail", "--bogus=3 orders", "unrecognized arguments: --bogus=3"),
        ("kafka_tail", "orders -x", "unrecognized arguments: -x"),
        ("kafka_topics", "create t --partition 3 --nope", "unrecognized arguments: --nope"),
        ("sf_stop", "q --all --force", "unrecognized arguments: --force"),
    ],
)
def test_bad_flags_are_named_with_the_closest_option(shell, magic, line, expected):
    assert expected in usage_error(shell, magic, line)


@pytest.mark.parametrize(
    "magic, line, expected",
    [
        ("kafka_tail", "t -n -1", "-n must be 0 or more"),  # a negative number is a value, not a flag
        ("kafka_tail", "t --time 2 -n5", "--timeout goes with --follow"),  # an abbreviation; -n5
        ("kafka_tail", "-n -3 -- -t", "-n must be 0 or more"),  # after --, a topic called -t
        ("kafka_topics", "create t --partitions=0", "--partitions must be at least 1"),
    ],
)
def test_known_flags_in_every_spelling_still_parse(shell, magic, line, expected):
    message = usage_error(shell, magic, line)
    assert "unrecognized" not in message
    assert expected in message


@pytest.mark.parametrize(
    "line, cell, expected",
    [
        ("t", "   \n", "the cell is empty"),
        ("t", '{"a": 1}\n{bad\n', "line 2 is not JSON"),
        ("t", '[{"a": 1}, {"a": ', "the cell is not a JSON array"),
        ("t --key id", '{"a": 1}', "--key id: the record on line 1 has no field 'id'"),
        ("t --timestamp ts", '{"ts": "soon"}', "'soon' on line 1 is not a time"),
        ("t --format csv", "a,b\n1,2,3", "line 2 has 3 fields, the header has 2 (a, b)"),
        ("t --format csv", "a,b\n", "a CSV header but no records"),
        ("t --format text --key a", "x", "text records have none"),
        ("t --format xml", "x", "invalid choice: 'xml'"),
    ],
)
def test_produce_body_errors_are_one_usage_line(shell, line, cell, expected):
    assert expected in usage_error(shell, "kafka_produce", line, cell)


def test_empty_listings_need_no_broker(shell, monkeypatch):
    import streamframe.connectors.registry as registry_module
    from streamframe import session

    monkeypatch.setattr(registry_module, "_default", ConnectorRegistry())
    monkeypatch.setattr(session, "queries", lambda: [])
    connectors = shell.run_line_magic("connectors", "")
    assert connectors.empty and list(connectors.columns[:4]) == ["name", "class", "type", "state"]
    queries = shell.run_line_magic("sf_queries", "")
    assert queries.empty and "records_in" in queries.columns
    with capture_output() as out:
        shell.run_line_magic("connector_stop", "--all")
    assert out.stdout.strip() == "no connectors"


# --- connector settings ---------------------------------------------------------------------------


def test_connector_classes_reference(shell):
    ref = shell.run_line_magic("connectors", "--classes")
    generator = ref[ref["class"] == "generator"].set_index("setting")["description"]
    assert {
        "schema",
        "rate",
        "count",
        "duration",
        "skew",
        "jitter.ms",
        "topic",
        "name",
        "connector.class",
    } <= set(generator.index)
    assert set(ref["class"]) == set(SHORT_NAMES) and set(ref["type"]) == {"source", "sink", "copy"}


def test_settings_parsing():
    assert parse_pairs(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    assert parse_properties("# comment\n! also\n\nname = feed\ntopic=t\n") == {"name": "feed", "topic": "t"}
    assert unquote(["'a b'", 'file="my file.csv"', "plain"]) == ["a b", "file=my file.csv", "plain"]
    s = Settings(
        {"rate": "1_000", "follow": "yes", "duration": "2min", "topics": "a, b", "secret.key": "k3y"}
    )
    assert (s.integer("rate"), s.flag("follow"), s.duration("duration"), s.items("topics")) == (
        1000,
        True,
        120,
        ["a", "b"],
    )
    assert s.redacted()["secret.key"] == "********"


def test_resolve_short_full_and_kafka_connect_class_names():
    assert resolve("file", "source").__name__ == "FileSource"
    assert resolve("org.apache.kafka.connect.file.FileStreamSinkConnector").__name__ == "FileSink"
    assert resolve("streamframe.connectors.sqlite.SqliteSink", "sink").__name__ == "SqliteSink"
    assert resolve("topic", "sink").__name__ == resolve("topic", "source").__name__ == "TopicCopy"
    assert SHORT_NAMES == ["file", "generator", "pandas", "sqlite", "topic"]


def test_a_name_is_taken_while_a_connector_exists():
    reg = ConnectorRegistry(Context(connection=lambda: (_ for _ in ()).throw(RuntimeError("no kafka"))))
    with pytest.raises(RuntimeError, match="no kafka"):  # failing to start frees the name
        reg.create({"name": "a", "connector.class": "generator", "topic": "t"}, "source")
    assert "a" not in reg and len(reg) == 0


def test_generator_totals_from_count_and_duration():
    def total(**config):
        return GeneratorSource("g", Settings({"topic": "t", **config})).total

    assert total(count="500") == 500
    assert total(rate="100", duration="30s") == 3000
    assert total(rate="100", duration="1s", count="50") == 50
    assert total(rate="100") is None
    source = GeneratorSource("g", Settings({"topic": "t", "schema": "iot"}))
    assert (source.key, source.timestamp, source.bounded) == ("device_id", "ts", False)


# --- synthetic data -------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", ["trades", "clicks", "orders", "iot"])
def test_synthetic_data_is_reproducible_and_independent_of_batching(schema):
    whole = generate(schema, 5000, seed=3, start_ms=1_000, rate=100, jitter_ms=50)
    data = SyntheticData(schema, seed=3, start_ms=1_000, rate=100, jitter_ms=50)
    pieces = pd.concat([data.take(n) for n in (1, 999, 3500, 500)], ignore_index=True)
    pd.testing.assert_frame_equal(pieces, whole)
    assert whole.iloc[:, 0].tolist() == list(range(5000))
    assert (whole["ts"] >= 1_000 - 50).all() and (whole["ts"].diff().dropna() < 0).any()  # out of order
    assert not generate(schema, 100, seed=4, start_ms=0).equals(generate(schema, 100, seed=3, start_ms=0))


def test_key_skew():
    skewed = generate("clicks", 20000, seed=1, start_ms=0, skew=1.5, keys=100)["user_id"].value_counts()
    flat = generate("clicks", 20000, seed=1, start_ms=0, skew=0, keys=100)["user_id"].value_counts()
    assert skewed.iloc[0] > 10 * flat.iloc[0] / 2 and skewed.index[0] == "u00000"
    assert flat.max() < 3 * flat.min() + 50 and len(flat) == 100


# --- the broker-free parts of the connectors ------------------------------------------------------


def _file_batches(path, **config) -> list:
    source = FileSource("f", Settings({"file": str(path), "topic": "t", **config}))
    return list(source.batches()), source


def test_file_source_parses_csv_jsonl_and_text(tmp_path):
    csv_file = tmp_path / "a.csv"
    csv_file.write_text('id,name,note\n1,ann,"x, y"\n\n2,NA,\n')
    [frame], _ = _file_batches(csv_file)
    assert frame.to_dict("list") == {"id": [1, 2], "name": ["ann", "NA"], "note": ["x, y", frame["note"][1]]}
    assert pd.isna(frame["note"][1])
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"id": 1, "u": "a", "ts": 5}\n{"id": 2, "u": "b", "ts": "1970-01-01T00:00:01Z"}')
    [records], _ = _file_batches(jsonl, key="u", timestamp="ts")
    assert records.values == [
        b'{"id": 1, "u": "a", "ts": 5}',
        b'{"id": 2, "u": "b", "ts": "1970-01-01T00:00:01Z"}',
    ]
    assert (records.keys, records.timestamps) == ([b"a", b"b"], [5, 1000])
    log = tmp_path / "app.log"
    log.write_text("one\r\ntwo\n")
    [records], source = _file_batches(log)
    assert records.values == [b"one", b"two"] and source.format == "text"


def test_file_source_bad_json_line_names_its_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"a": 1}\n\n{oops\n')
    with pytest.raises(Exception, match=r"bad.jsonl line 3: invalid JSON"):
        _file_batches(path)
    batches, source = _file_batches(path, **{"errors.tolerance": "all"})
    assert len(batches[0]) == 1 and source.skipped == 1 and "line 3" in source.last_error


def test_sqlite_identifiers_are_quoted_against_injection(tmp_path):
    assert quote(HOSTILE) == '"x""; DROP TABLE t; --"'
    db = tmp_path / "out.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    sink = SqliteSink("s", Settings({"topics": "in", "db": str(db), "table": "t", "pk": "id"}))
    sink.open_target()
    sink.write(pd.DataFrame({"id": [1, 2], "v": ["a", None], HOSTILE: [1.5, None]}))
    sink.write(pd.DataFrame({"id": [1], "v": ["b"], HOSTILE: [2.5], "when": pd.to_datetime([0], utc=True)}))
    sink.close()
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        rows = [dict(r) for r in con.execute("SELECT * FROM t ORDER BY id")]
    assert rows == [
        {"id": 1, "v": "b", HOSTILE: 2.5, "when": "1970-01-01T00:00:00+00:00"},
        {"id": 2, "v": None, HOSTILE: None, "when": None},
    ]
    # the source reads a table with a hostile name and column the same way
    with sqlite3.connect(db) as con:
        con.execute(f"CREATE TABLE {quote(HOSTILE)} ({quote(HOSTILE)} INTEGER)")
        con.executemany(f"INSERT INTO {quote(HOSTILE)} VALUES (?)", [(1,), (2,)])
    source = SqliteSource("q", Settings({"db": str(db), "table": HOSTILE, "topic": "t"}))
    frames = list(source.batches())
    assert frames[0][HOSTILE].tolist() == [1, 2]


def test_sqlite_sink_refuses_a_table_with_another_primary_key(tmp_path):
    db = tmp_path / "out.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    sink = SqliteSink("s", Settings({"topics": "in", "db": str(db), "table": "t", "pk": "v"}))
    with pytest.raises(ValueError, match=r"table t has primary key \(id\), not pk=v"):
        sink.open_target()


def test_pandas_sink_keeps_the_latest_rows_or_the_latest_per_key():
    ns: dict = {}
    sink = PandasSink(
        "p", Settings({"topics": "t", "var": "live", "pk": "k", "max.rows": "2"}), Context(namespace=ns)
    )
    sink.open_target()
    assert ns["live"].empty
    sink.write(pd.DataFrame({"k": ["a", "b"], "v": [1, 2]}))
    first = ns["live"]
    sink.write(pd.DataFrame({"k": ["a", "c"], "v": [3, 4]}))
    assert ns["live"].to_dict("list") == {"k": ["a", "c"], "v": [3, 4]}
    assert first.to_dict("list") == {"k": ["a", "b"], "v": [1, 2]}  # a new object each refresh


def test_progress_view_follows_its_connectors():
    from streamframe.magics.connectors import ProgressView

    load = SimpleNamespace(name="load", total=200, records=50, state="RUNNING", last_error=None)
    broken = SimpleNamespace(name="broken", total=None, records=7, state="FAILED", last_error="boom")
    view = ProgressView([load, broken])
    (_, bar, label), (_, bar2, label2) = view.rows
    assert (bar.value, bar.max, bar.bar_style, label.value) == (50, 200, "info", "50 / 200 RUNNING")
    assert bar2.bar_style == "danger" and label2.value == "7 FAILED: boom"
    assert view.refresh() is True
    load.records, load.state = 200, "FINISHED"
    assert view.refresh() is False
    assert (bar.value, bar.bar_style) == (200, "success")
