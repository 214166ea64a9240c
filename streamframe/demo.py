"""`streamframe demo`: synthetic trades into a real Kafka, a StreamFrame pipeline over them, live in
the terminal.

The pipeline is the README's: big trades (qty > 100) with their notional, written to a topic by a live
query. A `peek` hands each output batch to the terminal view, which shows the query's own metrics and
the busiest symbols so far.
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

    def render(self, query, producer, started: float):
        m = query.metrics
        status = Text.assemble(
            (f" {m['status']} ", "bold white on green" if m["status"] == "running" else "bold white on red"),
            f"  {time.monotonic() - started:5.1f}s  produced {producer.produced:,}  in {m['records_in']:,}"
            f"  out {m['records_out']:,}  {m['records_per_s']:,.0f} rec/s  lag {m['lag']:,}"
            f"  errors {m['errors']}  dead letters {m['dead_letters']}",
        )
        table = Table(title="big trades (qty > 100) by symbol, running totals", expand=False)
        for col, justify in (("symbol", "left"), ("trades", "right"), ("qty", "right"), ("notional", "right")):
            table.add_column(col, justify=justify)
        with self.lock:
            top = self.totals.sort_values("notional", ascending=False).head(8)
            latest = self.latest.copy()
        for symbol, row in top.iterrows():
            table.add_row(str(symbol), f"{int(row.trades):,}", f"{int(row.qty):,}", f"{row.notional:,.2f}")
        last = Table(title="latest big trades", expand=False)
        for col in ("trade_id", "symbol", "side", "qty", "price", "notional"):
            last.add_column(col, justify="left" if col in ("symbol", "side") else "right")
        for _, r in latest.iterrows():
            last.add_row(str(r.trade_id), r.symbol, r.side, str(r.qty), f"{r.price:.2f}", f"{r.notional:,.2f}")
        return Group(status, table, last)


def run_demo(duration: float = 20.0, rate: float = 2000.0) -> int:
    console = Console()
    conn = sf.connect(app_id="streamframe-demo")
    console.print(f"[bold]streamframe demo[/] — Kafka at {conn.bootstrap}; {rate:,.0f} trades/s for {duration:g}s")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    source, sink = f"demo.trades.{stamp}", f"demo.big-trades.{stamp}"
    conn.ensure_topic(source, partitions=4)

    trades = sf.stream(source, value="json", timestamp="ts")
    view = _View()
    big = (trades[trades.qty > 100]
           .assign(notional=(trades.qty * trades.price).round(2))
           .peek(view.update))
    console.print(big.explain())
    producer = RateProducer(conn, source, rate=rate, duration=duration).start()
    query = big.to_topic(sink, name=f"demo-{stamp}")
    started = time.monotonic()
    with Live(view.render(query, producer, started), console=console, refresh_per_second=4) as live:
        while time.monotonic() - started < duration + 15:
            live.update(view.render(query, producer, started))
            drained = not producer._thread.is_alive() and query.metrics["records_in"] >= producer.produced
            if query.status == "failed" or producer.error or drained:
                break
            time.sleep(0.25)
        query.stop()
        live.update(view.render(query, producer, started))
    if producer.error:
        console.print(f"[red]generator failed:[/] {producer.error}")
        return 1
    if query.status == "failed":
        console.print(f"[red]query failed:[/] {query.exception}")
        return 1
    m = query.metrics
    console.print(f"done: {m['records_in']:,} trades read, {m['records_out']:,} big trades written to {sink!r}, "
                  f"{m['errors']} errors.")
    console.print(f"The broker keeps running at {conn.bootstrap} (`streamframe local status`; "
                  "`streamframe local stop` stops it).")
    return 0
