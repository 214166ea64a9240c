"""Record keys: decoded in bulk to a column, encoded back for the producer."""

from __future__ import annotations

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


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


def encode_keys(keys: pd.Series, fmt: str) -> list:
    """Keys for the producer: bytes as they are, str as UTF-8 (a key that was not valid UTF-8 when
    read as text comes back as its original bytes), anything else as its text."""
    values = keys.tolist()
    if fmt == "json":
        return [None if k is None else orjson.dumps(k) for k in values]
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind == "bytes":  # keys as consumed (operators.records.KEY_BYTES)
        return values
    if kind == "string":
        # The common case, checked in C: valid text keys pass as they are (librdkafka encodes str as
        # UTF-8); only a key read with surrogates needs the slow path below to get its bytes back.
        text = [k for k in values if isinstance(k, str)]
        if "".join(text).isascii() or not any(map(_has_surrogate, text)):  # the first check is one C call
            return values
    out = []
    for k in values:
        if k is None or isinstance(k, bytes):
            out.append(k)
        elif isinstance(k, str):
            out.append(k.encode("utf-8", "surrogateescape"))
        elif isinstance(k, float) and k != k:  # NaN from a missing column value
            out.append(None)
        else:
            out.append(str(k))
    return out


def _has_surrogate(k) -> bool:
    return isinstance(k, str) and not k.isascii() and any("\udc80" <= c <= "\udcff" for c in k)
