"""A Query: the handle of one topology with its readers and sink, run on a background thread (or the
caller's, when bounded) by its loop (runtime/loop.py).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from streamframe.errors import ConfigError, DroppedRecordsWarning, StreamframeError
from streamframe.kafka.connection import GUARANTEES, check_guarantee
from streamframe.plan.nodes import DataFrameSource, KafkaSource, Node
from streamframe.runtime.context import OperatorContext
from streamframe.runtime.dead_letters import ON_ERROR
from streamframe.runtime.loop import Loop
from streamframe.runtime.metrics import Metrics
from streamframe.runtime.topology import Topology
from streamframe.state.manager import StoreManager

__all__ = ["ON_ERROR", "Query"]
log = logging.getLogger("streamframe.query")
_PACKAGE = str(Path(__file__).resolve().parents[1])  # streamframe/: a warning points past it


class Query:
    """A running (or finished) topology. Make one with `frame.start()`, `frame.run()` or a sink.

        >>> q = frame.start(name="big-trades")     # doctest: +SKIP
        >>> q.status, q.metrics["records_in"]      # doctest: +SKIP
        ('running', 1520)
        >>> q.stop()                               # doctest: +SKIP

    The options after `changelog` are for the runtime's own queries: `clock` is what operators read as
    wall-clock time (close_after); `merge` feeds the inputs through a TimeMerger in event-time order
    (None: when the query joins); `hold(raw)` gives the rows the merger holds for a raw batch, in place of
    the source's decoding; `on_checkpoint` runs after each checkpoint.

    `connect_timeout`: a query that starts while the broker does not answer waits up to this many seconds
    for it (its metrics say "broker unreachable"), then fails naming the address; None fails at once. A
    running query whose broker goes away waits for it however long: it checkpoints again once it is back.

    `processing_guarantee`: "at_least_once" (the default: a restart may repeat output) or "exactly_once"
    (output and changelog records and the input offsets commit in one Kafka transaction per
    `commit_interval`, 0.1 s by default; into a topic, memory or SQLite). None: the connection's default.
    """

    def __init__(self, root: Node, sink, *, name: str, connection=None, bounded: bool = False,
                 until=None, timeout: float | None = None, batch_size: int = 50_000,
                 commit_interval: float | None = None, poll_timeout: float = 0.1, state: str = "sqlite",
                 state_dir=None, changelog: bool = True, clock: Callable[[], float] = time.monotonic,
                 merge: bool | None = None, hold=None, on_checkpoint: Callable[[], None] | None = None,
                 processing_guarantee: str | None = None, connect_timeout: float | None = None):
        self.root, self.sink, self.name = root, sink, name
        self.connect_timeout = connect_timeout
        self.connection = connection
        self.bounded = bounded
        self.timeout = timeout
        # a batch's memory is reused from one batch to the next at this size (benchmarks/README.md)
        self.batch_size = batch_size
        guarantee = check_guarantee(processing_guarantee) or \
            (connection.processing_guarantee if connection is not None else None) or GUARANTEES[0]
        self.guarantee = guarantee
        self.exactly_once = guarantee == "exactly_once"
        # Kafka Streams' defaults: a transaction per 100 ms under exactly-once, else a commit per 5 s
        self.commit_interval = commit_interval if commit_interval is not None else \
            (0.1 if self.exactly_once else 5.0)
        self.poll_timeout = poll_timeout
        if state not in ("sqlite", "memory"):
            raise ConfigError(f"state must be 'sqlite' or 'memory', got {state!r}")
        self.state, self.changelog = state, changelog
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.topology = Topology(root)
        if self.exactly_once:
            _check_exactly_once(self.topology, sink, changelog)
        self.stores = StoreManager(name, self.topology.positions)
        self.clock = clock
        self.status = "created"
        self.exception: BaseException | None = None
        self.metrics_ = Metrics()
        self.helpers: list[Query] = []  # queries run beside this one for it (repartition copies)
        self._opened = False
        self._input_partitions: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loop = Loop(self, until=until, merge=merge, hold=hold, on_checkpoint=on_checkpoint)

    # --- the handle ----------------------------------------------------------------------------------
    @property
    def group_id(self) -> str:
        app = self.connection.app_id if self.connection else "streamframe"
        return f"{app}.{self.name}"

    @property
    def in_memory(self) -> bool:
        """Whether every input is an in-memory DataFrame (sf.from_pandas), no topic."""
        return all(isinstance(s, DataFrameSource) for s in self.root.sources())

    @property
    def metrics(self) -> dict:
        """records in and out, records/s, consumer lag, errors, dead letters, stream time, ..."""
        last = None if self.exception is None else str(self.exception)
        return self.metrics_.snapshot(self.status, last)  # else the latest routed record's reason

    @property
    def output(self):
        """The producer (kafka/writer.py Output) once the query is open with a connection, else None."""
        return self.loop.output

    @property
    def dead_letters(self):
        """Where dead letters go: their topics, or a list (`.records`) without a connection."""
        return self.loop.routing.letters

    def start(self) -> Query:
        self._thread = threading.Thread(target=self._run_guarded, name=f"streamframe-{self.name}",
                                        daemon=True)
        self.status = "running"
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> Query:
        """Stop after the current batch: outputs are delivered and offsets committed first."""
        for helper in self.helpers:
            helper.stop(timeout)
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return self

    def wait(self, timeout: float | None = None) -> Query:
        """Block until the query ends; re-raise its error if it failed."""
        if self._thread is not None:
            self._thread.join(timeout)
        if self.exception is not None:
            raise self.exception
        return self

    def run_here(self) -> Query:
        """Run on the calling thread until the bounded end (or stop()); raises on failure. A bounded run
        that left records out (dead letters, skipped, late) says so in one DroppedRecordsWarning."""
        self.status = "running"
        self._run_guarded()
        if self.exception is not None:
            raise self.exception
        if self.bounded:
            left_out = self.dropped()
            if left_out is not None:
                warnings.warn(left_out, DroppedRecordsWarning, stacklevel=_caller_level())
        return self

    def dropped(self) -> str | None:
        """One line on the records this query left out so far, by where they went and why; None if none."""
        return self.loop.routing.summary(self.metrics_.records_in, self.metrics_.late_drops)

    def __repr__(self) -> str:
        m = self.metrics
        return (f"<Query {self.name!r} {self.status}: {m['records_in']} in, {m['records_out']} out, "
                f"{m['errors']} errors, sink: {self.sink!r}>")

    def _run_guarded(self) -> None:
        try:
            self.loop.run(self._stop)
            self.status = "stopped" if self._stop.is_set() else "finished"
        except KeyboardInterrupt as exc:  # Ctrl-C (a kernel's interrupt) of a run on the calling thread
            self.status = "stopped"
            self.exception = exc  # run_here() raises it as it is: the notebook shows KeyboardInterrupt
        except BaseException as exc:  # noqa: BLE001 - the query's thread must record every failure
            self.status = "failed"
            if self.connection is not None and not isinstance(exc, StreamframeError):
                exc = StreamframeError(f"query {self.name!r} failed: {self.connection.scrub(exc)}")
            self.exception = exc
            log.error("query %s failed: %s", self.name, exc)
        finally:
            for helper in self.helpers:  # a failed query's copies stop with it
                helper._stop.set()
            self.loop.close()

    # --- what the loop, the sinks and the test driver ask of it ------------------------------------
    def input_partitions(self) -> int:
        """The most partitions of an input topic (asked once: the sink and the operators both want it)."""
        if self._input_partitions is None:
            topics = [s.topic for s in self.root.sources() if isinstance(s, KafkaSource)]
            found = self.connection.require_topics(topics, need="read").values() if topics else ()
            self._input_partitions = max(found, default=1)
        return self._input_partitions

    def open_topology(self, partitions: int, again: bool = False) -> None:
        """Give the operators their context (partition count for re-keyed groups, stores, clock);
        `again`: after the stores were reset, so each operator takes its restored state."""
        if not self._opened or again:
            self.topology.open(OperatorContext(self.stores, partitions=partitions,
                                               clock=lambda: self.clock()))
            self._opened = True

    def processed_offsets(self) -> dict[tuple[str, int], int]:
        """Per input partition, the next offset not yet fully processed (what a checkpoint covers)."""
        return self.loop.checkpoint.processed_offsets()

    def process(self, topic: str, raw) -> None:
        """Push one raw batch from `topic` through the topology and write what comes out."""
        self.loop.process(topic, raw)

    def idle(self) -> None:
        """Let operators act on the clock (close_after) and write what they emit, as each poll round does."""
        self.loop.idle()

    # --- joins' repartition copies (runtime/repartition.py) ----------------------------------------
    @property
    def readings(self):
        """{topic read: the source nodes it feeds}, read-only."""
        return self.loop.readings

    def read_instead(self, topic: str, copy: str, rekeyed: bool = False) -> None:
        """Read topic `copy` (a repartition copy) in place of `topic`; `rekeyed`: the copy's records
        carry their own key in a last header, put back before decoding."""
        self.loop.read_instead(topic, copy, rekeyed)

    def helper(self, root: Node, sink, *, name: str, **options) -> Query:
        """A query to run for this one, on its connection and as bounded as it; `options` as Query's."""
        return Query(root, sink, name=name, connection=self.connection, bounded=self.bounded, **options)

    def add_helper(self, helper: Query) -> None:
        """Run `helper` for this query: to its end now when bounded, else started beside it — stopped
        with it, and its failure fails this query."""
        if self.bounded:
            helper.run_here()
        else:
            self.helpers.append(helper.start())


def _caller_level() -> int:
    """The stack level of the first caller outside streamframe: where a warning should point."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        level, frame = level + 1, frame.f_back
    return level


def _check_exactly_once(topology: Topology, sink, changelog: bool) -> None:
    if topology.stateful and not changelog:
        raise ConfigError("processing_guarantee='exactly_once' keeps state in its changelog topics (the "
                          "SQLite file may fall behind a commit): drop changelog=False")
    if any(isinstance(n, KafkaSource) and n.global_table for n in topology.root.sources()):
        raise ConfigError("processing_guarantee='exactly_once' does not cover global tables yet (they are "
                          "read with no group to commit to): join a table, or run it at_least_once")
    if not sink.exactly_once:
        raise ConfigError(f"{type(sink).__name__} cannot write exactly once (an appended file has no "
                          "transaction); write to a topic or SQLite, or run it at_least_once")
