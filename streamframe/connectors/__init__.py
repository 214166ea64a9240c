"""In-kernel connectors: named sources and sinks configured the Kafka Connect way, each on its own thread.

    >>> from streamframe.connectors import default_registry
    >>> feed = default_registry().create({"name": "feed", "connector.class": "generator", "schema": "orders",
    ...                           "topic": "orders", "rate": "200", "count": "5000"})   # doctest: +SKIP
    >>> feed.state, feed.records, feed.total                                          # doctest: +SKIP
    ('RUNNING', 1200, 5000)

In a notebook the same is `%kafka_source feed connector.class=generator schema=orders topic=orders ...`;
`%connectors` shows them all. Classes: file, pandas, sqlite, generator (sources and sinks where it makes
sense) and topic (copy).

May import frames and every layer below (session, runtime, local, kafka, ...); not display, magics,
testing or cli, and no confluent_kafka (DESIGN §7, pyproject [tool.importlinter]).
"""

from streamframe.connectors.base import Connector, Context
from streamframe.connectors.generator import RateProducer, SyntheticData, generate
from streamframe.connectors.registry import ConnectorRegistry, default_registry, resolve
from streamframe.connectors.sink import SinkConnector
from streamframe.connectors.source import SourceConnector
from streamframe.errors import ConnectorError

__all__ = [
    "Connector",
    "ConnectorError",
    "ConnectorRegistry",
    "Context",
    "RateProducer",
    "SinkConnector",
    "SourceConnector",
    "SyntheticData",
    "default_registry",
    "generate",
    "resolve",
]
