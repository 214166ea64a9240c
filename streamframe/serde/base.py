"""What every format provides: decode a batch in bulk, encode a frame in bulk."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Decoded:
    """The rows that decoded (index = position in the raw batch) and the positions that did not."""

    frame: pd.DataFrame
    errors: dict[int, str] = field(default_factory=dict)


class Format:
    """A value format. `schema` is a list of column names or a dict of column name to dtype."""

    name = "?"

    def __init__(self, schema=None):
        self.schema = schema

    @property
    def columns(self) -> list[str] | None:
        if self.schema is None:
            return None
        return list(self.schema)

    def decode(self, values: list) -> Decoded:
        raise NotImplementedError

    def encode(self, frame: pd.DataFrame) -> list[bytes]:
        raise NotImplementedError

    def apply_schema(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Give the frame exactly the schema's columns (missing ones as NA) and dtypes."""
        if self.schema is None:
            return frame
        frame = frame.reindex(columns=list(self.schema))
        if isinstance(self.schema, dict):
            frame = frame.astype({c: t for c, t in self.schema.items() if t is not None})
        return frame

    def fit_schema(self, frame: pd.DataFrame, errors: dict[int, str] | None = None) -> Decoded:
        """apply_schema, dead-lettering (by position) only the rows whose values do not fit it."""
        errors = dict(errors or {})
        try:
            return Decoded(self.apply_schema(frame), errors)
        except (ValueError, TypeError):
            pass
        good = []
        for i in frame.index:  # error path only: find the rows that do not fit, one by one
            try:
                self.apply_schema(frame.loc[[i]])
                good.append(i)
            except (ValueError, TypeError) as e:
                errors[int(i)] = f"does not fit the schema: {e}"
        return Decoded(self.apply_schema(frame.loc[good]), errors)

    def __repr__(self) -> str:
        return self.name
