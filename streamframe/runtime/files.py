"""Sinks outside Kafka: SQLite tables (upsert by primary key, via sqlite-utils) and CSV / JSON lines.

The SQLite sink writes a batch's rows and the input offsets they cover in one transaction, so a
restarted query resumes exactly after what the table already holds.
"""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import pandas as pd
import sqlite_utils

from streamframe.records import META, tombstones
from streamframe.runtime.protocols import SinkProtocol

OFFSETS = "_streamframe_offsets"


def _changes(frame: pd.DataFrame, with_op: bool) -> tuple[pd.DataFrame, pd.Series]:
    tomb = pd.Series(tombstones(frame), index=frame.index)
    values = frame[[c for c in frame.columns if c not in META]].copy()
    for c in values.columns:
        if isinstance(values[c].dtype, pd.DatetimeTZDtype):
            text = values[c].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            values[c] = text.str.replace(r"\d{3}Z$", "Z", regex=True)
    if with_op:
        values["op"] = tomb.map({True: "delete", False: "upsert"}).to_numpy()
    return values, tomb


class SqliteTableSink(SinkProtocol):
    exactly_once = True  # its rows and the offsets they cover commit in one SQLite transaction
    rewinds = True  # by primary key: a row written again is upserted

    def __init__(self, path: str, table: str, pk: list[str]):
        self.path, self.table, self.pk = str(path), table, list(pk)
        self.query = None
        self.db: sqlite_utils.Database | None = None  # opened with the query
        self._lock = threading.Lock()

    def open(self, query) -> None:
        self.query = query
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(self.path)

    def offsets(self) -> dict:
        """Offsets this table's contents cover, for this query (where a restart resumes)."""
        db = sqlite_utils.Database(self.path)
        if OFFSETS not in db.table_names() or self.query is None:
            return {}
        rows = db[OFFSETS].rows_where("query = ?", [self.query.name])
        return {(r["topic"], r["partition"]): r["next"] for r in rows}

    def write(self, frame: pd.DataFrame) -> int:
        values, tomb = _changes(frame, with_op=False)
        values = values.astype(object).where(values.notna(), None)
        upserts = values[~tomb.to_numpy()].to_dict("records")
        deletes = values[tomb.to_numpy()][self.pk].to_dict("records")
        offsets = self.query.processed_offsets()
        with self._lock, self.db.conn:  # one transaction: rows and the offsets they cover
            if upserts:
                self.db[self.table].upsert_all(upserts, pk=self.pk, alter=True)
            if deletes and self.table in self.db.table_names():
                table = self.db[self.table]
                for key in deletes:  # by primary key value: sqlite-utils quotes the identifiers
                    try:
                        table.delete(tuple(key[k] for k in self.pk) if len(self.pk) > 1 else key[self.pk[0]])
                    except sqlite_utils.db.NotFoundError:
                        pass
            if offsets and not self.query.bounded:
                self.db[OFFSETS].upsert_all(
                    [{"query": self.query.name, "topic": t, "partition": p, "next": n}
                     for (t, p), n in offsets.items()],
                    pk=("query", "topic", "partition"))
        return len(frame)

    def __repr__(self) -> str:
        return f"sqlite {self.path}:{self.table}"


class TextFileSink(SinkProtocol):
    """Appends rows to a CSV (with a header) or JSON-lines file; a table's rows carry an `op` column."""

    def __init__(self, path: str, fmt: str, table: bool = False):
        self.path, self.fmt, self.table = Path(path), fmt, table
        self._lock = threading.Lock()
        self._columns = None

    def open(self, query) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, frame: pd.DataFrame) -> int:
        values, _ = _changes(frame, with_op=self.table)
        with self._lock, self.path.open("a", newline="") as f:
            if self.fmt == "jsonl":
                from streamframe.serde.json_encode import encode_json_rows

                f.write("".join(line.decode() + "\n" for line in encode_json_rows(values)))
            else:
                writer = csv.writer(f)
                if self._columns is None:
                    self._columns = list(values.columns)
                    if f.tell() == 0:
                        writer.writerow(self._columns)
                values = values.reindex(columns=self._columns)
                cells = values.astype(object).where(values.notna(), "")
                writer.writerows(cells.itertuples(index=False, name=None))
        return len(frame)

    def __repr__(self) -> str:
        return f"{self.fmt} {self.path}"
