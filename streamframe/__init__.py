"""streamframe: stream processing the way a pandas user thinks, against a live Apache Kafka.

    >>> import streamframe as sf                                # doctest: +SKIP
    >>> sf.connect()                                            # doctest: +SKIP
    >>> trades = sf.stream("trades", value="json", timestamp="ts")   # doctest: +SKIP
    >>> trades[trades.qty > 100].run()                          # doctest: +SKIP
"""

from streamframe import display as _display
from streamframe.errors import (
    AuthenticationError,
    AuthorizationError,
    BrokerUnreachableError,
    ConfigError,
    DeliveryError,
    DroppedRecordsWarning,
    QueryTimeoutError,
    RecordError,
    StateError,
    StreamframeError,
    StreamframeWarning,
    UnknownColumnError,
    UnknownTopicError,
)
from streamframe.frames.base import Frame as _Frame
from streamframe.frames.sources import concat, from_pandas, global_table, merge_asof, stream, table
from streamframe.frames.stream import StreamFrame
from streamframe.frames.table import TableFrame
from streamframe.kafka.connection import Connection
from streamframe.plan.expr import col
from streamframe.runtime.query import Query
from streamframe.session import connect, queries

_Frame.display = _display  # frames show as live views; the display room sits above them (pyproject.toml)

__version__ = "0.1.0"


def load_ipython_extension(ipython):
    """`%load_ext streamframe`: registers the magics and the live display of frames."""
    from streamframe.magics import load_ipython_extension as load

    load(ipython)

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "BrokerUnreachableError",
    "ConfigError",
    "Connection",
    "DeliveryError",
    "DroppedRecordsWarning",
    "Query",
    "QueryTimeoutError",
    "RecordError",
    "StateError",
    "StreamFrame",
    "StreamframeError",
    "StreamframeWarning",
    "TableFrame",
    "UnknownColumnError",
    "UnknownTopicError",
    "col",
    "concat",
    "connect",
    "from_pandas",
    "global_table",
    "merge_asof",
    "queries",
    "stream",
    "table",
]
