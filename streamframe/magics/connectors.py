"""`%kafka_source`, `%kafka_sink`, `%connectors`, `%connector_stop`: the kernel's in-kernel connectors,
configured the Kafka Connect way (`name`, `connector.class`, `tasks.max`, `topic`/`topics`, own keys).

    %kafka_source feed connector.class=generator schema=trades topic=trades rate=2000 count=100000
    %kafka_sink vwap_db connector.class=sqlite topics=vwap-1m db=out.db table=vwap pk=symbol,window_start
    %%kafka_source orders-in                       # or a .properties body, one key=value per line
    connector.class=file
    file=orders.csv
    topic=orders
    %connectors                                    # name, class, state, records, progress, last error
    %connectors --wait                             # until the bounded loads finish
    %connector_stop feed --delete                  # stop, and free the name
"""

from __future__ import annotations

import threading
import time

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from streamframe.connectors.config import COMMON_KEYS, parse_pairs, parse_properties
from streamframe.connectors.registry import CLASSES, SHORT_NAMES, ConnectorRegistry, default_registry
from streamframe.magics.common import StreamframeMagics, command

CLASSES_HELP = f"connector.class: {', '.join(SHORT_NAMES)} (their settings: %%connectors --classes)"
BAR_STYLE = {"FINISHED": "success", "FAILED": "danger", "STOPPED": "warning", "PAUSED": "warning"}


def classes_frame() -> pd.DataFrame:
    """class, type, setting, description: the reference of the built-in connectors."""
    rows = [{"class": name, "type": kind, "setting": key, "description": text}
            for (name, kind), cls in sorted(CLASSES.items())
            for key, text in {**COMMON_KEYS, **cls.settings_help()}.items()]
    return pd.DataFrame(rows, columns=["class", "type", "setting", "description"])


class ProgressView:
    """Progress bars (ipywidgets) of bounded connector loads, refreshed off the kernel's main thread."""

    def __init__(self, connectors, interval: float = 0.25):
        import ipywidgets as widgets

        self.interval = interval
        self.rows = []
        for c in connectors:
            bar = widgets.IntProgress(value=0, min=0, max=1, description=c.name, bar_style="info")
            label = widgets.Label()
            self.rows.append((c, bar, label))
        self.widget = widgets.VBox([widgets.HBox([bar, label]) for _, bar, label in self.rows])
        self.refresh()

    def refresh(self) -> bool:
        """Bring the bars up to date; True while a connector still runs."""
        for c, bar, label in self.rows:
            total = c.total or 0
            with bar.hold_sync():
                bar.max = max(1, total)
                bar.value = min(c.records, bar.max) if total else (bar.max if c.state == "FINISHED" else 0)
                bar.bar_style = BAR_STYLE.get(c.state, "info")
            text = f"{c.records:,} / {total:,} {c.state}" if total else f"{c.records:,} {c.state}"
            label.value = f"{text}: {c.last_error}" if c.state == "FAILED" and c.last_error else text
        return any(c.state in ("RUNNING", "PAUSED") for c, _, _ in self.rows)

    def start(self) -> ProgressView:
        def loop():
            while self.refresh():
                time.sleep(self.interval)

        threading.Thread(target=loop, name="connector-progress", daemon=True).start()
        return self

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


@magics_class
class ConnectorMagics(StreamframeMagics):
    def __init__(self, shell=None, options=None, registry: ConnectorRegistry | None = None, **kwargs):
        super().__init__(shell=shell, options=options, **kwargs)
        self._registry = registry

    @property
    def registry(self) -> ConnectorRegistry:
        reg = self._registry or default_registry()
        if self.shell is not None:  # pandas connectors find and publish DataFrames in the notebook
            reg.context.namespace = self.shell.user_ns
        return reg

    @line_cell_magic
    @command
    @magic_arguments()
    @argument("name", help="the connector's name (unique in the kernel)")
    @argument("settings", nargs="*", metavar="KEY=VALUE",
              help=f"connector.class=... topic=... and the connector's own settings; {CLASSES_HELP}. "
                   "As a cell magic, the cell holds more settings, one key=value per line")
    def kafka_source(self, args, cell=None):
        """Start an in-kernel source connector: file, pandas, sqlite, generator or topic (copy)."""
        return self._create(args, cell, "source")

    @line_cell_magic
    @command
    @magic_arguments()
    @argument("name", help="the connector's name (unique in the kernel)")
    @argument("settings", nargs="*", metavar="KEY=VALUE",
              help=f"connector.class=... topics=... and the connector's own settings; {CLASSES_HELP}. "
                   "As a cell magic, the cell holds more settings, one key=value per line")
    def kafka_sink(self, args, cell=None):
        """Start an in-kernel sink connector: file, pandas, sqlite or topic (copy)."""
        return self._create(args, cell, "sink")

    def _create(self, args, cell, kind: str) -> None:
        config = parse_properties(cell) if cell else {}
        config.update(parse_pairs(args.settings))
        if config.setdefault("name", args.name) != args.name:
            raise UsageError(f"name={config['name']} differs from the connector name {args.name!r}")
        connector = self.registry.create(config, kind)
        topics = connector.status()["topics"]
        route = {"source": f"→ {topics}", "sink": f"← {topics}"}.get(connector.kind, topics)
        size = f" ({connector.total:,} records)" if connector.total is not None else ""
        print(f"{connector.short_name} {connector.kind} {args.name!r} {route}{size}: {connector.state}")
        if connector.bounded and self.options.progress and self.live:
            from IPython.display import display

            display(ProgressView([connector]).start())

    @line_magic
    @command
    @magic_arguments()
    @argument("name", nargs="?", help="one connector: its status and its settings (secrets masked)")
    @argument("--wait", action="store_true",
              help="block until the named connector, or every bounded load, has finished")
    @argument("--timeout", type=float, default=None, help="--wait: give up after this many seconds")
    @argument("--classes", action="store_true", help="the connector classes and every setting they take")
    def connectors(self, args, cell=None):
        """The kernel's connectors: class, state, records moved, progress of bounded loads, last error."""
        if args.classes:
            return classes_frame()
        reg = self.registry
        chosen = [reg.get(args.name)] if args.name else [c for c in reg if c.bounded]
        if args.timeout is not None and not args.wait:
            raise UsageError("--timeout goes with --wait")
        if args.wait:
            self._wait(chosen, args.timeout)
        if args.name:
            connector = chosen[0]
            rows = {**connector.status(), **{f"config {k}": v for k, v in connector.config().items()}}
            return pd.DataFrame({"value": pd.Series(rows, dtype=object)})
        running = [c for c in chosen if c.state in ("RUNNING", "PAUSED")]
        if running and self.options.progress and self.live:
            from IPython.display import display

            display(ProgressView(chosen).start())
        return reg.status()

    def _wait(self, connectors, timeout) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for c in connectors:
            while c.alive:
                if deadline is not None and time.monotonic() >= deadline:
                    raise UsageError(f"connector {c.name!r} still {c.state} after {timeout:g} s "
                                     f"({c.records:,} records)")
                c.wait(0.2)

    @line_magic
    @command
    @magic_arguments()
    @argument("name", nargs="?", help="the connector to stop")
    @argument("--all", action="store_true", help="stop every connector")
    @argument("--delete", action="store_true", help="also remove it, so its name can be used again")
    def connector_stop(self, args, cell=None):
        """Stop a connector (what it read is written and committed first); --delete also removes it."""
        if bool(args.name) == bool(args.all):
            raise UsageError("name one connector, or use --all")
        reg = self.registry
        names = [args.name] if args.name else [c.name for c in reg]
        timeout = self.options.stop_timeout
        for name in names:
            c = reg.stop(name, delete=args.delete, timeout=timeout)
            gone = ", deleted" if args.delete else ""
            error = f": {c.last_error}" if c.state == "FAILED" and c.last_error else ""
            print(f"connector {name!r} {c.state}{gone} after {c.records:,} records{error}")
        if not names:
            print("no connectors")
