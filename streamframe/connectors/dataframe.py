"""pandas connectors (`connector.class=pandas`): a DataFrame of the notebook into a topic, and a topic
into a DataFrame variable of the notebook that is refreshed as records arrive.

    %kafka_source load connector.class=pandas df=orders_df topic=orders key=customer_id
    %kafka_sink live connector.class=pandas topics=orders var=orders_live pk=order_id
    orders_live          # the latest rows (a new DataFrame object at each refresh)
"""

from __future__ import annotations

import threading
import time

import pandas as pd

from streamframe.connectors.config import Settings
from streamframe.connectors.sink import SinkConnector
from streamframe.connectors.source import SourceConnector
from streamframe.errors import ConfigError, ConnectorError


class PandasSource(SourceConnector):
    """The rows of a DataFrame (a variable of the notebook, `df=NAME`) to a topic, in order."""

    short_name = "pandas"
    bounded = True
    KEYS = {
        "df": "the name of a DataFrame variable in the notebook",
        "rate": "rows per second (default 0: as fast as possible)",
    }

    def configure(self, s: Settings) -> None:
        super().configure(s)
        self.variable = s.require("df", "the name of a DataFrame variable")
        self.rate = s.number("rate", 0.0, minimum=0)

    def prepare(self) -> None:
        frame = self.context.namespace.get(self.variable)
        if not isinstance(frame, pd.DataFrame):
            found = "nothing" if frame is None else f"a {type(frame).__name__}"
            raise ConfigError(
                f"df={self.variable}: expected a DataFrame variable in the notebook, found {found}"
            )
        # a named index is data (e.g. after a groupby): keep it as columns
        named = any(n is not None for n in frame.index.names)
        self.frame = frame.reset_index() if named else frame.reset_index(drop=True)
        self.total = len(self.frame)
        super().prepare()

    def batches(self):
        started, step = time.monotonic(), self.batch_size
        if self.rate:
            step = max(1, min(step, int(self.rate / 10)))  # about ten batches a second
        for lo in range(0, len(self.frame), step):
            if self.rate:
                ahead = lo / self.rate - (time.monotonic() - started)
                if ahead > 0 and not self.sleep(ahead):
                    return
            if self.stopping:
                return
            yield self.frame.iloc[lo:lo + step]


class PandasSink(SinkConnector):
    """A topic's records into a DataFrame variable of the notebook, replaced by a fresh DataFrame at each
    batch: the latest `max.rows` rows, or with `pk=` the latest row per key (a table)."""

    short_name = "pandas"
    KEYS = {
        "var": "the name of the notebook variable to keep up to date",
        "pk": "column(s) identifying a row: keep only the latest row per key (comma-separated)",
        "max.rows": "keep at most this many (latest) rows (default 100000)",
    }

    def configure(self, s: Settings) -> None:
        super().configure(s)
        self.variable = s.require("var", "the name of the variable to fill")
        if not self.variable.isidentifier():
            raise ConfigError(f"var={self.variable!r} is not a valid Python variable name")
        self.pk = s.items("pk")
        self.max_rows = s.integer("max.rows", 100_000, minimum=1)
        self.frame = pd.DataFrame()
        self._lock = threading.Lock()

    def open_target(self) -> None:
        self.context.namespace[self.variable] = self.frame

    def write(self, frame: pd.DataFrame) -> None:
        missing = [k for k in self.pk if k not in frame.columns]
        if missing:
            raise ConnectorError(f"pk={','.join(self.pk)}: the records have no column {missing[0]!r} "
                                 f"(columns: {', '.join(map(str, frame.columns))})")
        with self._lock:
            current = self.frame
            combined = frame if current.empty else pd.concat([current, frame], ignore_index=True)
            if self.pk:
                combined = combined.drop_duplicates(self.pk, keep="last").reset_index(drop=True)
            if len(combined) > self.max_rows:
                combined = combined.iloc[-self.max_rows:].reset_index(drop=True)
            self.frame = combined
        self.context.namespace[self.variable] = combined
