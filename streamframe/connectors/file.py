"""File connectors (`connector.class=file`): CSV, JSON lines or text lines into a topic, and back.

    %kafka_source orders-in connector.class=file file=orders.csv topic=orders key=customer_id
    %kafka_source app-log connector.class=file file=app.log topic=logs follow=true
    %kafka_sink orders-out connector.class=file topics=orders file=orders-copy.jsonl

The source reads one record per line: a CSV file's first line is its header and its rows become JSON
objects (numbers as numbers, empty fields as null); a JSON-lines file's lines go to the topic as written;
any other file's lines go as text. With `follow=true` it keeps reading what is appended (like `tail -F`:
a file that shrinks is read again from its start). The sink appends: JSON lines (a JSON topic's values
as they are), CSV (header first; the columns of the first batch, or of the existing header), or text.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import orjson
import pandas as pd

from streamframe.connectors.config import Settings
from streamframe.connectors.sink import SinkConnector
from streamframe.connectors.source import RawRecords, SourceConnector
from streamframe.errors import ConfigError, ConnectorError
from streamframe.serde import value_format
from streamframe.time.extract import to_epoch_ms

FILE_FORMATS = ("csv", "jsonl", "text")
CHUNK = 1 << 20
_BY_SUFFIX = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
FILE_KEYS = {
    "file": "path of the file",
    "file.format": (
        "csv, jsonl or text (default: from the file's suffix; .csv, .jsonl/.ndjson/.json, else text)"
    ),
}


def file_format(path: str, given: str | None) -> str:
    if given is not None:
        if given not in FILE_FORMATS:
            raise ConfigError(f"file.format={given!r} is not valid; use one of: {', '.join(FILE_FORMATS)}")
        return given
    return _BY_SUFFIX.get(Path(path).suffix.lower(), "text")


class FileSource(SourceConnector):
    """Lines of a file to a topic; `follow=true` keeps reading what is appended."""

    short_name = "file"
    KEYS = {
        **FILE_KEYS,
        "follow": "true: keep reading lines appended to the file until stopped (default false)",
        "poll.interval.ms": "how often a followed file is checked for new lines (default 200)",
        "errors.tolerance": "none (default): a line that does not parse fails the connector; all: skip it",
    }

    def configure(self, s: Settings) -> None:
        self.path = s.require("file", "the file to read")
        self.file_format = file_format(self.path, s.text("file.format"))
        self.default_format = "text" if self.file_format == "text" else "json"
        super().configure(s)
        self.follow = s.flag("follow", False)
        self.bounded = not self.follow
        self.poll_interval = s.integer("poll.interval.ms", 200, minimum=1) / 1000
        self.tolerate = s.text("errors.tolerance", "none", choices=("none", "all")) == "all"
        if self.file_format == "text" and (self.key or self.timestamp):
            raise ConfigError(
                "key= and timestamp= name columns; a text file has none (use file.format=csv or jsonl)"
            )

    def prepare(self) -> None:
        path = Path(self.path)
        if not path.is_file():
            raise ConfigError(f"file={self.path}: no such file")
        super().prepare()
        if not self.follow:
            with path.open("rb") as f:
                lines = sum(1 for line in f if line.strip())
            self.total = max(0, lines - 1) if self.file_format == "csv" else lines

    def batches(self):
        header: bytes | None = None
        line_no = 0  # of the first line in `pending`
        f = open(self.path, "rb")  # noqa: SIM115 - reopened when the file is truncated
        try:
            pending = b""
            while self.proceed():
                chunk = f.read(CHUNK)
                # a short read of a regular file is its end;
                # followed, an unfinished line waits for its newline
                final = not self.follow and len(chunk) < CHUNK
                if chunk or final:
                    lines = (pending + chunk).split(b"\n")
                    pending = b"" if final else lines.pop()
                else:
                    if os.stat(self.path).st_size < f.tell():  # truncated or replaced: start over
                        f.close()
                        f = open(self.path, "rb")  # noqa: SIM115
                        header, line_no, pending = None, 0, b""
                    self.sleep(self.poll_interval)
                    continue
                if self.file_format == "csv" and header is None and lines:
                    header, lines = lines[0].rstrip(b"\r"), lines[1:]
                    line_no += 1
                for start in range(0, len(lines), self.batch_size):
                    part = lines[start:start + self.batch_size]
                    batch = self.parse(part, header, line_no + start + 1)
                    if len(batch):
                        yield batch
                line_no += len(lines)
                if final:
                    return
        finally:
            f.close()

    def parse(self, lines: list[bytes], header: bytes | None, first_line: int):
        numbered = [(first_line + i, ln.rstrip(b"\r")) for i, ln in enumerate(lines)]
        numbered = [(n, ln) for n, ln in numbered if ln.strip()]
        if self.file_format == "text":
            values = [ln for _, ln in numbered]
            return RawRecords(values, [None] * len(values), [0] * len(values))
        if self.file_format == "csv":
            return self._csv(numbered, header)
        return self._jsonl(numbered)

    def _bad(self, line_no: int, reason: str) -> None:
        message = f"{self.path} line {line_no}: {reason}"
        if not self.tolerate:
            raise ConnectorError(f"{message} (errors.tolerance=all skips such lines)")
        self.skipped += 1
        self.last_error = self.scrub(f"skipped {message}")

    def _csv(self, numbered, header) -> pd.DataFrame:
        if not numbered:
            return pd.DataFrame()
        body = header + b"\n" + b"\n".join(ln for _, ln in numbered)
        try:
            return pd.read_csv(io.BytesIO(body), keep_default_na=False, na_values=[""],
                               on_bad_lines="skip" if self.tolerate else "error")
        except (pd.errors.ParserError, ValueError) as e:
            raise ConnectorError(f"{self.path} near line {numbered[0][0]}: {e} "
                                 "(errors.tolerance=all skips such lines)") from None

    def _jsonl(self, numbered) -> RawRecords:
        values, objects = [], []
        for line_no, line in numbered:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                self._bad(line_no, f"invalid JSON ({e})")
                continue
            values.append(line)
            objects.append(obj if isinstance(obj, dict) else {})
        keys = [None] * len(values)
        if self.key:
            keys = [None if o.get(self.key) is None else str(o.get(self.key)).encode() for o in objects]
        stamps = [0] * len(values)
        if self.timestamp and values:
            ms, _ = to_epoch_ms(pd.Series([o.get(self.timestamp) for o in objects], dtype=object))
            stamps = [int(m) if m >= 0 else 0 for m in ms]
        return RawRecords(values, keys, stamps)


class FileSink(SinkConnector):
    """Appends the topics' records to a file: JSON lines, CSV (with a header) or text lines."""

    short_name = "file"
    KEYS = dict(FILE_KEYS)

    def configure(self, s: Settings) -> None:
        super().configure(s)
        self.path = s.require("file", "the file to write")
        self.file_format = file_format(self.path, s.text("file.format"))
        self._file = None
        self._columns: list | None = None

    def open_target(self) -> None:
        path = Path(self.path)
        if path.is_dir():
            raise ConfigError(f"file={self.path} is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)

    def _open(self):
        if self._file is None:
            path = Path(self.path)
            if self.file_format == "csv" and path.exists() and path.stat().st_size:
                with path.open(newline="") as f:
                    first = f.readline().rstrip("\r\n")
                self._columns = next(csv.reader([first]), None)
            self._file = path.open("ab")
        return self._file

    def handle(self, topic: str, raw) -> None:
        as_written = self.file_format == "jsonl" and self.format == "json" and self.fmt.schema is None
        passthrough = self.file_format == "text" or as_written
        if passthrough and not self.metadata:
            values = [v for v in raw.values if v is not None]
            self.skipped += len(raw) - len(values)
            if self.file_format == "jsonl":  # one line per record, even for pretty-printed JSON
                values = [orjson.dumps(orjson.loads(v)) if b"\n" in v else v for v in values]
            else:
                values = [v.replace(b"\n", b" ") for v in values]
            if values:
                self._open().write(b"\n".join(values) + b"\n")
            return
        super().handle(topic, raw)

    def write(self, frame: pd.DataFrame) -> None:
        f = self._open()
        if self.file_format == "jsonl":
            f.write(b"\n".join(value_format("json").encode(frame)) + b"\n")
        elif self.file_format == "text":
            f.write(b"\n".join(value_format("text").encode(frame)) + b"\n")
        else:
            header = self._columns is None
            if header:
                self._columns = list(frame.columns)
            text = frame.reindex(columns=self._columns).to_csv(
                index=False, header=header, lineterminator="\n"
            )
            f.write(text.encode())

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
