"""The source operator: a raw batch becomes a DataFrame of value columns plus metadata columns.

Values are decoded in one call per batch (serde), keys in one vectorized pass, and the event time is
taken from the record timestamp or extracted from a column or a function (time.extract). Records that
fail any of these are reported by position with a reason, never dropped silently.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from streamframe.operators.base import Operator, describe, evaluate
from streamframe.records import KEY_BYTES, META, RECORD_BYTES, VERBATIM_KEYS, RawBatch, take
from streamframe.serde import decode_keys, decode_registry_keys
from streamframe.time.extract import ms_to_datetime, to_epoch_ms


def _record_time(ts) -> bool:
    # `ts in (None, "record")` would compare a column expression with ==, which builds an expression
    return ts is None or (isinstance(ts, str) and ts == "record")


def _event_times(ts, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(epoch ms, valid, {row number: why}) from a column name, an expression or a function.

    A missing column invalidates the batch's rows; a function that raises is re-run on halves of the
    batch so that only the rows it fails on are invalid (as operators' errors are isolated).
    """
    try:
        column = frame[ts] if isinstance(ts, str) else evaluate(ts, frame)
        ms, ok = to_epoch_ms(pd.Series(column, index=frame.index))
        return ms, ok, {}
    except KeyError:
        return np.full(len(frame), -1, dtype="int64"), np.zeros(len(frame), dtype=bool), {}
    except Exception as exc:  # noqa: BLE001 - user code: attribute the failure to its rows
        if len(frame) == 1:
            return (
                np.full(1, -1, dtype="int64"),
                np.zeros(1, dtype=bool),
                {0: f": {type(exc).__name__}: {exc}"},
            )
    mid = len(frame) // 2
    ms1, ok1, why1 = _event_times(ts, frame.iloc[:mid])
    ms2, ok2, why2 = _event_times(ts, frame.iloc[mid:])
    return (
        np.concatenate([ms1, ms2]),
        np.concatenate([ok1, ok2]),
        {**why1, **{i + mid: w for i, w in why2.items()}},
    )


class DecodeSource(Operator):
    # Metadata columns this source leaves out, because no operator reads them (plan/metadata.py); the
    # topology fills them in for the rows that reach the output (`with_metadata`).
    deferred: frozenset = frozenset()
    # The value fields this source decodes alone, when its records go on to a JSON topic with fields
    # appended (plan/values.py); `projected`: whether the last batch was decoded so (or decoded whole).
    projection = None
    projected = False

    def decode(self, raw: RawBatch) -> tuple[pd.DataFrame, dict[int, str]]:
        node, deferred, projection = self.node, self.deferred, self.projection
        decoded = (
            None
            if projection is None
            else node.value_format.decode_fields(raw.values, projection.reads, projection.appends)
        )
        self.projected = decoded is not None
        if decoded is None:
            decoded = node.value_format.decode(raw.values)
        frame, errors = decoded.frame, dict(decoded.errors)
        if not node.table and node.value_format.schema is not None and None in raw.values:
            # a stream with a schema: a null value has none of its fields (a table's null is a delete)
            nulls = [i for i, v in enumerate(raw.values) if v is None]
            errors.update((i, "null value on a stream (its schema has fields)") for i in nulls)
            frame = frame.drop(index=[i for i in nulls if i in frame.index])
        keys = None
        if node.key_decoder is not None:  # a key that does not decode is an error, read or not
            at = frame.index.to_numpy()
            keys, why = decode_registry_keys(take(raw.keys, at), node.key_decoder, frame.index)
            if why:
                bad = [int(at[k]) for k in why]
                errors.update((int(at[k]), reason) for k, reason in why.items())
                frame, keys = frame.drop(index=bad), keys.drop(index=bad)
        pos = frame.index.to_numpy()
        full = len(pos) == len(raw)

        frame = frame.copy() if not full else frame
        if "_key" in deferred:
            pass
        elif keys is not None:
            frame["_key"] = keys
        else:
            frame["_key"] = decode_keys(
                raw.keys if full else raw.rows(pos).keys, node.key_format, frame.index
            )
        ts = node.timestamp
        if "_timestamp" in deferred:
            pass
        elif _record_time(ts):
            frame["_timestamp"] = ms_to_datetime(np.asarray(raw.timestamps, dtype="int64")[pos])
        elif isinstance(ts, str) and ts == "processing":  # wall-clock time when the record is processed
            frame["_timestamp"] = ms_to_datetime(np.full(len(pos), int(time.time() * 1000), dtype="int64"))
        else:
            ms, ok, why = _event_times(ts, frame)
            if not ok.all():
                for i, p in zip(np.flatnonzero(~ok), pos[~ok]):
                    errors[int(p)] = f"no valid timestamp in {describe(ts)}{why.get(int(i), '')}"
                frame, ms, pos = frame[ok], ms[ok], pos[ok]
            frame["_timestamp"] = ms_to_datetime(ms)
        if "_partition" not in deferred:
            frame["_partition"] = np.asarray(raw.partitions, dtype="int32")[pos]
        if "_offset" not in deferred:
            frame["_offset"] = np.asarray(raw.offsets, dtype="int64")[pos]
        if "_headers" not in deferred:
            frame["_headers"] = pd.Series(raw.headers, dtype=object).iloc[pos].to_numpy() if len(pos) else []
        # a null value: a delete in a table, skipped by joins (a projected batch has none)
        if node.table or (not self.projected and None in raw.values):
            frame["_tombstone"] = np.array([v is None for v in raw.values], dtype=bool)[pos]
        return frame, errors

    def with_metadata(self, frame: pd.DataFrame, raw: RawBatch, wanted=META) -> pd.DataFrame:
        """The `wanted` metadata columns this source left out, filled in for `frame`'s rows (an output
        of its batch `raw`: each row's index is its record's position in `raw`). With KEY_BYTES wanted,
        `_key` holds the key bytes as consumed when decoding and encoding them again would give them back."""
        missing = [m for m in META if m in self.deferred and m in wanted and m not in frame.columns]
        if not missing or not len(frame):
            return frame
        rows = raw.rows(frame.index.to_numpy())
        frame = frame.copy(deep=False)
        for name in missing:
            if name == "_key" and KEY_BYTES in wanted and self.node.key_format in VERBATIM_KEYS:
                frame[name] = pd.Series(rows.keys, index=frame.index, dtype=object)  # what decoding undoes
            elif name == "_key" and self.node.key_decoder is not None:  # one that does not decode: None
                frame[name] = decode_registry_keys(rows.keys, self.node.key_decoder, frame.index)[0]
            elif name == "_key":
                frame[name] = decode_keys(rows.keys, self.node.key_format, frame.index)
            elif name == "_timestamp":
                frame[name] = ms_to_datetime(np.asarray(rows.timestamps, dtype="int64"))
            elif name == "_partition":
                frame[name] = np.asarray(rows.partitions, dtype="int32")
            elif name == "_offset":
                frame[name] = np.asarray(rows.offsets, dtype="int64")
            else:
                frame[name] = pd.Series(rows.headers, dtype=object, index=frame.index)
        return frame

    def with_record(self, frame: pd.DataFrame, raw: RawBatch) -> pd.DataFrame:
        """`frame` (an output of a batch decoded by its projection) with each row's record as consumed
        in place of the fields decoded from it: what is left are the fields to append."""
        frame = frame.drop(columns=[c for c in self.projection.reads if c in frame.columns])
        frame[RECORD_BYTES] = pd.Series(
            take(raw.values, frame.index.to_numpy()), index=frame.index, dtype=object
        )
        return frame

    def process(self, batch):
        return batch


class DataFrameSourceOp(DecodeSource):
    """Rows of a DataFrame, in chunks, with the same metadata columns as a topic's records."""

    def decode(self, raw: RawBatch) -> tuple[pd.DataFrame, dict[int, str]]:
        # The values are row positions of the source DataFrame.
        node = self.node
        frame = node.frame.iloc[raw.values].copy()
        frame.index = pd.RangeIndex(len(frame))
        errors = {}
        key = node.key
        frame["_key"] = (
            frame[key].astype(str).astype(object) if key else pd.Series([None] * len(frame), dtype=object)
        )
        if _record_time(node.timestamp):
            ms, ok, why = np.asarray(raw.timestamps, dtype="int64"), np.ones(len(frame), dtype=bool), {}
        else:
            ms, ok, why = _event_times(node.timestamp, frame)
        if not ok.all():
            for p in np.flatnonzero(~ok):
                errors[int(p)] = f"no valid timestamp in {describe(node.timestamp)}{why.get(int(p), '')}"
            frame, ms = frame[ok], ms[ok]
        frame["_timestamp"] = ms_to_datetime(ms)
        frame["_partition"] = np.zeros(len(frame), dtype="int32")
        frame["_offset"] = np.asarray(raw.offsets, dtype="int64")[frame.index.to_numpy()]
        frame["_headers"] = None
        return frame, errors
