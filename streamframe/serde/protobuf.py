"""Protobuf values: in Confluent's wire format through the Schema Registry (magic byte, schema id, the
message's indexes in its .proto file, the message), or raw messages of `schema=` (a generated message
class) with no registry. With a registry `schema=` is optional: a record is read with the message its
schema id and indexes name, the .proto files that schema imports resolved as its schema references.

A record becomes a row of the message's fields: scalars as they are, an unset proto3 `optional` field
as null, enums by name, messages as dicts, repeated fields as lists. A record that does not parse, whose
schema id the registry does not know, or whose message indexes name another message is reported by
position with the reason. Writing builds a message of each row (columns = field names) and registers
the message's .proto file (as confluent-kafka's ProtobufSerializer does, a base64 FileDescriptorProto),
each file it imports first under its own path, as a reference (serde/protobuf_schema.py).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from streamframe.errors import ConfigError
from streamframe.serde.base import Decoded, Format
from streamframe.serde.protobuf_schema import (
    index_path,
    indexes_bytes,
    load_file,
    message_at,
    read_indexes,
    register_file,
)
from streamframe.serde.wire import HEADER, SchemaSource, frame, group_by_schema, registry_schema


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
    column that held a missing value) as the int, a time in an integer field as epoch milliseconds."""
    if v is None or (isinstance(v, float) and v != v) or v is pd.NaT:
        return None
    if f.cpp_type in _INTS:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, (pd.Timestamp, np.datetime64)):
            return int(pd.Timestamp(v).as_unit("ms").value)
    return v


class ProtobufFormat(Format):
    """`schema`: the generated message class every record is an instance of; optional with a registry
    attached, where each record is read with the message its schema id and message indexes name."""

    name = "protobuf"
    kind = "PROTOBUF"

    def __init__(self, schema=None, subject: str | None = None):
        super().__init__(None)
        if schema is not None and not (isinstance(schema, type) and issubclass(schema, Message)):
            raise ConfigError("format 'protobuf' takes schema= a generated message class "
                              f"(e.g. schema=orders_pb2.Order), got {type(schema).__name__}")
        self.cls = schema
        self.desc = None if schema is None else schema.DESCRIPTOR
        self.path = None if schema is None else index_path(self.desc)
        self.registry: SchemaSource | None = None
        self.subject = subject
        self._files: dict[int, object] = {}  # schema id -> FileDescriptor (None: the class) or why not
        self._messages: dict[tuple, tuple | str] = {}  # (schema id, indexes) -> (class, fields) or why not
        self._sid: int | None = None

    def attach(self, registry: SchemaSource | None, subject: str | None = None) -> ProtobufFormat:
        if registry is not self.registry:
            self.registry, self._files, self._messages, self._sid = registry, {}, {}, None
        if subject is not None:
            self.subject = subject
        return self

    @property
    def columns(self) -> list[str] | None:
        return None if self.desc is None else [f.name for f in self.desc.fields]

    def apply_schema(self, frame_: pd.DataFrame) -> pd.DataFrame:
        return frame_ if self.desc is None else frame_.reindex(columns=self.columns)

    def _need_class(self, what: str) -> None:
        if self.cls is None:
            registry = " or a Schema Registry (sf.connect(schema_registry=...))" if what == "reading" else ""
            raise ConfigError(f"{what} Protobuf needs schema= the generated message class "
                              f"(e.g. schema=orders_pb2.Order){registry}")

    def _file(self, sid: int):
        """What reads records of schema id `sid`: None (the class given), its FileDescriptor built with
        the files it imports, or why they cannot be read."""
        if self.cls is not None:
            return registry_schema(self.registry, self._files, sid, self.kind, lambda text: None)
        return registry_schema(self.registry, self._files, sid, self.kind,
                               lambda text: load_file(text, self.registry.imports(sid)))

    def _message(self, sid: int, file, path: list[int]):
        """(message class, field names) of the message at `path` of schema id `sid`, or why not."""
        if file is None:
            if path != self.path:
                return (f"message indexes {path} of schema id {sid} are not "
                        f"{self.desc.full_name} ({self.path})")
            return self.cls, self.columns
        key = (sid, tuple(path))
        if key not in self._messages:
            try:
                desc = message_at(file, path)
                self._messages[key] = (GetMessageClass(desc), [f.name for f in desc.fields])
            except ValueError as e:
                self._messages[key] = f"schema id {sid}: {e}"
        return self._messages[key]

    def decode(self, values: list) -> Decoded:
        if self.registry is not None:
            groups, errors, nulls = group_by_schema(values)
        else:
            self._need_class("reading")
            nulls = [i for i, v in enumerate(values) if v is None]
            groups, errors = {None: [i for i, v in enumerate(values) if v is not None]}, {}
        names: dict[str, None] = dict.fromkeys(self.columns or [])
        rows, positions = [], []
        for sid in sorted(groups, key=lambda s: -1 if s is None else s):  # older versions' fields first
            at = groups[sid]
            file = None if sid is None else self._file(sid)
            if isinstance(file, str):
                errors.update((i, file) for i in at)
                continue
            for i in at:
                body, cls = values[i], self.cls
                if sid is not None:
                    fo = io.BytesIO(body)
                    fo.seek(HEADER)
                    try:
                        path = read_indexes(fo)
                    except (EOFError, ValueError) as e:
                        errors[i] = f"Protobuf record of schema id {sid} has bad message indexes: {e}"
                        continue
                    found = self._message(sid, file, path)
                    if isinstance(found, str):
                        errors[i] = found
                        continue
                    cls, fields = found
                    names.update(dict.fromkeys(fields))
                    body = body[fo.tell():]
                try:
                    rows.append(_fields(cls.FromString(body)))
                except (DecodeError, RuntimeWarning, ValueError) as e:
                    errors[i] = f"Protobuf body is not a {cls.DESCRIPTOR.full_name}: {e}"
                    continue
                positions.append(i)
        rows += [{}] * len(nulls)
        positions += nulls
        columns = list(names)
        frame_ = pd.DataFrame.from_records(rows, columns=columns, index=pd.Index(positions, dtype="int64")) \
            if rows else pd.DataFrame(columns=columns, index=pd.Index([], dtype="int64"))
        return Decoded(frame_.sort_index(), errors)

    def encode(self, frame_: pd.DataFrame) -> list[bytes]:
        self._need_class("writing")
        unknown = [c for c in frame_.columns if c not in self.desc.fields_by_name]
        if unknown:
            raise ConfigError(f"column {unknown[0]!r} is not a field of {self.desc.full_name} "
                              f"(fields: {', '.join(self.columns)}); drop or rename it before writing")
        prefix = b""
        if self.registry is not None:
            if not self.subject:
                raise ConfigError("writing Protobuf through the Schema Registry needs a subject")
            if self._sid is None:
                self._sid = register_file(self.registry, self.subject, self.desc.file)
            prefix = frame(self._sid, indexes_bytes(self.path))
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
