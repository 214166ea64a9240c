"""`streamframe demo`: synthetic trades into a real Kafka, StreamFrame pipelines over them, live in
the terminal.

Two live queries over the same topic: big trades (qty > 100) with their notional, written to a topic
(a `peek` hands each batch to the view's running totals), and a 10-second VWAP per symbol — a
tumbling-window aggregation in event time whose table the view reads from the query's live state.
"""

from __future__ import annotations

import threading
import time

import pandas as pd
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

import streamframe as sf
from streamframe.connectors.generator import RateProducer


class _View:
    def __init__(self):
        self.lock = threading.Lock()
        self.latest = pd.DataFrame()
        self.totals = pd.DataFrame(columns=["trades", "qty", "notional"])

    def update(self, batch: pd.DataFrame) -> None:
        per_symbol = batch.groupby("symbol").agg(trades=("qty", "size"), qty=("qty", "sum"),
                                                 notional=("notional", "sum"))
        with self.lock:
            self.totals = self.totals.add(per_symbol, fill_value=0)
            self.latest = batch.tail(5)

    def render(self, query, producer, started: float, vwap_query=None):
        m = query.metrics
        status = Text.assemble(
            (f" {m['status']} ", "bold white on green" if m["status"] == "running" else "bold white on red"),
            f"  {time.monotonic() - started:5.1f}s  produced {producer.produced:,}  in {m['records_in']:,}"
            f"  out {m['records_out']:,}  {m['records_per_s']:,.0f} rec/s  lag {m['lag']:,}"
            f"  errors {m['errors']}  dead letters {m['dead_letters']}",
        )
        table = Table(title="big trades (qty > 100) by symbol, running totals", expand=False)
        for col, justify in (
            ("symbol", "left"),
            ("trades", "right"),
            ("qty", "right"),
            ("notional", "right"),
        ):
            table.add_column(col, justify=justify)
        with self.lock:
            top = self.totals.sort_values("notional", ascending=False).head(8)
            latest = self.latest.copy()
        for symbol, row in top.iterrows():
            table.add_row(str(symbol), f"{int(row.trades):,}", f"{int(row.qty):,}", f"{row.notional:,.2f}")
        last = Table(title="latest big trades, joined with the companies table", expand=False)
        for col in ("trade_id", "symbol", "sector", "side", "qty", "price", "notional"):
            last.add_column(col, justify="left" if col in ("symbol", "sector", "side") else "right")
        for _, r in latest.iterrows():
            last.add_row(
                str(r.trade_id),
                r.symbol,
                str(r.get("sector", "")),
                r.side,
                str(r.qty),
                f"{r.price:.2f}",
                f"{r.notional:,.2f}",
            )
        parts = [status, table, last]
        if vwap_query is not None:
            parts.append(_vwap_table(vwap_query))
        return Group(*parts)


def _vwap_table(query) -> Table:
    m = query.metrics
    snap = query.sink.result()
    title = (
        f"10-second VWAP per symbol (tumbling windows, event time; {m['records_in']:,} in, "
        f"late drops {m['late_drops']})"
    )
    table = Table(title=title, expand=False)
    for col in ("symbol", "window", "trades", "volume", "VWAP"):
        table.add_column(col, justify="left" if col in ("symbol", "window") else "right")
    if snap.empty:
        return table
    latest = snap.reset_index().sort_values("window_start").groupby("symbol").tail(1)
    latest = latest.sort_values("notional", ascending=False).head(8)
    for r in latest.itertuples():
        window = f"{r.window_start:%H:%M:%S}–{r.window_end:%H:%M:%S}"
        table.add_row(r.symbol, window, f"{r.trades:,}", f"{r.volume:,}", f"{r.notional / r.volume:,.2f}")
    return table


SECTORS = {
    "AAPL": "tech",
    "MSFT": "tech",
    "NVDA": "semis",
    "AMZN": "retail",
    "GOOG": "tech",
    "META": "media",
    "TSLA": "autos",
    "AVGO": "semis",
    "JPM": "banks",
    "V": "payments",
    "XOM": "energy",
    "UNH": "health",
    "MA": "payments",
    "HD": "retail",
    "PG": "staples",
    "COST": "retail",
    "NFLX": "media",
    "AMD": "semis",
    "CRM": "software",
    "ORCL": "software",
}


def _write_reference(conn, topic: str) -> None:
    """The companies table: one record per symbol, keyed by it, stamped before any trade."""
    from streamframe.kafka.writer import Output, TopicWriter
    from streamframe.serde import value_format

    conn.ensure_topic(topic, partitions=4)  # co-partitioned with the trades
    rows = pd.DataFrame({"symbol": list(SECTORS), "sector": list(SECTORS.values())})
    rows["_timestamp"] = pd.Timestamp.now(tz="UTC") - pd.Timedelta("1h")
    output = Output(conn)
    TopicWriter(output, topic, value_format("json"), key="symbol").write(rows)
    output.flush()


def run_demo(duration: float = 20.0, rate: float = 2000.0) -> int:
    console = Console()
    conn = sf.connect(app_id="streamframe-demo")
    console.print(
        f"[bold]streamframe demo[/] — Kafka at {conn.bootstrap}; {rate:,.0f} trades/s for {duration:g}s"
    )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    source, sink = f"demo.trades.{stamp}", f"demo.big-trades.{stamp}"
    conn.ensure_topic(source, partitions=4)
    reference = f"demo.companies.{stamp}"
    _write_reference(conn, reference)

    trades = sf.stream(source, value="json", timestamp="ts")
    companies = sf.table(reference, key="symbol")  # a changelog table, joined as of each trade's time
    view = _View()
    big = (
        trades[trades.qty > 100]
        .assign(notional=(trades.qty * trades.price).round(2))
        .join(companies, on="symbol", how="left")
        .peek(view.update)
    )
    console.print(big.explain())
    vwap = (
        trades.assign(notional=trades.qty * trades.price)
        .groupby("symbol")
        .window(tumbling="10s", grace="2s")
        .agg(trades=("qty", "count"), volume=("qty", "sum"), notional=("notional", "sum"))
    )
    console.print(vwap.explain())
    producer = RateProducer(conn, source, rate=rate, duration=duration, jitter_ms=500).start()
    query = big.to_topic(sink, name=f"demo-{stamp}")
    vwap_query = vwap.start(name=f"demo-vwap-{stamp}", state="memory")
    started = time.monotonic()
    with Live(
        view.render(query, producer, started, vwap_query), console=console, refresh_per_second=4
    ) as live:
        while time.monotonic() - started < duration + 15:
            live.update(view.render(query, producer, started, vwap_query))
            drained = not producer._thread.is_alive() and all(
                q.metrics["records_in"] >= producer.produced for q in (query, vwap_query)
            )
            if any(q.status == "failed" for q in (query, vwap_query)) or producer.error or drained:
                break
            time.sleep(0.25)
        query.stop()
        vwap_query.stop()
        live.update(view.render(query, producer, started, vwap_query))
    if producer.error:
        console.print(f"[red]generator failed:[/] {producer.error}")
        return 1
    for q in (query, vwap_query):
        if q.status == "failed":
            console.print(f"[red]query {q.name} failed:[/] {q.exception}")
            return 1
    m = query.metrics
    console.print(
        f"done: {m['records_in']:,} records read (trades and companies), "
        f"{m['records_out']:,} big trades written to {sink!r}, "
        f"{m['errors']} errors; {len(vwap_query.sink.result()):,} VWAP windows "
        f"({vwap_query.metrics['late_drops']} late records dropped)."
    )
    console.print(
        f"The broker keeps running at {conn.bootstrap} (`streamframe local status`; "
        "`streamframe local stop` stops it)."
    )
    return 0
