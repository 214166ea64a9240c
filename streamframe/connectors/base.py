"""In-kernel connectors: Kafka Connect's named, key=value-configured sources and sinks, each on a daemon thread.

    Connector                one instance: name, settings, state, records moved, progress, last error
    ├── SourceConnector      batches (DataFrames, or raw records) from somewhere → one topic
    └── SinkConnector        topics → somewhere, in decoded batches (consumer group {app_id}.connect-{name})

Life cycle: the constructor reads the settings (no I/O: a bad setting fails at once), `prepare()` checks
what the connector needs (topics, files, tables, variables) synchronously so a mistake is an error at the
magic, then `run()` moves records on the connector's thread until done (FINISHED) or stopped (STOPPED);
an exception ends it FAILED with the error, secrets masked, in `last_error`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from streamframe.connectors.config import Settings
from streamframe.errors import ConfigError, ConnectorError, StreamframeError
from streamframe.kafka.config import scrub
from streamframe.serde import decode_keys, encode_keys, value_format
from streamframe.time.extract import ms_to_datetime, to_epoch_ms

STATES = ("UNASSIGNED", "RUNNING", "PAUSED", "FAILED", "FINISHED", "STOPPED")
VALUE_FORMATS = ("json", "csv", "text", "bytes")
# Kafka Connect's per-connector client settings: consumer.override.X / producer.override.X (e.g. SASL).
OVERRIDES = ("consumer.override.", "producer.override.")


def _default_connection():
    from streamframe import session

    return session.connection()


@dataclass
class Context:
    """What connectors take from the kernel: the Kafka connection (on first use) and the namespace where
    pandas connectors find and publish DataFrames (the notebook's user namespace)."""

    connection: Callable = _default_connection
    namespace: dict = field(default_factory=dict)


@dataclass
class RawRecords:
    """Records already encoded (a file's lines as written), with their keys and timestamps (ms; 0 = now)."""

    values: list
    keys: list
    timestamps: list

    def __len__(self) -> int:
        return len(self.values)


class ClientOverrides:
    """A Connection whose consumers and producers get extra settings (secrets in them stay masked:
    the client's log lines are scrubbed with its own configuration)."""

    def __init__(self, conn, consumer: dict, producer: dict):
        self._conn, self._consumer, self._producer = conn, dict(consumer), dict(producer)

    def __getattr__(self, name):
        return getattr(self._conn, name)

    def consumer_config(self, group_id: str, extra: dict | None = None) -> dict:
        return self._conn.consumer_config(group_id, {**self._consumer, **(extra or {})})

    def producer_config(self, extra: dict | None = None) -> dict:
        return self._conn.producer_config({**self._producer, **(extra or {})})

    def scrub(self, text: str) -> str:
        return scrub(self._conn.scrub(text), {**self._consumer, **self._producer})


class Connector:
    """One connector: built from its settings, started on its own daemon thread, observable from any
    thread (`state`, `records`, `total`, `skipped`, `last_error`, `status()`).

        >>> c = default_registry().create({"name": "feed", "connector.class": "generator",
        ...                                "topic": "trades", "count": "1000"})   # doctest: +SKIP
        >>> c.wait().state, c.records                                          # doctest: +SKIP
        ('FINISHED', 1000)
    """

    kind = "source"
    short_name = "?"
    bounded = False  # a load that ends by itself (FINISHED), with a progress total
    KEYS: dict[str, str] = {}  # the connector's own settings → what they do (merged along the classes)

    def __init__(self, name: str, settings: Settings, context: Context | None = None):
        self.name = name
        self.settings = settings
        self.context = context or Context()
        self.state = "UNASSIGNED"
        self.records = 0  # records that reached the target: delivered to the topic, written to the file
        self.skipped = 0
        self.total: int | None = None  # a bounded load's record count, for its progress bar
        self.last_error: str | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.connection = None
        self._stop = threading.Event()
        self._resumed = threading.Event()
        self._resumed.set()
        self._thread: threading.Thread | None = None
        self.configure(settings)
        settings.check_unknown(f"{self.short_name} {self.kind}", self.settings_help(), OVERRIDES)
        self.client_overrides = {p: settings.prefixed(p) for p in OVERRIDES}

    @classmethod
    def settings_help(cls) -> dict[str, str]:
        keys: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            keys.update(getattr(klass, "KEYS", {}))
        return keys

    # --- what a connector implements ------------------------------------------------------------
    def configure(self, s: Settings) -> None:
        """Read the settings (no I/O)."""

    def prepare(self) -> None:
        """Check, before the thread starts, what the connector needs (raises ConfigError)."""

    def run(self) -> None:
        """Move records until done or `self.stopping`."""
        raise NotImplementedError

    def close(self) -> None:
        """Release resources; always called on the connector's thread at the end."""

    @property
    def topics(self) -> list[str]:
        return []

    # --- life cycle -----------------------------------------------------------------------------
    def start(self) -> Connector:
        self.prepare()
        self.started_at = time.time()
        self.state = "RUNNING"
        self._thread = threading.Thread(target=self._main, name=f"connector-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # noqa: BLE001 - a connector's thread records every failure
            self._fail(exc)
        finally:
            try:
                self.close()
            except Exception as exc:  # noqa: BLE001 - a close failure is reported, not raised
                if self.state != "FAILED":
                    self._fail(exc)
            if self.state in ("RUNNING", "PAUSED"):
                self.state = "STOPPED" if self._stop.is_set() else "FINISHED"
            self.ended_at = time.time()

    def _fail(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, StreamframeError) else f"{type(exc).__name__}: {exc}"
        self.last_error = self.scrub(message)
        self.state = "FAILED"

    def client(self):
        """The connection, with this connector's consumer.override.* / producer.override.* settings."""
        overrides = self.client_overrides
        if not any(overrides.values()):
            return self.connection
        return ClientOverrides(self.connection, overrides["consumer.override."], overrides["producer.override."])

    def scrub(self, text: str) -> str:
        """`text` with the secrets of the settings and of the connection masked."""
        text = scrub(str(text), {k: str(v) for k, v in self.settings.raw.items()})
        return self.connection.scrub(text) if self.connection is not None else text

    def stop(self, timeout: float = 30.0) -> Connector:
        """Stop after the current batch (what was read is written and committed first)."""
        self._stop.set()
        self._resumed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._thread is None and self.state == "UNASSIGNED":
            self.state = "STOPPED"
        return self

    def pause(self) -> Connector:
        if self.state == "RUNNING":
            self._resumed.clear()
            self.state = "PAUSED"
        return self

    def resume(self) -> Connector:
        if self.state == "PAUSED":
            self.state = "RUNNING"
            self._resumed.set()
        return self

    def wait(self, timeout: float | None = None) -> Connector:
        """Block until the connector ends (a bounded load finishes) or `timeout` passes."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def proceed(self) -> bool:
        """Between batches: wait while paused; False once the connector is told to stop."""
        while not self._resumed.wait(0.2):
            if self._stop.is_set():
                return False
        return not self._stop.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait (waking at once on stop); False once the connector is told to stop."""
        return not self._stop.wait(seconds)

    # --- reporting ------------------------------------------------------------------------------
    def status(self) -> dict:
        end = self.ended_at or time.time()
        elapsed = (end - self.started_at) if self.started_at else 0.0
        return {
            "name": self.name,
            "class": self.short_name,
            "type": self.kind,
            "state": self.state,
            "topics": ",".join(self.topics),
            "records": self.records,
            "total": self.total,
            "progress": None if not self.total else round(min(1.0, self.records / self.total), 3),
            "records_per_s": round(self.records / elapsed, 1) if elapsed > 0 else 0.0,
            "skipped": self.skipped,
            "last_error": self.last_error,
        }

    def config(self) -> dict:
        """The settings as given, secrets masked."""
        return self.settings.redacted()

    def __repr__(self) -> str:
        total = f"/{self.total}" if self.total else ""
        return (f"<{self.short_name} {self.kind} connector {self.name!r} {self.state}: "
                f"{self.records}{total} records>")


class SourceConnector(Connector):
    """Writes what `batches()` yields to `topic`: DataFrames (encoded in `format`, keyed by the `key`
    column, timed by the `timestamp` column) or RawRecords as they are."""

    kind = "source"
    default_format = "json"
    default_key: str | None = None
    default_timestamp: str | None = None
    KEYS = {
        "topic": "the topic to write to (created if missing)",
        "partitions": "partitions of the topic when it is created (default 1)",
        "key": "the column whose value is the record key (default: none)",
        "timestamp": "the column holding each record's event time (epoch ms or ISO 8601; default: now)",
        "format": "the value format on the topic: json (default), csv, text or bytes",
        "batch.size": "records per batch (default 10000)",
    }

    def configure(self, s: Settings) -> None:
        self.topic = s.require("topic", "the topic to write to")
        key = s.text("key", self.default_key)
        self.key = None if key in (None, "none", "null") else key
        ts = s.text("timestamp", self.default_timestamp)
        self.timestamp = None if ts in (None, "none", "now") else ts
        self.format = s.text("format", self.default_format, choices=VALUE_FORMATS)
        self.partitions = s.integer("partitions", 1, minimum=1)
        self.batch_size = s.integer("batch.size", 10000, minimum=1)

    @property
    def topics(self) -> list[str]:
        return [self.topic]

    def batches(self):
        """Yield DataFrames or RawRecords until the input ends or `self.stopping`."""
        raise NotImplementedError

    def prepare(self) -> None:
        self.connection = self.context.connection()
        self.connection.ensure_topic(self.topic, self.partitions)
        self.connection.wait_for_topics([self.topic])

    def run(self) -> None:
        from streamframe.kafka.writer import Output

        output = Output(self.client())
        fmt = value_format(self.format)
        flushed, queued = time.monotonic(), 0

        def flush() -> None:
            # `records` counts delivered records, so a reader who sees records == n finds n on the topic.
            nonlocal flushed, queued
            output.flush()
            self.records += queued
            flushed, queued = time.monotonic(), 0

        try:
            for batch in self.batches():
                if not isinstance(batch, RawRecords):
                    batch = self.encode(batch, fmt)
                output.produce_many(self.topic, batch.values, batch.keys, batch.timestamps)
                queued += len(batch)
                output.poll()
                # A short batch means the source caught up (a followed file, a rate-limited generator)
                # and may now wait: deliver what it gave. Otherwise at least once a second, so delivery
                # errors show up.
                if len(batch) < self.batch_size or time.monotonic() - flushed > 1.0:
                    flush()
                if not self.proceed():
                    break
        finally:
            flush()

    def encode(self, frame: pd.DataFrame, fmt) -> RawRecords:
        for col, what in ((self.key, "key"), (self.timestamp, "timestamp")):
            if col is not None and col not in frame.columns:
                raise ConnectorError(f"{what}={col}: no such column (columns: {', '.join(map(str, frame.columns))})")
        values = fmt.encode(frame)
        keys = encode_keys(frame[self.key].astype(object).where(frame[self.key].notna(), None), "text") \
            if self.key else [None] * len(frame)
        if self.timestamp:
            ms, _ = to_epoch_ms(frame[self.timestamp])
            stamps = np.where(ms < 0, 0, ms).tolist()  # 0: the producer stamps it now
        else:
            stamps = [0] * len(frame)
        return RawRecords(values, keys, stamps)


class SinkConnector(Connector):
    """Reads `topics` (consumer group `{app_id}.connect-{name}`, from the earliest record the first
    time) and hands `write()` decoded batches; offsets are committed after what was read is written."""

    kind = "sink"
    KEYS = {
        "topics": "the topic(s) to read, comma-separated (also topic=)",
        "format": "the value format of the topics: json (default), csv, text or bytes",
        "columns": "the names of CSV fields (else c0, c1, ...), or the JSON fields to keep, comma-separated",
        "metadata": "true: add the columns _key, _timestamp, _partition, _offset (default false)",
        "until": "end: a bounded load of what the topics hold now, then FINISHED (default: until stopped)",
        "errors.tolerance": "none (default): a record that cannot be decoded fails the connector; all: skip it",
        "batch.size": "records per batch (default 10000)",
    }
    commit_interval = 1.0

    def configure(self, s: Settings) -> None:
        self.topic_names = s.items("topics", aliases=("topic",))
        if not self.topic_names:
            raise ConfigError("missing required setting topics=... (the topic(s) to read)")
        self.format = s.text("format", "json", choices=VALUE_FORMATS)
        self.metadata = s.flag("metadata", False)
        until = s.text("until", None, choices=(None, "end"))
        self.bounded = until == "end"
        self.tolerate = s.text("errors.tolerance", "none", choices=("none", "all")) == "all"
        self.batch_size = s.integer("batch.size", 10000, minimum=1)
        self.fmt = value_format(self.format, s.items("columns") or None)

    @property
    def topics(self) -> list[str]:
        return list(self.topic_names)

    def prepare(self) -> None:
        self.connection = self.context.connection()
        self.partitions = self.connection.require_topics(self.topic_names)
        self.open_target()

    def open_target(self) -> None:
        """Check (and create) where the records go, before the thread starts."""

    def write(self, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Make what was written durable (before offsets are committed)."""

    def run(self) -> None:
        from streamframe.kafka.reader import KafkaReader

        group = f"{self.connection.app_id}.connect-{self.name}"
        reader = KafkaReader(self.client(), self.topic_names, group, bounded=self.bounded)
        try:
            reader.open()
            if self.bounded:
                self.total = reader._left() if reader.end else 0
            committed, written = time.monotonic(), 0

            def commit() -> None:
                # `records` counts what reached the target, so a reader who sees records == n finds n.
                nonlocal committed, written
                self.flush()
                reader.commit()
                self.records += written
                committed, written = time.monotonic(), 0

            while self.proceed():
                if self.bounded and reader.at_end():
                    break
                batches = reader.poll(self.batch_size, 0.2)
                got = 0
                for topic, raw in batches.items():
                    self.handle(topic, raw)
                    got += len(raw)
                written += got
                # Caught up (a short poll) or the interval passed: flush the target, commit the offsets.
                if written and (got < self.batch_size or time.monotonic() - committed >= self.commit_interval):
                    commit()
            commit()
        finally:
            reader.close()

    def handle(self, topic: str, raw) -> None:
        frame = self.decode(raw)
        if len(frame):
            self.write(frame)

    def decode(self, raw) -> pd.DataFrame:
        """A raw batch as a DataFrame (tombstones left out and counted as skipped)."""
        present = [i for i, v in enumerate(raw.values) if v is not None]
        self.skipped += len(raw) - len(present)
        if not present:
            return pd.DataFrame()
        values = raw.values if len(present) == len(raw) else [raw.values[i] for i in present]
        decoded = self.fmt.decode(values)
        if decoded.errors:
            pos = min(decoded.errors)
            where = f"{raw.topic}[{raw.partitions[present[pos]]}]@{raw.offsets[present[pos]]}"
            if not self.tolerate:
                raise ConnectorError(f"record {where} is not {self.format}: {decoded.errors[pos]} "
                                     "(errors.tolerance=all skips such records)")
            self.skipped += len(decoded.errors)
            self.last_error = self.scrub(f"skipped {where}: {decoded.errors[pos]}")
        frame = decoded.frame
        if self.metadata:
            at = [present[i] for i in frame.index]
            frame = frame.copy()
            frame["_key"] = decode_keys([raw.keys[i] for i in at], "text", frame.index)
            frame["_timestamp"] = ms_to_datetime([raw.timestamps[i] for i in at])
            frame["_partition"] = np.asarray([raw.partitions[i] for i in at], dtype="int32")
            frame["_offset"] = np.asarray([raw.offsets[i] for i in at], dtype="int64")
        return frame.reset_index(drop=True)
