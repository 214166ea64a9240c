"""Encode a DataFrame as one JSON object per row, column-wise in Arrow instead of row by row.

Each column becomes an array of JSON text fragments (`"name":value`) with Arrow compute kernels, and
the fragments are joined element-wise into objects. Columns Arrow cannot render exactly (nested values,
strings that need escaping, unusual types) fall back to orjson for that column only. The same pieces
append fields to JSON objects kept as they were consumed (`append_json_fields`, plan/values.py).
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Bytes a string must not hold to be written between quotes as it is: '"', backslash, control
# characters (JSON escapes them) and DEL (strings holding it are left to orjson, whose bytes we match).
_NEEDS_ESCAPE = np.zeros(256, dtype=bool)
_NEEDS_ESCAPE[[*range(0x20), 0x22, 0x5C, 0x7F]] = True
_ORJSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
# append_json_fields: JSON's whitespace, the closing brace, and what before it needs a closer look (an
# empty object, or whitespace).
_JSON_SPACE = b" \t\r\n"
_CLOSE = ord("}")
_OPEN_OR_SPACE = np.zeros(256, dtype=bool)
_OPEN_OR_SPACE[list(b"{" + _JSON_SPACE)] = True


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


def _fragment(col: pa.ChunkedArray, series: pd.Series) -> tuple[pa.Array, str]:
    """The column as JSON text, and the quote to write around it (the text of a string column with no
    nulls is the column itself; its quotes go into the literal text the row is joined with)."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if pa.types.is_integer(t):
        text = pc.cast(col, pa.string())
    elif pa.types.is_floating(t):
        # JSON has no NaN or infinity (null instead); a whole float keeps its ".0" to read back as a float.
        # orjson writes no half floats: those are widened, which keeps their value.
        return _float_text(col.cast(pa.float32()) if pa.types.is_float16(t) else col), ""
    elif pa.types.is_boolean(t):
        text = pc.cast(col, pa.string())
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        col = col.cast(pa.string())
        if _needs_escape(col):
            return _orjson_column(series.tolist()), ""
        if col.null_count == 0:
            return col, '"'
        text = pc.binary_join_element_wise('"', col, '"', "")
    elif pa.types.is_timestamp(t):
        if t.tz is None:
            col = pc.assume_timezone(col, "UTC")
        # Formatting is slow per value and a batch's times repeat (window bounds always do):
        # each distinct time is formatted once.
        coded = pc.dictionary_encode(col)
        text = pc.take(pc.strftime(coded.dictionary, format="%Y-%m-%dT%H:%M:%SZ"), coded.indices)
        text = pc.binary_join_element_wise('"', text, '"', "")
    elif pa.types.is_null(t):
        return pa.array(["null"] * len(col), type=pa.string()), ""
    else:
        return _orjson_column(series.tolist()), ""
    return pc.fill_null(text, "null"), ""


def _float_text(col: pa.Array) -> pa.StringArray:
    """Floats as JSON numbers, null for NaN, infinities and nulls. orjson writes the whole column as one
    JSON array (the shortest text that reads back as the same float; a whole float keeps its ".0"), cut
    at its commas with NumPy: a third of the time Arrow's cast took with the fix-ups it needs."""
    values = col.to_numpy(zero_copy_only=False)  # nulls come out as NaN
    text = np.frombuffer(orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY), dtype=np.uint8)[1:-1]
    commas = np.flatnonzero(text == ord(","))
    keep = np.ones(len(text), dtype=bool)
    keep[commas] = False
    offsets = np.empty(len(values) + 1, dtype=np.int32)
    offsets[0] = 0
    # each value ends where its comma was, less the commas before
    offsets[1:-1] = commas - np.arange(len(commas))
    offsets[-1] = len(text) - len(commas)
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(text[keep]))


def _needs_escape(col: pa.StringArray) -> bool:
    """Whether any string holds a byte of _NEEDS_ESCAPE: one table look-up over the character data
    (a regex per string cost more than the rest of the column's encoding)."""
    offsets, data = col.buffers()[1:3]
    if data is None:
        return False
    ends = np.frombuffer(offsets, dtype=np.int32, count=len(col) + 1, offset=col.offset * 4)
    # Null slots may hold bytes too: at worst a false alarm, and orjson writes the column.
    chars = np.frombuffer(data, dtype=np.uint8)[ends[0]:ends[-1]]
    return bool(_NEEDS_ESCAPE[chars].any())


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
    return _joined(_fields(frame, "{"))


def append_json_fields(objects: list[bytes], frame: pd.DataFrame) -> list[bytes]:
    """Each JSON object of `objects` (valid, as `JsonFormat.decode_fields` found it; whitespace may follow
    it) with the fields of the same row of `frame` appended, the object's own bytes left as they are.

    >>> append_json_fields([b'{"a": 1.50}', b'{"a":2} ', b'{ }'], pd.DataFrame({"b": [True, False, True]}))
    [b'{"a": 1.50,"b":true}', b'{"a":2,"b":false}', b'{ "b":true}']
    """
    if not len(objects) or frame.shape[1] == 0:
        return list(objects)
    records = pa.array(objects, type=pa.binary())
    offsets, data = records.buffers()[1:3]
    ends = np.frombuffer(offsets, dtype=np.int32, count=len(objects) + 1)
    chars = np.frombuffer(data, dtype=np.uint8)
    # Almost always each object ends in its brace with a field before it: its bytes but the brace, then
    # ',' and the new fields. Otherwise its head is cut in Python and an empty object takes no comma.
    simple = len(chars) and (np.diff(ends) >= 3).all() and (chars[ends[1:] - 1] == _CLOSE).all() \
        and not _OPEN_OR_SPACE[chars[ends[1:] - 2]].any()
    if simple:
        # Bytes are viewed as text without checking: they go out as they came in.
        return _joined([pc.binary_slice(records, 0, -1).view(pa.string()), *_fields(frame, ",")])
    heads = [o.rstrip(_JSON_SPACE)[:-1] for o in objects]
    empty = [i for i, h in enumerate(heads) if h.rstrip(_JSON_SPACE) == b"{"]
    out = _joined([pa.array(heads, type=pa.binary()).view(pa.string()), *_fields(frame, ",")])
    for i in empty:
        out[i] = out[i][:len(heads[i])] + out[i][len(heads[i]) + 1:]
    return out


def _joined(pieces: list) -> list[bytes]:
    return pc.binary_join_element_wise(*pieces, "").cast(pa.binary()).to_pylist()


def _fields(frame: pd.DataFrame, opening: str) -> list:
    """Literal text and column fragments alternating, `opening` first: joined row by row they write
    `opening`, then '"a":' a, ',"b":"' b, ... and the closing '}'."""
    frame = frame.reset_index(drop=True)
    pieces, literal = [], opening
    for name in frame.columns:
        series = frame[name]
        quote = ""
        try:
            col = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            frag = _orjson_column(series.tolist())
        else:
            t = col.type
            if series.dtype == object and (pa.types.is_boolean(t) or pa.types.is_integer(t)
                                           or pa.types.is_floating(t)):
                # Arrow's inference over Python objects coerces ([0.0, False] reads as doubles 0, 0)
                frag = _orjson_column(series.tolist())
            else:
                frag, quote = _fragment(col, series)
        pieces += [literal + orjson.dumps(str(name)).decode() + ":" + quote, frag]
        literal = quote + ","
    pieces.append(literal[:-1] + "}")
    return pieces
