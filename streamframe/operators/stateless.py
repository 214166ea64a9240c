"""Stateless operators: one pandas call per batch each, keeping the metadata columns alongside."""

from __future__ import annotations

import pandas as pd

from streamframe.errors import ConfigError
from streamframe.operators.base import Operator, evaluate
from streamframe.records import META, tombstones


def value_columns(frame: pd.DataFrame) -> list:
    return [c for c in frame.columns if c not in META]


def _as_mask(result, frame: pd.DataFrame) -> pd.Series:
    if not isinstance(result, pd.Series):
        result = pd.Series(result, index=frame.index)
    if not pd.api.types.is_bool_dtype(result.dtype):
        if pd.api.types.is_object_dtype(result.dtype) or result.isna().any():
            result = result.fillna(False)
        if not pd.api.types.is_bool_dtype(result.dtype) and not result.isin([True, False]).all():
            raise TypeError(f"a filter needs a boolean condition, got values of type {result.dtype}")
    elif result.hasnans:  # a nullable "boolean" mask: a missing answer is False, as NaN > 1 is
        result = result.fillna(False)
    return result.astype(bool)


class FilterOp(Operator):
    def process(self, batch):
        mask = self.node.mask
        result = batch.eval(mask) if isinstance(mask, str) else evaluate(mask, batch)
        keep = _as_mask(result, batch).to_numpy()
        keep = ~keep if self.node.negate else keep
        if not self.node.table:
            return batch[keep]
        out = batch.copy(deep=False)
        out["_tombstone"] = ~keep | tombstones(out)
        return out


class SelectOp(Operator):
    def process(self, batch):
        cols = list(self.node.columns)
        return batch[cols + [m for m in META if m not in cols and m in batch.columns]]


class AssignOp(Operator):
    def process(self, batch):
        out = batch.copy(deep=False)
        for name, value in self.node.columns:
            out[name] = evaluate(value, out)  # in order: later columns may use earlier ones, as in pandas
        return out


class MapOp(Operator):
    """User code over a whole chunk. Metadata the function drops is put back by index label."""

    def process(self, batch):
        # A copy (cheap under copy-on-write): a function that edits its argument in place must not
        # change the rows another branch of the topology sees.
        result = self.node.fn(batch.copy(deep=False))
        if isinstance(result, pd.Series):
            result = result.to_frame()
        if not isinstance(result, pd.DataFrame):
            raise TypeError(f"map() function must return a DataFrame, got {type(result).__name__}")
        missing = [m for m in META if m not in result.columns and m in batch.columns]
        if missing:
            if not result.index.isin(batch.index).all():
                raise ValueError("map() result must keep the input's index labels or its metadata columns "
                                 f"({', '.join(missing)})")
            meta = batch[missing]
            meta = meta[~meta.index.duplicated()]
            result = result.join(meta, how="left")
        return result


class PeekOp(Operator):
    def process(self, batch):
        self.node.fn(batch[value_columns(batch) + [m for m in META if m in batch.columns]])
        return batch


class ExplodeOp(Operator):
    def process(self, batch):
        return batch.explode(self.node.column)


class RekeyOp(Operator):
    def process(self, batch):
        key = self.node.key
        out = batch.copy(deep=False)
        values = out[key] if isinstance(key, str) else evaluate(key, out)
        out["_key"] = pd.Series(values, index=out.index).astype(object)
        return out


class PandasOp(Operator):
    """drop, rename, astype, dropna, fillna: pandas' own methods, applied to the value columns only."""

    def process(self, batch):
        method, args, kwargs = self.node.method, list(self.node.args), dict(self.node.kwargs)
        values = value_columns(batch)
        if method == "drop":
            return batch.drop(*args, **kwargs)
        if method == "rename":
            mapper = kwargs.get("columns")
            if callable(mapper):  # a function of the name renames value columns only, never metadata
                kwargs["columns"] = {c: mapper(c) for c in values}
            return batch.rename(*args, **kwargs)
        if method == "astype":
            dtype = args[0] if args else kwargs.pop("dtype")
            if not isinstance(dtype, dict):
                dtype = dict.fromkeys(values, dtype)
            return batch.astype(dtype, **kwargs)
        if method == "dropna":
            kwargs.setdefault("subset", values)
            return batch.dropna(*args, **kwargs)
        if method == "fillna":
            value = args[0] if args else kwargs.pop("value")
            if not isinstance(value, dict):
                value = dict.fromkeys(values, value)
            return batch.fillna(value, **kwargs)
        raise ConfigError(f"unsupported pandas method {method!r}")


class ConcatOp(Operator):
    def process(self, batch):
        return batch
