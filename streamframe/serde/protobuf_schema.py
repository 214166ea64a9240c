"""Protobuf schemas as a Schema Registry holds them: a .proto file as a base64 FileDescriptorProto (the
"serialized" form confluent-kafka registers and asks for), its imports as schema references (each
imported file a subject of its own, named by its path, as confluent-kafka's ProtobufSerializer does), and
the message indexes that say which message of the file a record is.

    >>> from google.protobuf import timestamp_pb2
    >>> text = file_text(timestamp_pb2.DESCRIPTOR)
    >>> message_at(load_file(text, {}), [0]).full_name
    'google.protobuf.Timestamp'
    >>> indexes_bytes([1, 0]), read_indexes(io.BytesIO(indexes_bytes([1, 0])))
    (b'\\x04\\x02\\x00', [1, 0])
"""

from __future__ import annotations

import base64
import io

from google.protobuf import (
    any_pb2,
    api_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    source_context_pb2,
    struct_pb2,
    timestamp_pb2,
    type_pb2,
    wrappers_pb2,
)

from streamframe.serde.wire import SchemaSource

KIND = "PROTOBUF"
# Files every reader has, never sent as references (confluent-kafka's _is_builtin): a pool holds them.
BUILTIN = ("google/protobuf/", "google/type/", "confluent/")
_WELL_KNOWN = (any_pb2, source_context_pb2, type_pb2, api_pb2, descriptor_pb2, duration_pb2, empty_pb2,
               field_mask_pb2, struct_pb2, timestamp_pb2, wrappers_pb2)


def is_builtin(name: str) -> bool:
    return name.startswith(BUILTIN)


def file_text(file) -> str:
    """A FileDescriptor as the registry holds it."""
    return base64.standard_b64encode(file.serialized_pb).decode("ascii")


def _proto(name: str, text: str) -> descriptor_pb2.FileDescriptorProto:
    try:
        proto = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(text, validate=True))
    except ValueError as e:  # binascii.Error and DecodeError are ValueErrors
        raise ValueError("not a base64 FileDescriptorProto (a registry that serves .proto text only "
                         f"needs protoc, which streamframe does not run): {e}") from None
    if name:
        proto.name = name  # the path its importers know it by (the reference's name)
    return proto


def load_file(text: str, imports: dict[str, str]):
    """The FileDescriptor of a registry's schema `text`, with the files it imports ({path: text}, a file
    after those it imports) and the well-known ones; ValueError or TypeError if it cannot be built."""
    pool = descriptor_pool.DescriptorPool()
    for module in _WELL_KNOWN:
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    for name, dep in imports.items():
        if not is_builtin(name):
            pool.Add(_proto(name, dep))
    main = _proto("", text)
    main.name = main.name or "default"
    pool.Add(main)
    return pool.FindFileByName(main.name)


def message_at(file, path: list[int]):
    """The message of `file` at message indexes `path`; ValueError if there is none."""
    found, where = list(file.message_types_by_name.values()), "top-level"
    desc = None
    for i in path:
        if not 0 <= i < len(found):
            raise ValueError(f"message indexes {path} name no message of {file.name} "
                             f"({len(found)} {where} message(s) at index {i})")
        desc = found[i]
        found, where = list(desc.nested_types), f"nested in {desc.full_name}"
    if desc is None:
        raise ValueError("no message indexes")
    return desc


def index_path(desc) -> list[int]:
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


def indexes_bytes(path: list[int]) -> bytes:
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


def read_indexes(fo: io.BytesIO) -> list[int]:
    count = _read_varint(fo)
    if count == 0:
        return [0]
    if count < 0 or count > 100:
        raise ValueError(f"{count} message indexes")
    return [_read_varint(fo) for _ in range(count)]


def register_file(registry: SchemaSource, subject: str, file) -> int:
    """The id of `file` under `subject`, registered with its imports as references: each imported file
    (but the built-in ones) registered first under its own path, as confluent-kafka does."""
    return registry.register(subject, file_text(file), KIND, _references(registry, file))


def _references(registry: SchemaSource, file) -> list[tuple[str, str, int]]:
    refs = []
    for dep in file.dependencies:
        if is_builtin(dep.name):
            continue
        text, deps = file_text(dep), _references(registry, dep)
        registry.register(dep.name, text, KIND, deps)
        refs.append((dep.name, dep.name, registry.version_of(dep.name, text, KIND, deps)))
    return refs


__all__ = ["KIND", "file_text", "index_path", "indexes_bytes", "load_file", "message_at", "read_indexes",
           "register_file"]
