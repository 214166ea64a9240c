"""SQLite connectors (`connector.class=sqlite`): a table into a topic (a snapshot, then new rows by a
monotone column, like the JDBC source's incrementing mode) and a topic into a table (upsert by primary
key, via sqlite-utils).

    %kafka_source users-in connector.class=sqlite db=app.db table=users incrementing.column=id topic=users
    %kafka_sink vwap_db connector.class=sqlite topics=vwap-1m db=out.db table=vwap pk=symbol,window_start

Every identifier is quoted ("..." with inner quotes doubled; sqlite-utils does the same for the sink), so
table and column names, including those that come from the data, are names and never SQL.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from streamframe.connectors.config import Settings
from streamframe.connectors.sink import SinkConnector
from streamframe.connectors.source import SourceConnector
from streamframe.errors import ConfigError, ConnectorError


def quote(identifier: str) -> str:
    """An SQL identifier, quoted: `quote('x"; DROP TABLE t; --')` names a column, it runs nothing."""
    return '"' + str(identifier).replace('"', '""') + '"'


def _read_only(path: str) -> sqlite3.Connection:
    return sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in con.execute(f"PRAGMA table_info({quote(table)})")]


def _tables(con: sqlite3.Connection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name"
    )]


class SqliteSource(SourceConnector):
    """A table's rows to a topic: all of them (then FINISHED), or with `incrementing.column=` a snapshot
    followed by every new row with a larger value of that column, polled until stopped."""

    short_name = "sqlite"
    KEYS = {
        "db": "path of the SQLite database file",
        "table": "the table (or view) to read",
        "incrementing.column": "a strictly increasing column (e.g. an id): read new rows after the snapshot "
                               "(also incrementing.column.name)",
        "incrementing.column.name": "the JDBC source's name for incrementing.column",
        "poll.interval.ms": "how often new rows are looked for (default 1000)",
    }

    def configure(self, s: Settings) -> None:
        super().configure(s)
        self.db = s.require("db", "the database file")
        self.table = s.require("table", "the table to read")
        self.column = s.text("incrementing.column", aliases=("incrementing.column.name",))
        self.bounded = self.column is None
        self.poll_interval = s.integer("poll.interval.ms", 1000, minimum=1) / 1000

    def prepare(self) -> None:
        if not Path(self.db).is_file():
            raise ConfigError(f"db={self.db}: no such database file")
        con = _read_only(self.db)
        try:
            tables = _tables(con)
            if self.table not in tables:
                raise ConfigError(
                    f"table={self.table}: no such table in {self.db} "
                    f"(tables: {', '.join(tables) or 'none'})"
                )
            columns = _columns(con, self.table)
            if self.column is not None and self.column not in columns:
                raise ConfigError(f"incrementing.column={self.column}: {self.table} has no such column "
                                  f"(columns: {', '.join(columns)})")
            if self.column is None:
                self.total = con.execute(f"SELECT COUNT(*) FROM {quote(self.table)}").fetchone()[0]
        finally:
            con.close()
        super().prepare()

    def batches(self):
        con = _read_only(self.db)
        try:
            if self.column is None:
                yield from self._snapshot(con)
            else:
                yield from self._incremental(con)
        finally:
            con.close()

    def _frames(self, cursor):
        names = [d[0] for d in cursor.description]
        while not self.stopping:
            rows = cursor.fetchmany(self.batch_size)
            if not rows:
                return
            yield pd.DataFrame.from_records(rows, columns=names)

    def _snapshot(self, con):
        yield from self._frames(con.execute(f"SELECT * FROM {quote(self.table)}"))

    def _incremental(self, con):
        table, column = quote(self.table), quote(self.column)
        last = None
        while self.proceed():
            if last is None:
                sql, params = (
                    f"SELECT * FROM {table} WHERE {column} IS NOT NULL ORDER BY {column} LIMIT ?", []
                )
            else:
                sql, params = f"SELECT * FROM {table} WHERE {column} > ? ORDER BY {column} LIMIT ?", [last]
            got = 0
            for frame in self._frames(con.execute(sql, [*params, self.batch_size])):
                got += len(frame)
                last = frame[self.column].iloc[-1]
                last = last.item() if hasattr(last, "item") else last
                yield frame
            if got < self.batch_size:
                self.sleep(self.poll_interval)


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain Python values: missing values as NULL, times as ISO 8601 text."""
    frame = frame.copy()
    for c in frame.columns:
        if isinstance(frame[c].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(frame[c].dtype):
            frame[c] = frame[c].map(lambda t: None if pd.isna(t) else t.isoformat())
    frame = frame.astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


class SqliteSink(SinkConnector):
    """The topics' records into a table: upserted by `pk=` (inserted without it); columns are added as
    new ones appear."""

    short_name = "sqlite"
    KEYS = {
        "db": "path of the SQLite database file (created if missing)",
        "table": "the table to write (created if missing)",
        "pk": "primary key column(s), comma-separated: a record replaces the row with its key",
    }

    def configure(self, s: Settings) -> None:
        super().configure(s)
        self.db_path = s.require("db", "the database file")
        self.table = s.require("table", "the table to write")
        self.pk = s.items("pk")
        self._db = None

    def open_target(self) -> None:
        import sqlite_utils

        path = Path(self.db_path)
        if path.is_dir():
            raise ConfigError(f"db={self.db_path} is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            db = sqlite_utils.Database(path)
            try:
                if self.table in db.table_names() and self.pk:
                    pks = db[self.table].pks
                    if sorted(pks) != sorted(self.pk):
                        raise ConfigError(f"table {self.table} has primary key ({', '.join(pks)}), "
                                          f"not pk={','.join(self.pk)}")
            finally:
                db.close()

    def write(self, frame: pd.DataFrame) -> None:
        import sqlite_utils

        missing = [k for k in self.pk if k not in frame.columns]
        if missing:
            raise ConnectorError(f"pk={','.join(self.pk)}: the records have no column {missing[0]!r} "
                                 f"(columns: {', '.join(map(str, frame.columns))})")
        if self._db is None:  # opened on the connector's thread: a SQLite connection stays on its thread
            self._db = sqlite_utils.Database(self.db_path)
        rows = _records(frame)
        with self._db.conn:  # one transaction per batch
            if self.pk:
                self._db[self.table].upsert_all(rows, pk=self.pk, alter=True)
            else:
                self._db[self.table].insert_all(rows, alter=True)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
