"""A query's counters, for `query.metrics`, the live view and its status line."""

from __future__ import annotations

import time

import pandas as pd


class Metrics:
    """Counters of a query, safe to read from any thread."""

    def __init__(self):
        self.records_in = self.records_out = self.errors = self.dead_letters = self.skipped = self.batches = 0
        self.late_drops = 0
        self.lag = 0
        self.rate = 0.0
        self.stream_time: int | None = None
        self.last_error: str | None = None  # the latest reason a record was routed (dead letter, skip)
        self.unreachable_since: float | None = None  # monotonic time the broker stopped answering
        self.started = time.time()
        self._rate_mark = (time.monotonic(), 0)

    def tick(self) -> None:
        now, before = time.monotonic(), self._rate_mark
        if now - before[0] >= 1.0:
            self.rate = (self.records_in - before[1]) / (now - before[0])
            self._rate_mark = (now, self.records_in)

    def snapshot(self, status: str, last_error: str | None = None) -> dict:
        """The counters as a dict; `last_error`: the query's own failure, which wins over a record's."""
        ms = self.stream_time
        stream_time = None if ms is None else pd.Timestamp(ms, unit="ms", tz="UTC")
        down = self.unreachable_since
        return {
            "status": status,
            "broker": "ok" if down is None else "broker unreachable",
            "broker_unreachable_s": None if down is None else round(time.monotonic() - down, 1),
            "records_in": self.records_in,
            "records_out": self.records_out,
            "records_per_s": round(self.rate, 1),
            "lag": self.lag,
            "errors": self.errors,
            "dead_letters": self.dead_letters,
            "skipped": self.skipped,
            "late_drops": self.late_drops,
            "batches": self.batches,
            "stream_time": stream_time,
            "uptime_s": round(time.time() - self.started, 1),
            "last_error": last_error if last_error is not None else self.last_error,
        }
