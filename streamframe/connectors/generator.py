"""Realistic synthetic data, generated vectorized with NumPy, and the generator source connector.

Four schemas: `trades` (symbol, side, qty, price), `clicks` (user, page, referrer, device, country),
`orders` (customer, product, category, quantity, amount, status) and `iot` (device, site, temperature,
humidity, battery). Keys (symbols, users, customers, devices) follow a Zipf-like skew; event times `ts`
(epoch ms) advance at the chosen rate, with optional out-of-order jitter.

    >>> df = trades(5, seed=1, start_ms=1_700_000_000_000)
    >>> list(df.columns)
    ['trade_id', 'symbol', 'side', 'qty', 'price', 'ts']
    >>> generate("iot", 3, seed=1, start_ms=0, rate=10)["ts"].tolist()
    [0, 100, 200]

`%kafka_source feed connector.class=generator schema=clicks topic=clicks rate=500 count=10000 skew=1.2`
runs the same generator as a connector: `count=` or `duration=` bound it (with a progress total), the
same settings and `seed=` give the same records, and records are keyed by the schema's key column.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from streamframe.connectors.base import Context
from streamframe.connectors.config import Settings
from streamframe.connectors.source import SourceConnector
from streamframe.errors import ConfigError

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AVGO", "JPM", "V",
           "XOM", "UNH", "MA", "HD", "PG", "COST", "NFLX", "AMD", "CRM", "ORCL"]
BASE_PRICE = np.linspace(420.0, 35.0, len(SYMBOLS))
PAGES = np.array(["/", "/search", "/product", "/product", "/product", "/cart", "/checkout", "/account",
                  "/help"])
REFERRERS, REFERRER_P = (np.array(["direct", "google", "newsletter", "social", "partner"]),
                         [0.35, 0.4, 0.1, 0.1, 0.05])
DEVICES, DEVICE_P = np.array(["mobile", "desktop", "tablet"]), [0.55, 0.38, 0.07]
COUNTRIES = np.array(["US", "DE", "GB", "IN", "BR", "FR", "JP", "CA"])
COUNTRY_P = [0.34, 0.12, 0.11, 0.13, 0.09, 0.08, 0.07, 0.06]
CATEGORIES = np.array(["books", "electronics", "garden", "kitchen", "toys", "sports", "beauty", "grocery"])
STATUSES, STATUS_P = np.array(["created", "paid", "shipped", "cancelled"]), [0.4, 0.35, 0.2, 0.05]
PRODUCTS = 200
UNIT_PRICE = np.round(np.random.default_rng(2024).lognormal(3.0, 0.8, PRODUCTS), 2)  # a fixed catalog
SITES = np.array(["plant-a", "plant-b", "plant-c", "plant-d", "plant-e"])


def _skewed(rng, n: int, cardinality: int, skew: float) -> np.ndarray:
    """Indexes 0..cardinality-1, index i drawn with weight 1/(i+1)**skew (0 = uniform)."""
    weights = 1.0 / np.arange(1, cardinality + 1) ** skew
    return rng.choice(cardinality, size=n, p=weights / weights.sum())


def _event_times(rng, n: int, start_ms: int | None, rate: float, jitter_ms: int,
                 first_id: int = 0) -> np.ndarray:
    start = int(time.time() * 1000) if start_ms is None else start_ms
    step = 1000.0 / rate if rate > 0 else 1.0
    ts = start + (np.arange(n) * step).astype("int64")
    if jitter_ms:
        ts = ts - rng.integers(0, jitter_ms + 1, size=n)
    return ts


def trades(n: int, *, seed=None, start_ms: int | None = None, rate: float = 1000.0,
           skew: float = 1.1, jitter_ms: int = 0, first_id: int = 0,
           symbols: int = len(SYMBOLS)) -> pd.DataFrame:
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


def clicks(n: int, *, seed=None, start_ms: int | None = None, rate: float = 1000.0, skew: float = 1.1,
           jitter_ms: int = 0, first_id: int = 0, users: int = 1000) -> pd.DataFrame:
    """`n` page views of a web shop: a few users click a lot (`skew`), product pages dominate."""
    rng = np.random.default_rng(seed)
    user = _skewed(rng, n, users, skew)
    page = PAGES[rng.integers(0, len(PAGES), n)].astype(object)
    product = _skewed(rng, n, PRODUCTS, 1.0)
    is_product = page == "/product"
    page[is_product] = [f"/product/{p}" for p in product[is_product]]
    ts = _event_times(rng, n, start_ms, rate, jitter_ms)
    return pd.DataFrame({
        "click_id": np.arange(first_id, first_id + n, dtype="int64"),
        "user_id": np.char.add("u", np.char.zfill(user.astype(str), 5)),
        "page": page.astype(str),
        "referrer": rng.choice(REFERRERS, n, p=REFERRER_P),
        "device": rng.choice(DEVICES, n, p=DEVICE_P),
        "country": rng.choice(COUNTRIES, n, p=COUNTRY_P),
        "ts": ts,
    })


def orders(n: int, *, seed=None, start_ms: int | None = None, rate: float = 1000.0, skew: float = 1.1,
           jitter_ms: int = 0, first_id: int = 0, customers: int = 500) -> pd.DataFrame:
    """`n` orders: skewed customers and products, a fixed catalog of unit prices, an order status."""
    rng = np.random.default_rng(seed)
    customer = _skewed(rng, n, customers, skew)
    product = _skewed(rng, n, PRODUCTS, 1.0)
    quantity = rng.geometric(0.55, n).astype("int64")
    ts = _event_times(rng, n, start_ms, rate, jitter_ms)
    return pd.DataFrame({
        "order_id": np.arange(first_id, first_id + n, dtype="int64"),
        "customer_id": np.char.add("c", np.char.zfill(customer.astype(str), 5)),
        "product": np.char.add("SKU-", np.char.zfill(product.astype(str), 4)),
        "category": CATEGORIES[product % len(CATEGORIES)],
        "quantity": quantity,
        "unit_price": UNIT_PRICE[product],
        "amount": np.round(quantity * UNIT_PRICE[product], 2),
        "status": rng.choice(STATUSES, n, p=STATUS_P),
        "ts": ts,
    })


def iot(n: int, *, seed=None, start_ms: int | None = None, rate: float = 1000.0, skew: float = 0.0,
        jitter_ms: int = 0, first_id: int = 0, devices: int = 50) -> pd.DataFrame:
    """`n` sensor readings: each device has its own base temperature with a daily cycle and noise;
    batteries drain slowly. Devices report evenly unless `skew` > 0."""
    rng = np.random.default_rng(seed)
    device = _skewed(rng, n, devices, skew)
    ts = _event_times(rng, n, start_ms, rate, jitter_ms)
    day = np.sin(2 * np.pi * (ts % 86_400_000) / 86_400_000)
    ids = np.arange(first_id, first_id + n, dtype="int64")
    return pd.DataFrame({
        "reading_id": ids,
        "device_id": np.char.add("sensor-", np.char.zfill(device.astype(str), 3)),
        "site": SITES[device % len(SITES)],
        "temperature": np.round(18.0 + (device % 10) + 3.0 * day + rng.normal(0, 0.4, n), 2),
        "humidity": np.round(np.clip(45.0 + rng.normal(0, 8, n), 5, 100), 1),
        "battery": np.round(np.clip(100.0 - (ids // max(devices, 1)) * 0.01 - (device % 7), 0, 100), 2),
        "ts": ts,
    })


SCHEMAS = {"trades": trades, "clicks": clicks, "orders": orders, "iot": iot}
KEY_COLUMN = {"trades": "symbol", "clicks": "user_id", "orders": "customer_id", "iot": "device_id"}
CARDINALITY = {"trades": "symbols", "clicks": "users", "orders": "customers", "iot": "devices"}
DEFAULT_SKEW = {"trades": 1.1, "clicks": 1.1, "orders": 1.1, "iot": 0.0}


class SyntheticData:
    """An endless, reproducible sequence of one schema's records: `take(n)` returns the next `n`.

    Records are made in fixed blocks, each from its own seed, so the sequence does not depend on how it
    is taken (100 at a time or all at once) and event times follow the record number exactly.
    """

    BLOCK = 4096

    def __init__(self, schema: str = "trades", *, seed: int = 0, start_ms: int | None = None,
                 rate: float = 1000.0, skew: float | None = None, jitter_ms: int = 0,
                 keys: int | None = None):
        if schema not in SCHEMAS:
            raise ConfigError(f"unknown schema {schema!r}; use one of: {', '.join(SCHEMAS)}")
        self.schema, self.seed, self.rate, self.jitter_ms = schema, seed, rate, jitter_ms
        self.skew = DEFAULT_SKEW[schema] if skew is None else skew
        self.start_ms = int(time.time() * 1000) if start_ms is None else int(start_ms)
        self.options = {} if keys is None else {CARDINALITY[schema]: keys}
        self.position = 0
        self._block: pd.DataFrame | None = None
        self._block_no = -1

    def _make_block(self, b: int) -> pd.DataFrame:
        step = 1000.0 / self.rate if self.rate > 0 else 1.0
        first = b * self.BLOCK
        frame = SCHEMAS[self.schema](self.BLOCK, seed=np.random.SeedSequence([self.seed, b]),
                                     start_ms=self.start_ms + int(first * step), rate=1000.0 / step,
                                     skew=self.skew, jitter_ms=0, first_id=first, **self.options)
        # event times by record number (not per block), so they do not depend on the block size
        ts = self.start_ms + ((first + np.arange(self.BLOCK)) * step).astype("int64")
        if self.jitter_ms:
            ts = ts - np.random.default_rng([self.seed, b, 1]).integers(0, self.jitter_ms + 1,
                                                                        size=self.BLOCK)
        frame["ts"] = np.maximum(ts, 0)
        return frame

    def take(self, n: int) -> pd.DataFrame:
        parts = []
        while n > 0:
            b, offset = divmod(self.position, self.BLOCK)
            if b != self._block_no:
                self._block, self._block_no = self._make_block(b), b
            part = self._block.iloc[offset:offset + n]
            parts.append(part)
            n -= len(part)
            self.position += len(part)
        if not parts:
            return self._make_block(0).iloc[:0].reset_index(drop=True)
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)


def generate(schema: str, n: int, *, seed: int = 0, start_ms: int | None = None, rate: float = 1000.0,
             skew: float | None = None, jitter_ms: int = 0, keys: int | None = None) -> pd.DataFrame:
    """The first `n` records the generator connector with the same settings produces."""
    return SyntheticData(schema, seed=seed, start_ms=start_ms, rate=rate, skew=skew, jitter_ms=jitter_ms,
                         keys=keys).take(n)


class GeneratorSource(SourceConnector):
    """`connector.class=generator`: synthetic records to a topic at a steady rate."""

    short_name = "generator"
    default_timestamp = "ts"
    KEYS = {
        "schema": "trades (default), clicks, orders or iot",
        "rate": "records per second (default 1000; 0 = as fast as possible)",
        "count": "stop after this many records (a bounded load)",
        "duration": "stop after this long: seconds, or e.g. 30s, 5min",
        "skew": "Zipf exponent of key popularity (0 = uniform; default 1.1, iot 0)",
        "jitter.ms": "move each event time back by up to this much (out-of-order data; default 0)",
        "seed": "random seed (default 0): the same settings give the same records",
        "keys": "how many distinct keys (symbols, users, customers, devices)",
        "start.ms": "event time of the first record, epoch ms (default: now)",
    }
    tick = 0.05

    def configure(self, s: Settings) -> None:
        self.schema = s.text("schema", "trades", choices=tuple(SCHEMAS))
        self.default_key = KEY_COLUMN[self.schema]
        super().configure(s)
        self.rate = s.number("rate", 1000.0, minimum=0)
        self.count = s.integer("count", None, minimum=0)
        self.duration = s.duration("duration")
        self.bounded = self.count is not None or self.duration is not None
        self.data = SyntheticData(self.schema, seed=s.integer("seed", 0), start_ms=s.integer("start.ms"),
                                  rate=self.rate, skew=s.number("skew", None, minimum=0),
                                  jitter_ms=s.integer("jitter.ms", 0, minimum=0),
                                  keys=s.integer("keys", None, minimum=1))
        if self.duration is not None and self.rate == 0 and self.count is None:
            self.total = None
        elif self.count is not None:
            self.total = self.count if self.duration is None or self.rate == 0 \
                else min(self.count, int(self.rate * self.duration))
        elif self.duration is not None:
            self.total = int(self.rate * self.duration)

    def batches(self):
        started, produced = time.monotonic(), 0
        limit = self.duration if self.duration is not None else float("inf")
        while not self.stopping:
            elapsed = time.monotonic() - started
            if self.count is not None and produced >= self.count:
                return
            last = elapsed >= limit  # time is up: top up to rate * duration, then end
            if last and self.rate == 0:
                return
            due = (int(self.rate * min(elapsed + self.tick, limit)) - produced if self.rate > 0
                   else self.batch_size)
            if self.count is not None:
                due = min(due, self.count - produced)
            due = min(due, self.batch_size)
            if due > 0:
                yield self.data.take(due)
                produced += due
            if last and due < self.batch_size:
                return
            if self.rate > 0 and due < self.batch_size:
                self.sleep(self.tick)


class RateProducer:
    """Produces generated records (trades by default) to a topic at a steady rate on a background thread,
    keyed by the schema's key (symbol for trades). The generator connector without a registry."""

    def __init__(self, connection, topic: str, rate: float, duration: float | None = None,
                 seed: int = 7, jitter_ms: int = 0, schema: str = "trades", count: int | None = None,
                 skew: float | None = None):
        self.topic, self.rate, self.duration = topic, rate, duration
        self.seed, self.jitter_ms = seed, jitter_ms
        config = {"connector.class": "generator", "topic": topic, "schema": schema, "rate": rate,
                  "seed": seed, "jitter.ms": jitter_ms}
        config.update({k: v for k, v in (("duration", duration), ("count", count), ("skew", skew))
                       if v is not None})
        self.source = GeneratorSource(f"generator-{topic}", Settings(config),
                                      Context(connection=lambda: connection))

    @property
    def produced(self) -> int:
        return self.source.records

    @property
    def error(self) -> str | None:
        return self.source.last_error

    @property
    def _thread(self):
        return self.source._thread

    def start(self) -> RateProducer:
        self.source.start()
        return self

    def stop(self) -> None:
        self.source.stop()

    def join(self, timeout=None) -> None:
        self.source.wait(timeout)
