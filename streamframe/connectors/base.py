"""In-kernel connectors: Kafka Connect's named, key=value-configured sources and sinks, each on a
daemon thread.

    Connector                one instance: name, settings, state, records moved, progress, last error
    ├── SourceConnector      (source.py) batches (DataFrames, or raw records) from somewhere → one topic
    └── SinkConnector        (sink.py) topics → somewhere, in decoded batches (group {app_id}.connect-{name})

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

from streamframe.connectors.config import Settings
from streamframe.errors import StreamframeError
from streamframe.kafka.config import scrub

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
        return ClientOverrides(self.connection, overrides["consumer.override."],
                               overrides["producer.override."])

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
