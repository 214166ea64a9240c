"""JSON Schema values: JSON bodies in Confluent's wire format, each checked against its writer schema
from the Schema Registry (or against `schema=`, a JSON Schema given as a dict, its JSON text or a file,
for plain JSON bodies with no registry), then decoded in bulk as `value="json"` decodes them.

A record whose id the registry does not know, whose body is not JSON, or that does not validate against
its schema is reported by position with the reason, as confluent-kafka's JSONDeserializer would refuse
it; writing infers a JSON Schema from the dtypes and registers it like the Avro format does.

    >>> fmt = JsonSchemaFormat({"type": "object", "properties": {"qty": {"type": "integer"}}})
    >>> decoded = fmt.decode([b'{"qty": 3}', b'{"qty": "three"}'])
    >>> decoded.frame["qty"].tolist(), decoded.errors[1][:42]
    ([3], 'JSON body does not match the schema= given')
"""

from __future__ import annotations

import json

import jsonschema
import orjson
import pandas as pd

from streamframe.errors import ConfigError
from streamframe.serde.base import Decoded, Format
from streamframe.serde.formats import JsonFormat
from streamframe.serde.json_encode import encode_json_rows
from streamframe.serde.wire import HEADER, SchemaSource, frame, group_by_schema, registry_schema, schema_json


def load_json_schema(schema) -> dict:
    return schema_json(schema, "a JSON Schema", ("{",))


def _validator(schema: dict, what: str):
    try:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as e:
        raise ConfigError(f"{what} is not a valid JSON Schema: {e.message}") from None
    return cls(schema)


def _json_type(col: pd.Series) -> str:
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "number"
    kind = pd.api.types.infer_dtype(col, skipna=True)
    return {"boolean": "boolean", "integer": "integer", "floating": "number",
            "mixed-integer-float": "number"}.get(kind, "string")


class JsonSchemaFormat(Format):
    """`schema`: plain JSON bodies checked against it; with a registry attached, the wire format, each
    record checked against its writer schema (or against `schema` when one is given)."""

    name = "jsonschema"
    kind = "JSON"

    def __init__(self, schema=None, subject: str | None = None):
        super().__init__(None)
        self.given = None if schema is None else load_json_schema(schema)
        self.check = None if schema is None else _validator(self.given, "schema=")
        self.registry: SchemaSource | None = None
        self.subject = subject
        self._validators: dict[int, object] = {}
        self._written: dict[str, int] = {}
        self._nullable: set[str] = set()  # columns written as nullable once (a schema only widens)
        self._json = JsonFormat()

    def attach(self, registry: SchemaSource | None, subject: str | None = None) -> JsonSchemaFormat:
        if registry is not self.registry:
            self.registry, self._validators, self._written = registry, {}, {}
        if subject is not None:
            self.subject = subject
        return self

    def _need_schema(self) -> None:
        if self.registry is None and self.given is None:
            raise ConfigError(f"value format {self.name!r} needs a Schema Registry "
                              "(sf.connect(schema_registry=...) or $STREAMFRAME_SCHEMA_REGISTRY) or schema=")

    def _checker(self, sid: int):
        """The validator of schema id `sid`, or why its records cannot be read."""
        return registry_schema(self.registry, self._validators, sid, self.kind,
                               lambda text: _validator(json.loads(text), f"schema id {sid}"))

    def decode(self, values: list) -> Decoded:
        self._need_schema()
        if self.registry is not None:
            groups, errors, nulls = group_by_schema(values)
        else:
            nulls = [i for i, v in enumerate(values) if v is None]
            groups, errors = {None: [i for i, v in enumerate(values) if v is not None]}, {}
        good, bodies = [], []
        skip = 0 if self.registry is None else HEADER
        for sid, at in groups.items():
            check = self.check if sid is None or self.check is not None else self._checker(sid)
            if isinstance(check, str):
                errors.update((i, check) for i in at)
                continue
            which = "the schema= given" if sid is None or self.check is not None else f"schema id {sid}"
            for i in at:
                body = values[i][skip:]
                try:
                    obj = orjson.loads(body)
                except orjson.JSONDecodeError as e:
                    errors[i] = f"invalid JSON: {e}"
                    continue
                problem = jsonschema.exceptions.best_match(check.iter_errors(obj))
                if problem is not None:
                    where = "/".join(map(str, problem.absolute_path))
                    errors[i] = f"JSON body does not match {which}: {problem.message}" + \
                        (f" (at {where})" if where else "")
                    continue
                good.append(i)
                bodies.append(body)
        order = sorted(range(len(good)), key=good.__getitem__)
        good, bodies = [good[k] for k in order], [bodies[k] for k in order]
        decoded = self._json.decode(bodies + [None] * len(nulls))
        positions = good + nulls
        frame_ = decoded.frame
        frame_.index = pd.Index([positions[k] for k in frame_.index], dtype="int64")
        errors.update((positions[k], why) for k, why in decoded.errors.items())
        return Decoded(frame_.sort_index() if nulls else frame_, errors)

    def encode(self, frame_: pd.DataFrame) -> list[bytes]:
        prefix = b""
        if self.registry is not None:
            if not self.subject:
                raise ConfigError("writing JSON Schema through the Schema Registry needs a subject")
            schema = self.given if self.given is not None else self._infer(frame_)
            text = json.dumps(schema, sort_keys=True)
            sid = self._written.get(text)
            if sid is None:
                sid = self.registry.register(self.subject, json.dumps(schema), self.kind)
                self._written[text] = sid
            prefix = frame(sid, b"")
        elif self.given is None:
            self._need_schema()
        values = encode_json_rows(frame_)
        return [prefix + v for v in values] if prefix else values

    def _infer(self, frame_: pd.DataFrame) -> dict:
        """An object schema of the columns: types from the dtypes, times as date-time strings (as the
        JSON encoder writes them), nullable once a column held a missing value."""
        props = {}
        for name in frame_.columns:
            col = frame_[name]
            if col.isna().any():
                self._nullable.add(name)
            if pd.api.types.is_datetime64_any_dtype(col.dtype):
                prop = {"type": "string", "format": "date-time"}
            else:
                prop = {"type": _json_type(col)}
            if name in self._nullable:
                prop["type"] = [prop["type"], "null"]
            props[str(name)] = prop
        return {"$schema": "http://json-schema.org/draft-07/schema#", "title": self.subject or "value",
                "type": "object", "properties": props}


__all__ = ["JsonSchemaFormat", "load_json_schema"]
