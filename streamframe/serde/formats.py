"""JSON, CSV, text and bytes values, decoded and encoded a whole batch at a time.

The fast path hands the batch to Arrow in one call. When Arrow rejects the batch (a malformed record,
or types that disagree between records), the slow path decodes record by record to find exactly which
records are bad, so good records are never lost with the bad ones.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from operator import attrgetter

import msgspec
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json

from streamframe.serde.base import Decoded, Format
from streamframe.serde.json_encode import encode_json_rows


def _positions(n: int) -> pd.RangeIndex:
    return pd.RangeIndex(n)


# A batch at least this large is parsed by Arrow in blocks on its thread pool, which beats one block.
PARALLEL_JSON_BYTES = 1 << 20


# decode_fields: the field types it decodes alone, as msgspec's type and NumPy's (None: a list of str).
_PROJECTED = {pa.int64(): (int, np.int64), pa.float64(): (float, np.float64), pa.bool_(): (bool, np.bool_),
              pa.string(): (str, None)}
# Arrow's reader infers a timestamp for a field whose every string is an ISO 8601 time, which begins so.
_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\d")


@functools.lru_cache(maxsize=256)
def _struct_decoder(fields: tuple, absent: tuple):
    """msgspec's decoder of a record into a struct of `fields` ((name, Arrow type) pairs, all required;
    attributes f0, f1, ...: a JSON name need not be a Python one) and of `absent` names, which take no
    value: a record holding one fails to decode."""
    spec = [(f"f{i}", _PROJECTED[t][0]) for i, (_, t) in enumerate(fields)]
    spec += [(f"a{i}", msgspec.UnsetType, msgspec.UNSET) for i in range(len(absent))]
    rename = {
        **{f"f{i}": name for i, (name, _) in enumerate(fields)},
        **{f"a{i}": name for i, name in enumerate(absent)},
    }
    return msgspec.json.Decoder(msgspec.defstruct("Projected", spec, rename=rename, gc=False)).decode


def _utf8(buf: bytes) -> bool:
    """Whether `buf` is valid UTF-8, as JSON text must be: Arrow's reader and msgspec pass the bytes of a
    string through without checking them."""
    if buf.isascii():
        return True
    try:
        buf.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parallel(buf: bytes) -> bool:
    return len(buf) >= PARALLEL_JSON_BYTES and pa.cpu_count() > 1


def _blocks(buf: bytes, longest: int | None = None) -> pa_json.ReadOptions:
    """Arrow's reader options: for a large batch whose `longest` record is given, four blocks parsed in
    parallel (none shorter than that record); else one block."""
    if longest is None or not _parallel(buf):
        return pa_json.ReadOptions(block_size=max(len(buf) + 1, 1 << 20))
    return pa_json.ReadOptions(block_size=max(len(buf) // 4, longest + 1))


def _has_struct(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return True
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and _has_struct(t.value_type)


def _json_kind(obj) -> str:
    if isinstance(obj, list):
        return "an array"
    if isinstance(obj, str):
        return "a string"
    if isinstance(obj, bool):
        return "a boolean"
    return "null" if obj is None else "a number"


class JsonFormat(Format):
    """One JSON object per record; a top-level non-object value lands in a column named `value`
    (with a schema that has no `value` field, such a record is an error)."""

    name = "json"

    def __init__(self, schema=None):
        super().__init__(schema)
        self._parallel_misses = 0  # batches in a row the parallel parse could not be used for

    def decode(self, values: list) -> Decoded:
        n = len(values)
        if n == 0:
            return Decoded(self.apply_schema(pd.DataFrame(index=_positions(0))))
        records = values
        if None in records:  # a null value (tombstone) is a row with no fields
            records = [b"{}" if v is None else v for v in values]
        buf = b"\n".join(records)
        if not _utf8(buf):  # Arrow would keep the bad bytes in a string column: find the records
            return self._decode_each(values)
        try:
            table = self._read(buf, records)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return self._decode_each(values)
        if table.num_rows != n:  # a record with a raw newline inside it: count no longer lines up
            return self._decode_each(values)
        self._types = {f.name: f.type for f in table.schema}  # what decode_fields may assume
        frame = table.to_pandas()
        frame.index = _positions(n)
        nested = [f.name for f in table.schema if pa.types.is_nested(f.type)]
        if (
            nested
        ):  # objects and lists as written: Arrow adds absent keys as null and float-casts ints in them
            objs = [orjson.loads(v) for v in records]
            for name in nested:
                frame[name] = pd.Series([o.get(name) for o in objs], index=frame.index, dtype=object)
        return self.fit_schema(frame)

    def _read(self, buf: bytes, records: list) -> pa.Table:
        """Arrow's reader over the whole batch: in one block, or for a large batch in several parsed in
        parallel. Blocks infer and unify types exactly as one block does, but their columns come out in
        the order the threads finish; the one-block order (first appearance) is restored from the first
        record when it has every field and nothing nests objects, else the batch is read again in one block
        (as it is when blocks disagree where one block would not, e.g. [1] in one and [1.5] in another)."""
        if _parallel(buf) and self._parallel_misses < 3:
            try:
                table = pa_json.read_json(io.BytesIO(buf), read_options=_blocks(buf, max(map(len, records))))
                first = orjson.loads(records[0])
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, orjson.JSONDecodeError):
                table, first = None, None
            names = list(first) if isinstance(first, dict) else []
            if (
                table is not None
                and len(names) == table.num_columns
                and set(names) == set(table.column_names)
                and not any(_has_struct(t) for t in table.schema.types)
            ):
                self._parallel_misses = 0
                return table if names == table.column_names else table.select(names)
            self._parallel_misses += 1
        return pa_json.read_json(io.BytesIO(buf), read_options=_blocks(buf))

    def decode_fields(self, values: list, fields, absent=()) -> Decoded | None:
        """Only `fields` of each record (plan/values.py), or None where that could differ from `decode`
        — then the caller decodes the batch whole. msgspec reads each record into a struct of those
        fields, typed as the last whole batch had them (int64, float64, bool or string): it skips every
        other field, checking its syntax, in about half the CPU Arrow's reader takes. None where a record
        is not a valid JSON object in UTF-8, lacks a field, holds null or another type in one, holds one
        of the `absent` names (the fields to be appended must be new; escapes in names are read), where a
        number field has only whole numbers (a whole decode would infer int64 where they have no decimal
        point), or where a string field's first value begins like an ISO 8601 date (a whole decode would
        infer a timestamp if every one did). The columns convert to pandas as the whole decode's do
        (through one Arrow table)."""
        n = len(values)
        types = getattr(self, "_types", {})
        if not n or any(types.get(f) not in _PROJECTED for f in fields):
            return None
        decode = _struct_decoder(tuple((f, types[f]) for f in fields), tuple(absent))
        try:
            # Checked joined, where not ASCII: a JSON object begins and ends in ASCII (msgspec checks each
            # record is one next), so no record's bytes can complete another's.
            if not all(map(bytes.isascii, values)) and not _utf8(b"\n".join(values)):
                return None
            structs = list(map(decode, values))
            columns = {}
            for i, f in enumerate(fields):
                dtype = _PROJECTED[types[f]][1]
                got = map(attrgetter(f"f{i}"), structs)
                columns[f] = (
                    pa.array(list(got), pa.string()) if dtype is None else np.fromiter(got, dtype, count=n)
                )
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError, OverflowError):
            return None  # TypeError: a tombstone (None); OverflowError: an integer beyond int64
        for x in columns.values():
            if isinstance(x, pa.Array):  # every string a time (the first tells): the whole decode reads times
                if _ISO_TIME.match(x[0].as_py()):
                    return None
            elif x.dtype.kind == "f" and (x == np.floor(x)).all():
                return None
        frame = pa.table(columns).to_pandas() if columns else pd.DataFrame(index=_positions(n))
        frame.index = _positions(n)
        return Decoded(frame)

    def _decode_each(self, values: list) -> Decoded:
        rows, index, errors = [], [], {}
        for i, v in enumerate(values):
            if v is None:
                rows.append({})
                index.append(i)
                continue
            try:
                obj = orjson.loads(v)
            except orjson.JSONDecodeError as e:
                errors[i] = f"invalid JSON: {e}"
                continue
            if not isinstance(obj, dict) and self.schema is not None and "value" not in self.schema:
                errors[i] = f"not a JSON object but {_json_kind(obj)}, where the schema has fields"
                continue
            rows.append(obj if isinstance(obj, dict) else {"value": obj})
            index.append(i)
        frame = (
            pd.DataFrame.from_records(rows, index=pd.Index(index, dtype="int64")) if rows else pd.DataFrame()
        )
        if not rows:
            frame.index = pd.Index([], dtype="int64")
        return self.fit_schema(frame, errors)

    def encode(self, frame: pd.DataFrame) -> list[bytes]:
        return encode_json_rows(frame)


class CsvFormat(Format):
    """One CSV line per record, no header; column names come from `schema` (else c0, c1, ...)."""

    name = "csv"

    def decode(self, values: list) -> Decoded:
        n = len(values)
        names = self.columns
        if n == 0:
            return Decoded(self.apply_schema(pd.DataFrame(columns=names or [], index=_positions(0))))
        if names is None:
            first = next((v for v in values if v is not None), b"")
            names = [f"c{i}" for i in range(len(next(csv.reader([first.decode("utf-8", "replace")]), [])))]
        buf = b"\n".join(b"" if v is None else v.rstrip(b"\r\n") for v in values)
        try:
            table = pa_csv.read_csv(
                io.BytesIO(buf),
                read_options=pa_csv.ReadOptions(column_names=names, block_size=max(len(buf) + 1, 1 << 20)),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            )
            if table.num_rows != n:
                raise pa.ArrowInvalid("row count mismatch")
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return self._decode_each(values, names)
        frame = table.to_pandas()
        frame.index = _positions(n)
        return self.fit_schema(frame)

    def _decode_each(self, values: list, names: list[str]) -> Decoded:
        rows, index, errors = [], [], {}
        for i, v in enumerate(values):
            fields = next(csv.reader([(v or b"").decode("utf-8", "replace")]), [])
            if len(fields) != len(names):
                errors[i] = f"CSV record has {len(fields)} fields, expected {len(names)} ({', '.join(names)})"
                continue
            rows.append(fields)
            index.append(i)
        frame = pd.DataFrame(rows, columns=names, index=pd.Index(index, dtype="int64"))
        # Values parsed one by one are strings; give numbers back their types as Arrow would.
        for c in frame.columns:
            converted = pd.to_numeric(frame[c], errors="coerce")
            if converted.notna().sum() == frame[c].astype(bool).sum():
                frame[c] = converted
        return self.fit_schema(frame, errors)

    def encode(self, frame: pd.DataFrame) -> list[bytes]:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        lines = []
        for row in frame.itertuples(index=False, name=None):
            out.seek(0)
            out.truncate()
            writer.writerow(["" if (x is None or (isinstance(x, float) and x != x)) else x for x in row])
            lines.append(out.getvalue()[:-1].encode())
        return lines


class TextFormat(Format):
    """UTF-8 text, one string per record, in a column named `value`."""

    name = "text"

    def decode(self, values: list) -> Decoded:
        arr = pa.array(values, type=pa.binary())
        errors = {}
        try:
            col = arr.cast(pa.string()).to_pandas()
        except pa.ArrowInvalid:
            col, errors = [], {}
            for i, v in enumerate(values):
                try:
                    col.append(None if v is None else v.decode("utf-8"))
                except UnicodeDecodeError as e:
                    errors[i] = f"invalid UTF-8 text: {e}"
                    col.append(None)
            col = pd.Series(col, dtype="str" if hasattr(pd, "StringDtype") else object)
        frame = pd.DataFrame({"value": col})
        frame.index = _positions(len(values))
        if errors:
            frame = frame.drop(index=list(errors))
        return Decoded(frame, errors)

    def encode(self, frame: pd.DataFrame) -> list[bytes]:
        col = _single_column(frame, "text")
        return [
            None if v is None or (isinstance(v, float) and v != v) else str(v).encode() for v in col.tolist()
        ]


class BytesFormat(Format):
    """Raw bytes, untouched, in a column named `value`."""

    name = "bytes"

    def decode(self, values: list) -> Decoded:
        return Decoded(
            pd.DataFrame({"value": pd.Series(values, dtype=object)}, index=_positions(len(values)))
        )

    def encode(self, frame: pd.DataFrame) -> list[bytes]:
        col = _single_column(frame, "bytes")
        return [v if v is None or isinstance(v, bytes) else str(v).encode() for v in col.tolist()]


def _single_column(frame: pd.DataFrame, fmt: str) -> pd.Series:
    from streamframe.errors import ConfigError

    if "value" in frame.columns:
        return frame["value"]
    if frame.shape[1] == 1:
        return frame.iloc[:, 0]
    raise ConfigError(
        f"format {fmt!r} writes one column, but the frame has {list(frame.columns)}; "
        "select one or name it 'value'"
    )
