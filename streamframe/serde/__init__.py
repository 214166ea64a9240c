"""Value and key formats: bulk decode of a batch of raw bytes into columns, and back.

A format turns a list of raw values into a DataFrame in one call (Arrow's JSON and CSV readers, not a
Python loop), reporting the positions it could not decode with a reason, so the runtime can dead-letter
exactly those records and keep every good one.

    >>> fmt = value_format("json")
    >>> decoded = fmt.decode([b'{"a": 1}', b'not json'])
    >>> decoded.frame["a"].tolist(), list(decoded.errors), decoded.errors[1][:12]
    ([1], [1], 'invalid JSON')

May import errors and records only; never IPython, ipywidgets or confluent_kafka (DESIGN §7,
pyproject [tool.importlinter]).
"""

from __future__ import annotations

from streamframe.serde.avro import AvroFormat
from streamframe.serde.base import Decoded, Format
from streamframe.serde.formats import BytesFormat, CsvFormat, JsonFormat, TextFormat
from streamframe.serde.jsonschema import JsonSchemaFormat
from streamframe.serde.keys import (
    decode_keys,
    decode_registry_keys,
    encode_keys,
    encode_registry_keys,
    key_bytes,
)
from streamframe.serde.protobuf import ProtobufFormat

_FORMATS = {"json": JsonFormat, "csv": CsvFormat, "text": TextFormat, "bytes": BytesFormat,
            "raw": BytesFormat, "avro": AvroFormat,
            "jsonschema": JsonSchemaFormat, "protobuf": ProtobufFormat}
REGISTRY_KEYS = ("avro", "jsonschema", "protobuf")  # key formats of a Schema Registry (serde/keys.py)
KEY_FORMATS = ("text", "bytes", "raw", "json", *REGISTRY_KEYS)


def value_format(name: str, schema=None) -> Format:
    """The value format called `name` ("json", "csv", "text", "bytes", "avro", "jsonschema",
    "protobuf"), with an optional schema (for avro: an .avsc path, JSON text or dict; for jsonschema: a
    JSON Schema; for protobuf, required: the generated message class)."""
    from streamframe.errors import ConfigError

    if isinstance(name, Format):
        return name
    try:
        cls = _FORMATS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown value format {name!r}; "
                          f"use one of: {', '.join(sorted(_FORMATS))}") from None
    return cls(schema)


def attach_registry(fmt: Format, registry, subject: str | None = None) -> Format:
    """`fmt` reading (and writing, under `subject`) the wire format through `registry`, where it is a
    format of a Schema Registry (registry None: nothing changes)."""
    if registry is not None and hasattr(fmt, "attach"):
        fmt.attach(registry, subject)
    return fmt


def check_key_format(name: str) -> str:
    from streamframe.errors import ConfigError

    if name not in KEY_FORMATS:
        raise ConfigError(f"unknown key format {name!r}; use one of: {', '.join(KEY_FORMATS)}")
    return name


def key_decoder(name: str, key_schema=None) -> Format | None:
    """The format keys of key format `name` are read with, for the formats of a Schema Registry (None
    for the others); `key_schema`: that format's schema= (for "protobuf" the generated message class,
    needed without a registry)."""
    from streamframe.errors import ConfigError

    if name not in REGISTRY_KEYS:
        if key_schema is not None:
            raise ConfigError(f"key_schema= is for key formats {', '.join(REGISTRY_KEYS)}, not {name!r}")
        return None
    return value_format(name, key_schema)


__all__ = ["AvroFormat", "Decoded", "Format", "JsonSchemaFormat", "ProtobufFormat", "attach_registry",
           "check_key_format", "decode_keys", "decode_registry_keys", "encode_keys", "encode_registry_keys",
           "key_bytes", "key_decoder", "value_format"]
