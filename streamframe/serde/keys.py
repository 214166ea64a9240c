"""Record keys: decoded in bulk to a column, encoded back for the producer."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_JSON_KEYS = ("json", "avro", "jsonschema", "protobuf")  # keys written as JSON once decoded


def decode_keys(keys: list, fmt: str, index) -> pd.Series:
    """Keys as a column: text keys become str (None stays None), raw keys stay bytes."""
    if fmt in ("bytes", "raw"):
        return pd.Series(keys, index=index, dtype=object)
    if fmt == "json":
        return pd.Series([None if k is None else orjson.loads(k) for k in keys], index=index, dtype=object)
    try:
        # One vectorized UTF-8 validation instead of a decode call per key.
        arr = pc.cast(pa.array(keys, type=pa.binary()), pa.string())
        return pd.Series(arr.to_numpy(zero_copy_only=False), index=index, dtype=object)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.Series(
            [None if k is None else bytes(k).decode("utf-8", "surrogateescape") for k in keys],
            index=index,
            dtype=object,
        )


def decode_registry_keys(keys: list, fmt, index) -> tuple[pd.Series, dict[int, str]]:
    """Keys in a Schema Registry format (`fmt`, an avro or jsonschema Format with its registry): a key of
    one value (an Avro string, long, ...) is that value, a record key a dict of its fields; a null key
    None. Returns the column and {position in `keys`: why} for keys that do not decode (None there)."""
    decoded = fmt.decode(keys)
    frame = decoded.frame
    if list(frame.columns) == ["value"]:
        values = frame["value"].astype(object).where(frame["value"].notna(), None).tolist()
    else:
        values = frame.astype(object).where(frame.notna(), None).to_dict("records")
    out = [None] * len(keys)
    for at, v in zip(frame.index.tolist(), values):
        if keys[at] is not None:
            out[at] = v
    errors = {int(i): f"key: {why}" for i, why in decoded.errors.items()}
    return pd.Series(out, index=index, dtype=object), errors


def encode_registry_keys(keys: list, fmt, field: str | None = None) -> list:
    """Keys as `fmt` writes them (a format of a Schema Registry, its subject set): a dict key (a record
    key as decoded) by its fields, any other key as the field `field` — or the format's one field, where
    it has just one; a null key stays null."""
    at = [i for i, k in enumerate(keys) if _plain(k) is not None]
    names = fmt.columns or []
    if field not in names and len(names) == 1:
        field = names[0]
    rows = [keys[i] if isinstance(keys[i], dict) else {field: keys[i]} for i in at]
    if field not in names and any(None in r for r in rows):
        from streamframe.errors import ConfigError

        raise ConfigError(f"a key of one value does not say which field of the key schema it is (fields: "
                          f"{', '.join(names)}); write key= a column named like one, or keys of those fields")
    out = [None] * len(keys)
    for i, encoded in zip(at, fmt.encode(pd.DataFrame.from_records(rows)) if rows else []):
        out[i] = encoded
    return out


def key_bytes(key, fmt: str = "text") -> bytes | None:
    """One record key as the bytes Kafka holds, the same on every path that writes or partitions by a
    key (sinks, re-key copies, joins, aggregations' tasks, the test driver); None: a null key.

    bytes pass as they are; str is UTF-8 (a key read with surrogates gets its original bytes back);
    a float that holds an int is the int (a column with a missing value is a float column), so 3.0 is
    "3" like 3; a tuple, list or dict (a key of several columns) is JSON; anything else is its text.
    With `fmt="json"` every key but bytes is JSON, and so with "avro", "jsonschema" and "protobuf": a
    key decoded from a Schema Registry format and written again (not passed through as consumed, nor
    encoded by encode_registry_keys) is JSON."""
    key = _plain(key)
    if key is None or isinstance(key, bytes):
        return key
    if fmt in _JSON_KEYS or isinstance(key, (tuple, list, dict)):
        if isinstance(key, (tuple, list)):
            key = [_plain(part) for part in key]
        return orjson.dumps(key, option=orjson.OPT_SERIALIZE_NUMPY)
    if isinstance(key, str):
        return key.encode("utf-8", "surrogateescape")
    return str(key).encode()


def _plain(value):
    """A numpy scalar as Python, a missing value as None, an int-valued float as the int."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def encode_keys(keys: pd.Series, fmt: str) -> list:
    """Keys for the producer, each as key_bytes gives it (text keys that need no re-encoding pass as
    str, which librdkafka writes as UTF-8)."""
    values = keys.tolist()
    if fmt not in _JSON_KEYS:
        kind = pd.api.types.infer_dtype(values, skipna=False)
        if kind == "bytes":  # keys as consumed (operators.records.KEY_BYTES)
            return values
        if kind == "string":
            # The common case, checked in C: only a key read with surrogates needs its bytes back.
            text = [k for k in values if isinstance(k, str)]
            if "".join(text).isascii() or not any(map(_has_surrogate, text)):  # the first check is one C call
                return values
    return [key_bytes(k, fmt) for k in values]


def _has_surrogate(k) -> bool:
    return isinstance(k, str) and not k.isascii() and any("\udc80" <= c <= "\udcff" for c in k)
