"""State stores: one protocol for key-value, window and session state (a table keyed by an index),
kept in memory and made durable by a SQLite file and a compacted changelog topic.

May import errors and records only; never IPython, ipywidgets or confluent_kafka (DESIGN §7,
pyproject [tool.importlinter]).
"""

from streamframe.state.store import TableStore

__all__ = ["TableStore"]
