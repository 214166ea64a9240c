"""Realistic synthetic data, generated vectorized with NumPy: trades for now (more schemas with the
connector magics). Symbols follow a Zipf-like skew, prices a random walk per symbol, quantities a
lognormal; event times advance at the chosen rate with optional out-of-order jitter.

    >>> df = trades(5, seed=1, start_ms=1_700_000_000_000)
    >>> list(df.columns)
    ['trade_id', 'symbol', 'side', 'qty', 'price', 'ts']
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AVGO", "JPM", "V",
           "XOM", "UNH", "MA", "HD", "PG", "COST", "NFLX", "AMD", "CRM", "ORCL"]
BASE_PRICE = np.linspace(420.0, 35.0, len(SYMBOLS))


def trades(n: int, *, seed: int | None = None, start_ms: int | None = None, rate: float = 1000.0,
           skew: float = 1.1, jitter_ms: int = 0, first_id: int = 0, symbols: int = len(SYMBOLS)) -> pd.DataFrame:
    """`n` trades. `rate` (per second) spaces event times; `jitter_ms` moves each time back by up to
    that much (out-of-order data); `skew` is the Zipf exponent of symbol popularity."""
    rng = np.random.default_rng(seed)
    names = np.array(SYMBOLS[:symbols] if symbols <= len(SYMBOLS) else [f"S{i:05d}" for i in range(symbols)])
    weights = 1.0 / np.arange(1, len(names) + 1) ** skew
    idx = rng.choice(len(names), size=n, p=weights / weights.sum())
    base = np.resize(BASE_PRICE, len(names))[idx]
    walk = 1.0 + 0.01 * rng.standard_normal(n)
    start = int(time.time() * 1000) if start_ms is None else start_ms
    ts = start + (np.arange(n) * (1000.0 / rate)).astype("int64")
    if jitter_ms:
        ts = ts - rng.integers(0, jitter_ms + 1, size=n)
    return pd.DataFrame({
        "trade_id": np.arange(first_id, first_id + n, dtype="int64"),
        "symbol": names[idx],
        "side": np.where(rng.random(n) < 0.5, "buy", "sell"),
        "qty": np.maximum(1, rng.lognormal(4.0, 1.0, n).astype("int64")),
        "price": np.round(base * walk, 2),
        "ts": ts,
    })


class RateProducer:
    """Produces generated trades to a topic at a steady rate on a background thread, keyed by symbol."""

    def __init__(self, connection, topic: str, rate: float, duration: float | None = None, seed: int = 7,
                 jitter_ms: int = 0):
        from streamframe.kafka.writer import Output, TopicWriter
        from streamframe.serde import value_format

        self.topic, self.rate, self.duration, self.seed, self.jitter_ms = topic, rate, duration, seed, jitter_ms
        self.output = Output(connection)
        self.writer = TopicWriter(self.output, topic, value_format("json"), key="symbol")
        self.produced = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"generator-{topic}", daemon=True)

    def start(self) -> RateProducer:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            rng_seed, t0, tick = self.seed, time.monotonic(), 0.1
            while not self._stop.is_set():
                elapsed = time.monotonic() - t0
                if self.duration is not None and elapsed >= self.duration:
                    break
                due = int(self.rate * min(elapsed + tick, self.duration or float("inf"))) - self.produced
                if due > 0:
                    batch = trades(due, seed=rng_seed, rate=self.rate, jitter_ms=self.jitter_ms,
                                   first_id=self.produced)
                    self.writer.write(batch.assign(_timestamp=pd.to_datetime(batch["ts"], unit="ms", utc=True)))
                    self.produced += due
                    rng_seed += 1
                self.output.poll()
                self._stop.wait(tick)
            self.output.flush()
        except BaseException as e:  # noqa: BLE001 - reported through .error
            self.error = e

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def join(self, timeout=None) -> None:
        self._thread.join(timeout)
