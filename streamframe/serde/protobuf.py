"""Protobuf values of a given message class (`schema=`, a generated class): in Confluent's wire format
through the Schema Registry (magic byte, schema id, the message's indexes in its .proto file, the
message), or raw messages with no registry.

A record becomes a row of the message's fields: scalars as they are, an unset proto3 `optional` field
as null, enums by name, messages as dicts, repeated fields as lists. A record that does not parse, whose
schema id the registry does not know, or whose message indexes name another message is reported by
position with the reason. Writing builds a message of each row (columns = field names) and registers
the message's .proto file (as confluent-kafka's ProtobufSerializer does, a base64 FileDescriptorProto).
"""

from __future__ import annotations

import base64
import io

import pandas as pd
from google.protobuf.message import DecodeError, Message

from streamframe.errors import ConfigError
from streamframe.serde.base import Decoded, Format
from streamframe.serde.wire import HEADER, SchemaSource, frame, group_by_schema, registry_schema


def _index_path(desc) -> list[int]:
    """Where a message is in its file: top-level index, then nested indexes (Confluent's message indexes)."""
    path = []
    while desc.containing_type is not None:
        parent = desc.containing_type
        path.insert(0, list(parent.nested_types).index(desc))
        desc = parent
    path.insert(0, list(desc.file.message_types_by_name).index(desc.name))
    return path


def _varint(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)  # zigzag, as Confluent writes the indexes
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _indexes_bytes(path: list[int]) -> bytes:
    return b"\x00" if path == [0] else _varint(len(path)) + b"".join(map(_varint, path))


def _read_varint(fo: io.BytesIO) -> int:
    value = shift = 0
    while True:
        b = fo.read(1)
        if not b:
            raise EOFError("message indexes cut short")
        value |= (b[0] & 0x7F) << shift
        shift += 7
        if not b[0] & 0x80:
            return (value >> 1) ^ -(value & 1)


def _read_indexes(fo: io.BytesIO) -> list[int]:
    count = _read_varint(fo)
    if count == 0:
        return [0]
    if count < 0 or count > 100:
        raise ValueError(f"{count} message indexes")
    return [_read_varint(fo) for _ in range(count)]


def _repeated(f) -> bool:
    is_repeated = getattr(f, "is_repeated", None)  # protobuf 6.31+; `label` before (removed in 7)
    return bool(is_repeated) if is_repeated is not None else f.label == f.LABEL_REPEATED


def _value(f, value):
    if f.message_type is not None:
        return _fields(value)
    if f.enum_type is not None:
        names = f.enum_type.values_by_number
        return names[value].name if value in names else value
    return value


def _fields(msg) -> dict:
    """A message as {field: value}: scalars as they are, an unset field with presence (proto3
    `optional`, a message) as None, enums by name, messages as dicts, repeated fields as lists."""
    row = {}
    for f in msg.DESCRIPTOR.fields:
        value = getattr(msg, f.name)
        if _repeated(f):
            row[f.name] = [_value(f, x) for x in value]
        elif f.has_presence and not msg.HasField(f.name):
            row[f.name] = None
        else:
            row[f.name] = _value(f, value)
    return row


_INTS = (1, 2, 3, 4)  # FieldDescriptor.CPPTYPE_INT32, INT64, UINT32, UINT64


def _plain(f, v):
    """A pandas value as the message field takes it: a missing value as unset, a whole float (an int
    column that held a missing value) as the int."""
    if v is None or (isinstance(v, float) and v != v) or v is pd.NaT:
        return None
    if isinstance(v, float) and f.cpp_type in _INTS and v.is_integer():
        return int(v)
    return v


class ProtobufFormat(Format):
    """`schema`: the generated message class every record is an instance of."""

    name = "protobuf"
    kind = "PROTOBUF"

    def __init__(self, schema=None, subject: str | None = None):
        super().__init__(None)
        if not (isinstance(schema, type) and issubclass(schema, Message)):
            raise ConfigError("value format 'protobuf' needs schema= a generated message class "
                              f"(e.g. schema=orders_pb2.Order), got {type(schema).__name__}")
        self.cls = schema
        self.desc = schema.DESCRIPTOR
        self.path = _index_path(self.desc)
        self.registry: SchemaSource | None = None
        self.subject = subject
        self._known: dict[int, str | None] = {}  # schema id -> None (usable) or why not
        self._sid: int | None = None

    def attach(self, registry: SchemaSource | None, subject: str | None = None) -> ProtobufFormat:
        if registry is not self.registry:
            self.registry, self._known, self._sid = registry, {}, None
        if subject is not None:
            self.subject = subject
        return self

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.desc.fields]

    def apply_schema(self, frame_: pd.DataFrame) -> pd.DataFrame:
        return frame_.reindex(columns=self.columns)

    def _why_not(self, sid: int) -> str | None:
        """None where records of schema id `sid` can be read with the class given, else why not."""
        return registry_schema(self.registry, self._known, sid, self.kind, lambda text: None)

    def decode(self, values: list) -> Decoded:
        if self.registry is not None:
            groups, errors, nulls = group_by_schema(values)
        else:
            nulls = [i for i, v in enumerate(values) if v is None]
            groups, errors = {None: [i for i, v in enumerate(values) if v is not None]}, {}
        rows, positions = [], []
        parse = self.cls.FromString
        for sid, at in groups.items():
            why = None if sid is None else self._why_not(sid)
            if why is not None:
                errors.update((i, why) for i in at)
                continue
            for i in at:
                v = values[i]
                body = v
                if sid is not None:
                    fo = io.BytesIO(v)
                    fo.seek(HEADER)
                    try:
                        path = _read_indexes(fo)
                    except (EOFError, ValueError) as e:
                        errors[i] = f"Protobuf record of schema id {sid} has bad message indexes: {e}"
                        continue
                    if path != self.path:
                        errors[i] = (f"message indexes {path} of schema id {sid} are not "
                                     f"{self.desc.full_name} ({self.path})")
                        continue
                    body = v[fo.tell():]
                try:
                    rows.append(self._row(parse(body)))
                except (DecodeError, RuntimeWarning, ValueError) as e:
                    errors[i] = f"Protobuf body is not a {self.desc.full_name}: {e}"
                    continue
                positions.append(i)
        rows += [{}] * len(nulls)
        positions += nulls
        frame_ = pd.DataFrame.from_records(rows, columns=self.columns,
                                           index=pd.Index(positions, dtype="int64")) if rows else \
            pd.DataFrame(columns=self.columns, index=pd.Index([], dtype="int64"))
        return Decoded(frame_.sort_index(), errors)

    def _row(self, msg) -> dict:
        return _fields(msg)

    def encode(self, frame_: pd.DataFrame) -> list[bytes]:
        unknown = [c for c in frame_.columns if c not in self.desc.fields_by_name]
        if unknown:
            raise ConfigError(f"column {unknown[0]!r} is not a field of {self.desc.full_name} "
                              f"(fields: {', '.join(self.columns)}); drop or rename it before writing")
        prefix = b""
        if self.registry is not None:
            if not self.subject:
                raise ConfigError("writing Protobuf through the Schema Registry needs a subject")
            if self._sid is None:
                if self.desc.file.dependencies:
                    raise ConfigError(f"{self.desc.file.name} imports other .proto files; registering "
                                      "schema references is not supported yet")
                text = base64.standard_b64encode(self.desc.file.serialized_pb).decode("ascii")
                self._sid = self.registry.register(self.subject, text, self.kind)
            prefix = frame(self._sid, _indexes_bytes(self.path))
        fields_ = self.desc.fields_by_name
        columns = {c: [_plain(fields_[c], v) for v in frame_[c].tolist()] for c in frame_.columns}
        out = []
        for row in zip(*columns.values()) if columns else ([] for _ in range(len(frame_))):
            fields = {k: v for k, v in zip(columns, row) if v is not None}
            try:
                out.append(prefix + self.cls(**fields).SerializeToString())
            except (TypeError, ValueError) as e:
                raise ConfigError(f"a row does not fit {self.desc.full_name}: {e}") from None
        return out


__all__ = ["ProtobufFormat"]
