"""Confluent's wire format, as Schema Registry serializers write it: a magic byte 0, the schema id in
four big-endian bytes, then the body (Avro, JSON, or a Protobuf message after its message indexes).

Confluent Schema Registry writes and reads it, and so do the registries that speak its API (Karapace,
Redpanda's, Apicurio's compatibility API). The registry itself is reached only through `SchemaSource`,
which the kafka layer provides (kafka/registry.py): serde never talks HTTP.

    >>> frame(7, b"body")
    b'\\x00\\x00\\x00\\x00\\x07body'
    >>> group_by_schema([frame(7, b"a"), b"junk", None, frame(7, b"b")])
    ({7: [0, 3]}, {1: 'not in the Schema Registry wire format (magic byte 0, then a 4-byte schema id)'}, [2])
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from streamframe.errors import ConfigError, SchemaRegistryError

HEADER = 5  # the magic byte and the schema id
NOT_WIRE = "not in the Schema Registry wire format (magic byte 0, then a 4-byte schema id)"


class SchemaSource(Protocol):
    """What a format asks of a Schema Registry. Errors of the registry itself (unreachable, refused
    credentials, incompatible schema) are raised as streamframe.errors.SchemaRegistryError."""

    def schema(self, schema_id: int, kind: str | None = None) -> tuple[str, str] | None:
        """(schema type "AVRO"/"JSON"/"PROTOBUF", schema text) of an id; None if the registry has none.
        `kind`: the type the caller reads, so that a Protobuf schema comes as its FileDescriptorProto."""

    def register(self, subject: str, schema: str, schema_type: str, references=()) -> int:
        """The id of `schema` under `subject`, registered if new; `references`: (name, subject, version)
        of each schema it imports (a Protobuf file's imports)."""

    def version_of(self, subject: str, schema: str, schema_type: str, references=()) -> int:
        """The version number of `schema` (registered) under `subject`."""

    def imports(self, schema_id: int) -> dict[str, str]:
        """{name: schema text} of every schema that schema id `schema_id` references, directly or not, a
        schema after those it references; ValueError if one is not in the registry."""

    def latest(self, subject: str) -> tuple[int, str, str] | None:
        """(id, schema type, schema text) of the subject's latest version; None if there is no subject."""


def frame(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + body


def group_by_schema(values: list) -> tuple[dict[int, list[int]], dict[int, str], list[int]]:
    """({schema id: positions}, {position: why it is not in the wire format}, positions of nulls)."""
    groups: dict[bytes, list[int]] = {}
    errors, nulls = {}, []
    for i, v in enumerate(values):
        if v is None:
            nulls.append(i)
        elif len(v) < HEADER or v[0] != 0:
            errors[i] = NOT_WIRE
        else:
            head = v[1:HEADER]
            at = groups.get(head)
            if at is None:
                groups[head] = [i]
            else:
                at.append(i)
    return {int.from_bytes(k, "big"): at for k, at in groups.items()}, errors, nulls


def registry_schema(registry: SchemaSource, cache: dict, sid: int, kind: str, parse: Callable[[str], Any]):
    """What `parse` makes of the text of schema id `sid`, a `kind` schema ("AVRO", "JSON", "PROTOBUF"),
    asked of `registry` once and kept in `cache` — or, as a str, why records of that id cannot be read:
    the id is unknown, it is another kind of schema, or `parse` fails on it. A registry that cannot be
    reached raises SchemaRegistryError and nothing is kept (the records are good)."""
    if sid in cache:
        return cache[sid]
    found = registry.schema(sid, kind)
    if found is None:
        known = f"unknown schema id {sid} (the Schema Registry has no schema with this id)"
    elif found[0] != kind:
        known = f"schema id {sid} is a {found[0]} schema, not {kind}"
    else:
        try:
            known = parse(found[1])
        except SchemaRegistryError:
            raise
        except Exception as e:  # noqa: BLE001 - a schema the registry holds but this reader cannot use
            known = f"schema id {sid} cannot be used: {e}"
    cache[sid] = known
    return known


def schema_json(schema, what: str, starts: tuple[str, ...], types: tuple[type, ...] = (dict,)):
    """`schema=` as given (one of `types`), its JSON text (starting with one of `starts`), or the path of
    a file holding it; `what` names the kind of schema in errors."""
    if isinstance(schema, types):
        return schema
    text = isinstance(schema, str) and schema.lstrip().startswith(starts)
    if isinstance(schema, Path) or (isinstance(schema, str) and not text):
        path = Path(schema)
        if not path.is_file():
            raise ConfigError(f"schema= {str(schema)!r} is neither {what} nor a file holding one")
        schema = path.read_text()
    try:
        return json.loads(schema)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"schema= is not {what} in JSON: {e}") from None
