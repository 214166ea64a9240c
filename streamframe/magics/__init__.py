"""IPython magics of streamframe, one module per command family; `%load_ext streamframe` registers them.

    topics.py       %kafka_topics list|create|describe|delete
    produce.py      %%kafka_produce TOPIC
    tail.py         %kafka_tail TOPIC [-n N] [--follow]
    schemas.py      %schemas [SUBJECT]: the Schema Registry's subjects and versions
    connectors.py   %kafka_source, %kafka_sink, %connectors, %connector_stop
    queries.py      %sf_queries, %sf_stop
    connect.py      %%connect / %connect (a real Kafka Connect cluster, through its REST API)
    common.py       the options (%config KafkaMagics), the base class, --help and one-line UsageErrors

Every magic takes `--help`; bad arguments and expected failures (unknown topic, broker unreachable, bad
connector settings) end in one `UsageError` line, never a traceback; a flag a magic does not take is
named before any missing argument ("unrecognized arguments: --bogus"), the same way for every magic.

May import connectors and every layer below; not display, testing or cli, and no confluent_kafka
(DESIGN §7, pyproject [tool.importlinter]).
"""

from __future__ import annotations

from streamframe.magics.common import KafkaMagics, StreamframeMagics
from streamframe.magics.connect import ConnectMagics
from streamframe.magics.connectors import ConnectorMagics
from streamframe.magics.produce import ProduceMagics
from streamframe.magics.queries import QueryMagics
from streamframe.magics.schemas import SchemaMagics
from streamframe.magics.tail import TailMagics
from streamframe.magics.topics import TopicMagics

# The magic families `%load_ext streamframe` registers.
MAGICS: tuple[type[StreamframeMagics], ...] = (TopicMagics, ProduceMagics, TailMagics, ConnectorMagics,
                                               QueryMagics, ConnectMagics, SchemaMagics)


def load_ipython_extension(ipython) -> None:
    """Register the magics on `ipython`, with one KafkaMagics options object `%config` can change."""
    ipython.configurables[:] = [c for c in ipython.configurables if not isinstance(c, KafkaMagics)]
    options = KafkaMagics(parent=ipython)
    ipython.configurables.append(options)
    for cls in MAGICS:
        ipython.register_magics(cls(shell=ipython, options=options))


__all__ = ["MAGICS", "ConnectMagics", "ConnectorMagics", "KafkaMagics", "ProduceMagics", "QueryMagics",
           "SchemaMagics", "StreamframeMagics", "TailMagics", "TopicMagics", "load_ipython_extension"]
