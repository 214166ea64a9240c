"""Window definitions and the rules that place a record in windows, as Kafka Streams does.

All times are epoch milliseconds. Windows are `[start, end)` aligned to the epoch:

* tumbling(size): the one window with `start = ts - ts % size`.
* hopping(size, every): every window with `start` a multiple of `every`, `start >= 0`,
  `start <= ts < start + size` (TimeWindows.windowsFor).
* session(gap): records of a key closer than `gap` merge into one session `[first ts, last ts]`
  (both ends inclusive, as in SessionWindows).
* sliding(d): `[start, start + d]`, both ends inclusive, placed where the records are: a record's left
  window `[ts - d, ts]` and, when a record follows within `d`, its right window `[ts + 1, ts + 1 + d]`
  (SlidingWindows; record by record in streamframe/operators/sliding.py). Retention defaults to
  `2d + grace`, the least Kafka Streams accepts.

A record updates a time window only if `window_end > stream_time - grace` (stream time: the largest
event time seen by the task, this record included); otherwise it is late for that window and dropped.

    >>> Window.parse(tumbling="1min").windows_for([61_000])
    (array([0]), array([60000]), array([120000]))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from streamframe.errors import ConfigError


def to_ms(value, what: str) -> int | None:
    """A duration as milliseconds: "10s", "1min", "500ms", a Timedelta, or an int (ms)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{what} must be a duration such as '10s', got {value!r}")
    if isinstance(value, (int, np.integer)):
        ms = int(value)
    else:
        try:
            ms = int(pd.Timedelta(value).total_seconds() * 1000)
        except (ValueError, TypeError):
            raise ConfigError(
                f"{what} must be a duration such as '10s', '1min' or milliseconds, got {value!r}"
            ) from None
    if ms < 0:
        raise ConfigError(f"{what} must not be negative, got {value!r}")
    return ms


@dataclass(frozen=True)
class Window:
    kind: str  # "tumbling" | "hopping" | "session" | "sliding"
    size: int  # ms; for sessions, the inactivity gap; for sliding windows, the time difference
    advance: int
    grace: int
    retention: int

    @classmethod
    def parse(
        cls, tumbling=None, hopping=None, every=None, sliding=None, session=None, grace=None, retention=None
    ) -> Window:
        given = {
            k: v
            for k, v in (
                ("tumbling", tumbling),
                ("hopping", hopping),
                ("sliding", sliding),
                ("session", session),
            )
            if v is not None
        }
        if len(given) != 1:
            raise ConfigError(
                "window() takes exactly one of tumbling=, hopping= (with every=), sliding=, session="
            )
        kind, value = given.popitem()
        size = to_ms(value, kind)
        if size <= 0:
            raise ConfigError(f"{kind} must be a positive duration, got {value!r}")
        advance = size
        if kind == "hopping":
            if every is None:
                raise ConfigError(
                    "hopping windows need every= (the advance), e.g. hopping='1min', every='10s'"
                )
            advance = to_ms(every, "every")
            if not 0 < advance <= size:
                raise ConfigError(f"every= must be positive and at most the window size, got {every!r}")
        elif every is not None:
            raise ConfigError("every= goes with hopping= only")
        grace_ms = to_ms(grace, "grace") or 0
        # A sliding window store must reach back 2 * d + grace (SlidingWindowStoreMaterializer).
        span = (2 * size if kind == "sliding" else size) + grace_ms
        retention_ms = to_ms(retention, "retention") if retention is not None else span
        if retention_ms < span:
            what = "twice the time difference" if kind == "sliding" else "the window size"
            raise ConfigError(f"retention must be at least {what} plus grace ({span} ms), got {retention!r}")
        return cls(kind, size, advance, grace_ms, retention_ms)

    def describe(self) -> str:
        if self.kind == "hopping":
            return f"hopping {self.size} ms every {self.advance} ms, grace {self.grace} ms"
        return f"{self.kind} {self.size} ms, grace {self.grace} ms"

    def windows_for(self, ts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(record index, window start, window end) for each window each timestamp falls in."""
        if self.kind == "sliding":
            raise ConfigError(
                "sliding windows depend on the other records of the key; see operators/sliding.py"
            )
        ts = np.asarray(ts, dtype="int64")
        if self.kind == "tumbling":
            start = ts - ts % self.size
            return np.arange(len(ts)), start, start + self.size
        first = (np.maximum(0, ts - self.size + self.advance) // self.advance) * self.advance
        count = -(-self.size // self.advance)
        idx = np.repeat(np.arange(len(ts)), count)
        start = np.repeat(first, count) + np.tile(np.arange(count, dtype="int64") * self.advance, len(ts))
        keep = start <= ts[idx]
        return idx[keep], start[keep], start[keep] + self.size
