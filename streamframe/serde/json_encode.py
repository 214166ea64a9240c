"""Encode a DataFrame as one JSON object per row, column-wise in Arrow instead of row by row.

Each column becomes an array of JSON text fragments (`"name":value`) with Arrow compute kernels, and
the fragments are joined element-wise into objects. Columns Arrow cannot render exactly (nested values,
strings that need escaping, unusual types) fall back to orjson for that column only.
"""

from __future__ import annotations

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_NEEDS_ESCAPE = r'["\\\x00-\x1f\x7f]'
_ORJSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(value):
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def _orjson_column(values: list) -> pa.Array:
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and v != v) or v is pd.NA or v is pd.NaT:
            out.append("null")
        else:
            out.append(orjson.dumps(v, default=_default, option=_ORJSON_OPTS).decode())
    return pa.array(out, type=pa.string())


def _fragment(col: pa.ChunkedArray, series: pd.Series) -> pa.Array:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if pa.types.is_integer(t):
        text = pc.cast(col, pa.string())
    elif pa.types.is_floating(t):
        text = pc.cast(col, pa.string())
        # JSON has no NaN or infinity; a whole float keeps its ".0" so it reads back as a float.
        text = pc.if_else(pc.match_substring_regex(text, r"^-?\d+$"), pc.binary_join_element_wise(text, ".0", ""), text)
        text = pc.if_else(pc.is_finite(col), text, pa.scalar(None, pa.string()))
    elif pa.types.is_boolean(t):
        text = pc.cast(col, pa.string())
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        col = col.cast(pa.string())
        if pc.any(pc.match_substring_regex(col, _NEEDS_ESCAPE)).as_py():
            return _orjson_column(series.tolist())
        text = pc.binary_join_element_wise('"', col, '"', "")
    elif pa.types.is_timestamp(t):
        if t.tz is None:
            col = pc.assume_timezone(col, "UTC")
        text = pc.binary_join_element_wise('"', pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ"), '"', "")
    elif pa.types.is_null(t):
        return pa.array(["null"] * len(col), type=pa.string())
    else:
        return _orjson_column(series.tolist())
    return pc.fill_null(text, "null")


def encode_json_rows(frame: pd.DataFrame) -> list[bytes]:
    """One UTF-8 JSON object per row of `frame`, keys in column order.

    >>> encode_json_rows(pd.DataFrame({"a": [1, 2], "b": ["x", None]}))
    [b'{"a":1,"b":"x"}', b'{"a":2,"b":null}']
    """
    n = len(frame)
    if n == 0:
        return []
    if frame.shape[1] == 0:
        return [b"{}"] * n
    frame = frame.reset_index(drop=True)
    parts = []
    for name in frame.columns:
        series = frame[name]
        try:
            col = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            frag = _orjson_column(series.tolist())
        else:
            frag = _fragment(col, series)
        prefix = orjson.dumps(str(name)).decode() + ":"
        parts.append(pc.binary_join_element_wise(prefix, frag, ""))
    body = pc.binary_join_element_wise(*parts, ",") if len(parts) > 1 else parts[0]
    rows = pc.binary_join_element_wise("{", body, "}", "")
    return rows.cast(pa.binary()).to_pylist()
