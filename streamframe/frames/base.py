"""What StreamFrame and TableFrame share: a plan node, how it is shown, explained, started and sunk.

    >>> import pandas as pd, streamframe as sf
    >>> s = sf.from_pandas(pd.DataFrame({"x": [1, 2]}))
    >>> s.default_name("run").startswith("run-")
    True
"""

from __future__ import annotations

from streamframe import session
from streamframe.plan import nodes
from streamframe.plan.draw import explain_html
from streamframe.plan.explain import explain_text, fingerprint


class Explanation(str):
    """explain()'s text; shows as itself (not as a quoted string) in a notebook, drawn as boxes and arrows
    where HTML shows."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return explain_html(str(self))


class Frame:
    """A lazy frame over a plan node. Sinks and `start()` make a Query (runtime/query.py) over `_node`."""

    # How a displayed frame shows (streamframe.display: a live view of its query): set when streamframe is
    # imported, since frames may not import the display room above them (pyproject.toml, importlinter).
    display = None
    default_verb = "q"  # of the default query name
    is_table = False  # a TableFrame's file sinks write its changes with an `op` column

    def __init__(self, node: nodes.Node):
        self._node = node

    def _ipython_display_(self):
        """In a notebook, a frame shows as its live view (and starts its query); see streamframe.display."""
        if Frame.display is None:
            print(repr(self))
        else:
            Frame.display.show(self)

    def explain(self) -> Explanation:
        """The topology as text: one line per operator, with what feeds what."""
        return Explanation(explain_text(self._node))

    def default_name(self, verb: str | None = None) -> str:
        return f"{verb or self.default_verb}-{fingerprint(self._node)}"

    # --- sinks both kinds share --------------------------------------------------------------
    def to_csv(self, path: str, until=None, name: str | None = None, **options):
        """Append the rows to a CSV file (header first); bounded with until=, else live."""
        return self._to_file(path, "csv", until, name, options)

    def to_jsonl(self, path: str, until=None, name: str | None = None, **options):
        """Append the rows to a JSON-lines file; bounded with until=, else live."""
        return self._to_file(path, "jsonl", until, name, options)

    def _to_file(self, path: str, fmt: str, until, name: str | None, options: dict):
        from streamframe.runtime.files import TextFileSink

        sink = TextFileSink(path, fmt, table=self.is_table)
        return self._launch(sink, name or self.default_name(fmt), until, None, options)

    def _key_format(self) -> str:
        formats = {s.key_format for s in self._node.sources() if hasattr(s, "key_format")}
        return formats.pop() if len(formats) == 1 else "text"

    def _query(self, sink, *, name: str, bounded: bool, until=None, timeout=None, **options):
        from streamframe.runtime.query import Query
        from streamframe.runtime.sinks import TopicSink

        kafka = (any(isinstance(s, nodes.KafkaSource) for s in self._node.sources())
                 or isinstance(sink, TopicSink))
        conn = session.connection() if kafka else None
        return Query(self._node, sink, name=name, connection=conn, bounded=bounded, until=until,
                     timeout=timeout, **options)

    def _run(self, sink, until, timeout, options: dict):
        """A bounded run into `sink`, from the beginning to `until`."""
        self._query(sink, name=self.default_name("run"), bounded=True, until=until, timeout=timeout,
                    **options).run_here()
        return sink

    def _launch(self, sink, name: str, until=None, timeout=None, options: dict | None = None):
        """A sink's query: bounded (until= given; returns it finished) or live (returns it running; a
        query of that name already running is returned as it is, so a consumer never starts twice)."""
        options = options or {}
        if until is not None:
            return self._query(sink, name=name, bounded=True, until=until, timeout=timeout,
                               **options).run_here()
        existing = session.running(name)
        if existing is not None:
            return existing
        query = self._query(sink, name=name, bounded=False, **options)
        session.register(query)
        return query.start()
