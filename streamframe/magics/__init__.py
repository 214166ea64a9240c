"""IPython magics of streamframe, one module per command family; `%load_ext streamframe` registers them.

    topics.py       %kafka_topics list|create|describe|delete
    produce.py      %%kafka_produce TOPIC
    tail.py         %kafka_tail TOPIC [-n N] [--follow]
    connectors.py   %kafka_source, %kafka_sink, %connectors, %connector_stop
    queries.py      %sf_queries, %sf_stop
    connect.py      %%connect / %connect (a real Kafka Connect cluster), when present
    common.py       the options (%config KafkaMagics), the base class, --help and one-line UsageErrors

Every magic takes `--help`; bad arguments and expected failures (unknown topic, broker unreachable, bad
connector settings) end in one `UsageError` line, never a traceback.

May import connectors and every layer below; not display, testing or cli, and no confluent_kafka
(DESIGN §7, pyproject [tool.importlinter]).
"""

from __future__ import annotations

import importlib
import logging

from IPython.core.magic import Magics

from streamframe.magics.common import KafkaMagics, StreamframeMagics
from streamframe.magics.connectors import ConnectorMagics
from streamframe.magics.produce import ProduceMagics
from streamframe.magics.queries import QueryMagics
from streamframe.magics.tail import TailMagics
from streamframe.magics.topics import TopicMagics

log = logging.getLogger("streamframe.magics")

# The magic families `%load_ext streamframe` registers.
MAGICS: tuple[type[Magics], ...] = (TopicMagics, ProduceMagics, TailMagics, ConnectorMagics, QueryMagics)

# --- hook for magic families in other modules ------------------------------------------------------------
# Each module named here is imported if it exists, and every Magics class in its module-level `MAGICS`
# tuple (or, without one, every Magics class it defines) is registered too. StreamframeMagics subclasses
# get the shared options (`%config KafkaMagics...`); other Magics classes are constructed with the shell.
OPTIONAL_MODULES = ("streamframe.magics.connect",)


def _optional_magics() -> list[type[Magics]]:
    found: list[type[Magics]] = []
    for name in OPTIONAL_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # the module exists but needs something missing: say so, load the rest
                log.warning("streamframe: %s not loaded: %s", name, e)
            continue
        except ImportError as e:
            log.warning("streamframe: %s not loaded: %s", name, e)
            continue
        classes = getattr(module, "MAGICS", None)
        if classes is None:
            classes = [obj for obj in vars(module).values()
                       if isinstance(obj, type) and issubclass(obj, Magics) and obj.__module__ == name]
        found.extend(classes)
    return found


def load_ipython_extension(ipython) -> None:
    """Register the magics on `ipython`, with one KafkaMagics options object `%config` can change."""
    ipython.configurables[:] = [c for c in ipython.configurables if not isinstance(c, KafkaMagics)]
    options = KafkaMagics(parent=ipython)
    ipython.configurables.append(options)
    for cls in (*MAGICS, *_optional_magics()):
        if issubclass(cls, StreamframeMagics):
            ipython.register_magics(cls(shell=ipython, options=options))
        else:
            ipython.register_magics(cls)


__all__ = ["MAGICS", "OPTIONAL_MODULES", "ConnectorMagics", "KafkaMagics", "ProduceMagics", "QueryMagics",
           "StreamframeMagics", "TailMagics", "TopicMagics", "load_ipython_extension"]
