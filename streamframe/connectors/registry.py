"""The kernel's connectors by name, created from Kafka Connect style configurations.

    >>> reg = ConnectorRegistry()
    >>> c = reg.create({"name": "feed", "connector.class": "generator", "topic": "trades",
    ...                 "rate": "100", "count": "1000"})          # doctest: +SKIP
    >>> reg.status()                                               # doctest: +SKIP
       name      class    type    state  topics  records  total  progress ...
    0  feed  generator  source  RUNNING  trades      300   1000       0.3 ...

`connector.class` takes the short names (file, pandas, sqlite, generator, topic), this package's class
names, and Kafka Connect's FileStream connector names. A name stays taken until the connector is deleted
(`delete()`, `%connector_stop NAME --delete`), as in Kafka Connect.
"""

from __future__ import annotations

import threading

import pandas as pd

from streamframe.connectors.base import Connector, Context
from streamframe.connectors.config import Settings
from streamframe.connectors.dataframe import PandasSink, PandasSource
from streamframe.connectors.file import FileSink, FileSource
from streamframe.connectors.generator import GeneratorSource
from streamframe.connectors.sqlite import SqliteSink, SqliteSource
from streamframe.connectors.topic import TopicCopy
from streamframe.errors import ConfigError

# (short name, kind) → class; "copy" connectors may be created as a source or as a sink.
CLASSES: dict[tuple[str, str], type[Connector]] = {
    ("file", "source"): FileSource,
    ("file", "sink"): FileSink,
    ("pandas", "source"): PandasSource,
    ("pandas", "sink"): PandasSink,
    ("sqlite", "source"): SqliteSource,
    ("sqlite", "sink"): SqliteSink,
    ("generator", "source"): GeneratorSource,
    ("topic", "copy"): TopicCopy,
}
SHORT_NAMES = sorted({name for name, _ in CLASSES})
ALIASES = {
    "dataframe": "pandas",
    "org.apache.kafka.connect.file.FileStreamSourceConnector": "file",
    "org.apache.kafka.connect.file.FileStreamSinkConnector": "file",
    "FileStreamSource": "file",
    "FileStreamSink": "file",
    "FileStreamSourceConnector": "file",
    "FileStreamSinkConnector": "file",
    **{f"{cls.__module__}.{cls.__name__}": name for (name, _), cls in CLASSES.items()},
    **{cls.__name__: name for (name, _), cls in CLASSES.items()},
}
STATUS_COLUMNS = ["name", "class", "type", "state", "topics", "records", "total", "progress", "records_per_s",
                  "skipped", "last_error"]


def resolve(class_name: str | None, kind: str | None = None) -> type[Connector]:
    """The connector class for `connector.class`, as a `kind` ("source" or "sink"; None: any)."""
    if not class_name:
        raise ConfigError(f"missing connector.class=... (known: {', '.join(SHORT_NAMES)})")
    short = ALIASES.get(class_name, str(class_name).lower())
    if short not in SHORT_NAMES:
        raise ConfigError(f"unknown connector.class {class_name!r}; known: {', '.join(SHORT_NAMES)}")
    implied = "sink" if "Sink" in class_name else "source" if "Source" in class_name else None
    if implied and kind and implied != kind:
        raise ConfigError(f"connector.class={class_name} is a {implied} connector, not a {kind}")
    kind = kind or implied
    for want in ([kind, "copy"] if kind else ["source", "sink", "copy"]):
        if (short, want) in CLASSES:
            return CLASSES[(short, want)]
    others = [n for (n, k) in CLASSES if k in (kind, "copy")]
    raise ConfigError(
        f"connector.class={class_name} has no {kind}; {kind}s: {', '.join(sorted(set(others)))}"
    )


class ConnectorRegistry:
    """Connectors of one kernel by name: create, look up, stop, delete, and a status table."""

    def __init__(self, context: Context | None = None):
        self.context = context or Context()
        self._connectors: dict[str, Connector] = {}
        self._lock = threading.Lock()

    def create(self, config: dict, kind: str | None = None) -> Connector:
        """Create and start a connector from its configuration (`name`, `connector.class`, ...)."""
        config = {str(k): v for k, v in config.items()}
        name = str(config.get("name") or "").strip()
        if not name:
            raise ConfigError("missing name=... (every connector has a unique name)")
        cls = resolve(config.get("connector.class"), kind)
        tasks = config.get("tasks.max")
        if tasks is not None and (not str(tasks).isdigit() or int(tasks) < 1):
            raise ConfigError(f"tasks.max={tasks!r} must be a positive whole number")
        with self._lock:
            if name in self._connectors:
                raise ConfigError(self._exists(name))
            connector = cls(name, Settings(config), self.context)
            self._connectors[name] = connector  # the name is taken while it starts
        try:
            return connector.start()
        except BaseException:
            with self._lock:
                self._connectors.pop(name, None)
            raise

    def _exists(self, name: str) -> str:
        state = self._connectors[name].state
        return (f"Connector {name} already exists ({state}); "
                f"`%connector_stop {name} --delete` removes it so the name can be used again")

    def get(self, name: str) -> Connector:
        with self._lock:
            connector = self._connectors.get(name)
            names = sorted(self._connectors)
        if connector is None:
            known = ", ".join(names) if names else "none yet"
            raise ConfigError(f"no connector called {name!r} (connectors: {known})")
        return connector

    def __contains__(self, name: str) -> bool:
        return name in self._connectors

    def __len__(self) -> int:
        return len(self._connectors)

    def __iter__(self):
        with self._lock:
            return iter(list(self._connectors.values()))

    def stop(self, name: str, delete: bool = False, timeout: float = 30.0) -> Connector:
        """Stop a connector (it stays listed, STOPPED, unless `delete`)."""
        connector = self.get(name).stop(timeout)
        if delete:
            with self._lock:
                self._connectors.pop(name, None)
        return connector

    def delete(self, name: str) -> Connector:
        return self.stop(name, delete=True)

    def stop_all(self, delete: bool = False) -> list[Connector]:
        stopped = []
        for connector in list(self):
            stopped.append(self.stop(connector.name, delete=delete))
        return stopped

    def status(self) -> pd.DataFrame:
        """One row per connector: name, class, type, state, topics, records moved, progress, last error."""
        rows = [c.status() for c in self]
        return pd.DataFrame(rows, columns=STATUS_COLUMNS)


_default: ConnectorRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> ConnectorRegistry:
    """The kernel's connector registry (the magics' and the Python API's)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ConnectorRegistry()
        return _default
