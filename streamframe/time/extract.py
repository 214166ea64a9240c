"""Timestamp extraction: any column of times becomes epoch milliseconds, in bulk.

Integers are epoch milliseconds; floats too (a NaN is missing); datetimes and ISO 8601 strings are
converted to UTC (a naive time is taken as UTC). A missing, unparseable or negative time is invalid —
like a negative result of Kafka Streams' TimestampExtractor — and the record is dead-lettered.

    >>> import pandas as pd
    >>> ms, ok = to_epoch_ms(pd.Series(["2024-01-01T00:00:01Z", "soon", 5]))
    >>> ms.tolist(), ok.tolist()
    ([1704067201000, -1, 5], [True, False, True])
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def to_epoch_ms(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(milliseconds as int64, valid mask); invalid entries hold -1."""
    s = series
    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(s.dtype):
        if getattr(s.dt, "tz", None) is None:
            s = s.dt.tz_localize("UTC")
        ms = s.dt.tz_convert("UTC").astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        ok = s.notna().to_numpy()
    elif pd.api.types.is_bool_dtype(s.dtype):
        ms, ok = np.full(len(s), -1, dtype="int64"), np.zeros(len(s), dtype=bool)
    elif pd.api.types.is_numeric_dtype(s.dtype):
        f = s.to_numpy(dtype="float64", na_value=np.nan)
        ok = np.isfinite(f)
        ms = np.where(ok, f, -1).astype("int64")
    else:
        ms, ok = _parse_mixed(s)
    ok = ok & (ms >= 0)
    return np.where(ok, ms, -1), ok


def _parse_mixed(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    values = s.astype(object)
    # True is not a time (as in a bool column), though to_numeric would read it as 1 ms
    values = values.mask(np.fromiter((isinstance(v, (bool, np.bool_)) for v in values), bool, len(values)))
    numeric = pd.to_numeric(values, errors="coerce")
    is_num = numeric.notna().to_numpy()
    out = np.where(is_num, numeric.fillna(-1).to_numpy(dtype="float64"), -1).astype("int64")
    text = values[~is_num & values.notna().to_numpy()]
    if len(text):
        parsed = pd.to_datetime(text.astype(str), utc=True, errors="coerce", format="ISO8601")
        good = parsed.notna().to_numpy()
        pos = np.flatnonzero(~is_num & values.notna().to_numpy())
        out[pos[good]] = parsed[good].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
        is_num = is_num.copy()
        is_num[pos[good]] = True
    return out, is_num


def ms_to_datetime(ms) -> pd.DatetimeIndex:
    """Epoch milliseconds to UTC datetimes in milliseconds (the `_timestamp` column's type): a view of
    the integers, no conversion (pd.to_datetime(unit="ms") would convert to nanoseconds)."""
    return pd.DatetimeIndex(np.asarray(ms, dtype="int64").view("datetime64[ms]")).tz_localize("UTC")


def datetime_to_ms(series: pd.Series) -> np.ndarray:
    """A `_timestamp`-like column (any datetime unit, or epoch ms) as epoch milliseconds."""
    if isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series.dtype):
        return series.to_numpy(dtype="datetime64[ms]").astype("int64")
    return series.to_numpy(dtype="int64")
