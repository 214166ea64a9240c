"""Helpers for the broker-free unit suite: drive a frame with TestDriver and build pandas oracles.

`drive(frame, rows, ...)` pipes one batch of records and returns the driver; `as_input(rows, ...)` is
the same records as a plain pandas DataFrame with the metadata columns a topic's records carry, so a
test can compute the expected result with pandas on the whole input and compare. `offline_shell` is
IPython's real InteractiveShell where any attempt to reach Kafka fails the test.
"""

from __future__ import annotations

import pandas as pd
import pytest

from streamframe.testing import TestDriver


def _drive(frame, rows, topic: str = "in", **pipe_kwargs) -> TestDriver:
    driver = TestDriver(frame)
    driver.pipe(topic, rows, **pipe_kwargs)
    return driver


def _as_input(rows, keys=None, timestamps=None, partition: int = 0, headers=None, first_offset: int = 0):
    n = len(rows)
    frame = pd.DataFrame(rows) if n else pd.DataFrame(index=pd.RangeIndex(0))
    frame["_key"] = pd.Series(list(keys) if keys is not None else [None] * n, dtype=object)
    stamps = list(timestamps) if timestamps is not None else list(range(1, n + 1))
    frame["_timestamp"] = pd.to_datetime(stamps, unit="ms", utc=True).astype("datetime64[ms, UTC]")
    frame["_partition"] = pd.Series([partition] * n, dtype="int32")
    frame["_offset"] = pd.Series(range(first_offset, first_offset + n), dtype="int64")
    frame["_headers"] = pd.Series(list(headers) if headers is not None else [None] * n, dtype=object)
    return frame


@pytest.fixture
def drive():
    """drive(frame, rows, topic="in", keys=, timestamps=, partition=, headers=) -> TestDriver."""
    return _drive


@pytest.fixture
def as_input():
    """as_input(rows, keys=, timestamps=, partition=, headers=) -> DataFrame with metadata columns."""
    return _as_input


@pytest.fixture
def offline_shell(monkeypatch):
    """The real InteractiveShell; a test that tries to connect to Kafka fails."""
    from IPython.core.interactiveshell import InteractiveShell

    from streamframe import session

    def no_broker(*args, **kwargs):
        raise AssertionError("a unit test tried to connect to Kafka")

    monkeypatch.setattr(session, "connection", no_broker)
    monkeypatch.setattr(session, "connect", no_broker)
    return InteractiveShell.instance()
