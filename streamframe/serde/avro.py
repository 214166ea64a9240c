"""Avro values: in Confluent's wire format with their writer schemas from a Schema Registry, or raw
bodies of one schema given as `schema=` (an .avsc path, its JSON text, or a dict).

A batch is grouped by schema id and each group read with fastavro against its writer schema, parsed
once per id (and resolved against the reader schema, when one is given). Records written with different
versions of a schema land in one frame: the columns are every version's fields, oldest first, and a
record lacks (null) the fields its version does not have — the frame pandas makes of those records.
A record whose id the registry does not know, or whose body does not match its schema, is reported by
position with the reason; a registry that cannot be reached raises SchemaRegistryError (nothing is
dead-lettered for it: the records are good).

    >>> fmt = AvroFormat({"type": "record", "name": "T", "fields": [{"name": "qty", "type": "long"}]})
    >>> fmt.decode(fmt.encode(pd.DataFrame({"qty": [3, 4]}))).frame["qty"].tolist()
    [3, 4]
"""

from __future__ import annotations

import io
import json
import re

import fastavro
import pandas as pd

from streamframe.errors import ConfigError
from streamframe.serde.base import Decoded, Format
from streamframe.serde.wire import HEADER, SchemaSource, frame, group_by_schema, registry_schema, schema_json

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # what Avro allows as a field or record name
_TIMESTAMP = {"type": "long", "logicalType": "timestamp-millis"}


def load_schema(schema) -> dict | list | str:
    """An Avro schema from a dict, a list (union), JSON text, or the path of an .avsc file."""
    return schema_json(schema, "an Avro schema", ("{", "[", '"'), (dict, list))


def _parse(schema, what: str):
    try:
        return fastavro.parse_schema(schema, named_schemas={})
    except Exception as e:  # noqa: BLE001 - fastavro raises several kinds for one mistake
        raise ConfigError(f"{what} is not a valid Avro schema: {e}") from None


def _field_names(schema) -> list[str]:
    if isinstance(schema, dict) and schema.get("type") == "record":
        return [f["name"] for f in schema["fields"]]
    return ["value"]  # a schema of one value (a string, a long, ...): one column


def _writer_schema(text: str) -> tuple:
    given = json.loads(text)
    return fastavro.parse_schema(given, named_schemas={}), _field_names(given)


class AvroFormat(Format):
    """`schema`: raw Avro bodies of this schema; with a registry attached (`attach`), the records are in
    the wire format and `schema` (optional) is the reader schema they are resolved to."""

    name = "avro"
    kind = "AVRO"  # the registry's name of the schema type

    def __init__(self, schema=None, subject: str | None = None):
        super().__init__(None)  # no column list: what a record has is its writer schema's business
        self.given = None if schema is None else load_schema(schema)
        self.reader = None if schema is None else _parse(self.given, "schema=")
        self.registry: SchemaSource | None = None
        self.subject = subject  # where written schemas are registered (sinks set it)
        self._writers: dict[int, tuple | str] = {}  # schema id -> (parsed writer schema, names) or why not
        self._written: dict[str, int] = {}  # schema JSON -> registered id
        self._parsed: dict[str, object] = {}  # inferred schema JSON -> parsed
        self._inferred: dict | None = None  # the schema inferred for writing, widened as columns need

    def attach(self, registry: SchemaSource | None, subject: str | None = None) -> AvroFormat:
        """Read (and write) the wire format through `registry`; `subject`: where writes register."""
        if registry is not self.registry:
            self.registry, self._writers, self._written = registry, {}, {}
        if subject is not None:
            self.subject = subject
        return self

    @property
    def wire(self) -> bool:
        return self.registry is not None

    def _need_schema(self) -> None:
        if self.registry is None and self.reader is None:
            raise ConfigError(f"value format {self.name!r} needs a Schema Registry "
                              "(sf.connect(schema_registry=...) or $STREAMFRAME_SCHEMA_REGISTRY) or schema=")

    # --- reading -----------------------------------------------------------------------------------------
    def decode(self, values: list) -> Decoded:
        self._need_schema()
        if self.wire:
            groups, errors, nulls = group_by_schema(values)
        else:
            nulls = [i for i, v in enumerate(values) if v is None]
            groups, errors = {None: [i for i, v in enumerate(values) if v is not None]}, {}
        names: dict[str, None] = {} if self.reader is None else dict.fromkeys(_field_names(self.given))
        parts = []
        for sid in sorted(groups, key=lambda s: -1 if s is None else s):  # older versions' fields first
            at = groups[sid]
            writer = self._writer(sid) if sid is not None else (self.reader, list(names))
            if isinstance(writer, str):
                errors.update((i, writer) for i in at)
                continue
            if self.reader is None:
                names.update(dict.fromkeys(writer[1]))
            parts.append(self._read(values, at, sid, writer[0], errors))
        pos = [p for positions, _ in parts for p in positions] + nulls
        rows = [r for _, records in parts for r in records] + [{}] * len(nulls)
        index = pd.Index(pos, dtype="int64")
        frame_ = pd.DataFrame.from_records(rows, columns=list(names), index=index) if rows else \
            pd.DataFrame(columns=list(names), index=index)
        if len(parts) > 1 or nulls:
            frame_ = frame_.sort_index()
        return Decoded(frame_, errors)

    def _writer(self, sid: int):
        """(parsed writer schema, field names) of schema id `sid`, or why its records cannot be read."""
        return registry_schema(self.registry, self._writers, sid, self.kind, _writer_schema)

    def _read(self, values: list, at: list, sid, writer, errors: dict) -> tuple[list, list]:
        reader, read = self.reader, fastavro.schemaless_reader
        skip = HEADER if sid is not None else 0
        positions, records = [], []
        for i in at:
            v = values[i]
            fo = io.BytesIO(v)
            fo.seek(skip)
            try:
                rec = read(fo, writer, reader)
            except Exception as e:  # noqa: BLE001 - fastavro reports a bad body with many kinds of error
                errors[i] = f"Avro body does not match {_which(sid)}: {type(e).__name__}: {e}"
                continue
            if fo.tell() != len(v):
                errors[i] = f"Avro body does not match {_which(sid)}: {len(v) - fo.tell()} bytes left over"
                continue
            positions.append(i)
            records.append(rec if isinstance(rec, dict) else {"value": rec})
        return positions, records

    # --- writing -----------------------------------------------------------------------------------------
    def encode(self, frame_: pd.DataFrame) -> list[bytes]:
        self._need_writable()
        schema = self.given if self.given is not None else self._infer(frame_)
        text = json.dumps(schema, sort_keys=True)
        parsed = self.reader if self.given is not None else self._parsed.get(text)
        if parsed is None:
            parsed = self._parsed[text] = _parse(schema, "the inferred schema")
        prefix = b""
        if self.wire:
            sid = self._written.get(text)
            if sid is None:
                sid = self.registry.register(self.subject, json.dumps(schema), self.kind)
                self._written[text] = sid
            prefix = frame(sid, b"")
        write, out = fastavro.schemaless_writer, []
        for record in _records(frame_, schema):
            buf = io.BytesIO()
            buf.write(prefix)
            write(buf, parsed, record)
            out.append(buf.getvalue())
        return out

    def encode_records(self, records: list, schema_id: int | None = None) -> list[bytes]:
        """Python objects (a dict per record) as the given schema's bodies, framed with `schema_id` (a
        version the registry already holds, e.g. a subject's latest) when one is given. A record that
        does not fit the schema raises ValueError naming its position."""
        if self.reader is None:
            raise ConfigError("encode_records() needs the schema the records are written with")
        prefix = b"" if schema_id is None else frame(schema_id, b"")
        write, out = fastavro.schemaless_writer, []
        for i, record in enumerate(records):
            buf = io.BytesIO()
            buf.write(prefix)
            try:
                write(buf, self.reader, record)
            except Exception as e:  # noqa: BLE001 - fastavro's many kinds of "does not fit"
                raise ValueError(f"record {i + 1} does not fit the schema: {type(e).__name__}: {e}") from None
            out.append(buf.getvalue())
        return out

    def _need_writable(self) -> None:
        if self.given is None:
            self._need_schema()
        if self.wire and not self.subject:
            raise ConfigError("writing Avro through the Schema Registry needs a subject")

    def _infer(self, frame_: pd.DataFrame) -> dict:
        """A record schema of the frame's columns, each nullable once it has held a missing value (a
        schema only widens, so the registry sees a new version only when a column becomes nullable)."""
        fields = []
        known = {f["name"]: f for f in (self._inferred or {}).get("fields", [])}
        for name in frame_.columns:
            if not isinstance(name, str) or not _NAME.match(name):
                raise ConfigError(f"column {name!r} cannot be an Avro field name (letters, digits and _, "
                                  "not starting with a digit); rename it before writing Avro")
            col = frame_[name]
            kind = _avro_type(col)
            nullable = bool(col.isna().any()) or (name in known and isinstance(known[name]["type"], list))
            if name in known and _base(known[name]["type"]) != kind:
                kind = _base(known[name]["type"]) if col.isna().all() else kind
            fields.append({"name": name, "type": ["null", kind] if nullable else kind,
                           **({"default": None} if nullable else {})})
        record = (self.subject or "value").replace("-", "_").replace(".", "_")
        record = record if _NAME.match(record) else f"r_{record}"
        self._inferred = {"type": "record", "name": record, "namespace": "streamframe", "fields": fields}
        return self._inferred


def _which(sid) -> str:
    return "the schema= given" if sid is None else f"schema id {sid}"


def _base(t):
    return next(x for x in t if x != "null") if isinstance(t, list) else t


def _avro_type(col: pd.Series):
    """The Avro type of a pandas column (its non-missing values, for object columns)."""
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "long"
    if pd.api.types.is_float_dtype(dtype):
        return "double"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return dict(_TIMESTAMP)
    kind = pd.api.types.infer_dtype(col, skipna=True)
    return {"bytes": "bytes", "boolean": "boolean", "integer": "long", "floating": "double",
            "mixed-integer-float": "double", "datetime": dict(_TIMESTAMP)}.get(kind, "string")


def _records(frame_: pd.DataFrame, schema):
    """Each row as the Python values fastavro writes: missing values as None, and the text of what a
    string field holds that is not a string."""
    record = isinstance(schema, dict) and schema.get("type") == "record"
    types = [_base(f["type"]) for f in schema["fields"]] if record else [_base(schema)]
    names, columns = _field_names(schema), []
    for name, kind in zip(names, types):
        col = frame_[name] if name in frame_.columns else pd.Series([None] * len(frame_), dtype=object)
        missing = col.isna().to_numpy()
        if pd.api.types.is_datetime64_any_dtype(col.dtype):
            values = list(col.dt.to_pydatetime())
        else:
            values = col.tolist()
        if missing.any():
            values = [None if m else v for v, m in zip(values, missing)]
        if kind == "string":
            values = [v if v is None or isinstance(v, str) else str(v) for v in values]
        columns.append(values)
    if not record:
        yield from columns[0]
        return
    for row in zip(*columns) if columns else ([] for _ in range(len(frame_))):
        yield dict(zip(names, row))


__all__ = ["AvroFormat", "load_schema"]
