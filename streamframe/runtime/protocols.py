"""What the runtime asks of its parts: the operators it pushes batches through, the readers it polls and
the sinks it writes to — every method and attribute the loop uses, and nothing else.

The optional parts have defaults: operators inherit theirs from `operators.base.Operator`, runtime sinks
subclass `SinkProtocol` for its defaults, and each reader (runtime/readers.py, kafka/reader.py) writes out
every member, an empty answer where a capability does not apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pandas as pd

from streamframe.records import META, RawBatch

Offsets = dict[tuple[str, int], int]  # (topic, partition) -> next offset


class OperatorProtocol(Protocol):
    """One node of a compiled topology (operators/base.py has the defaults)."""

    node: Any  # its plan node: name, parents (a join's sides are its parents' order)
    children: list[OperatorProtocol]  # the operators its output is pushed to
    name: str
    stateful: bool  # keeps state in stores (checkpointed, restored)
    by_side: bool  # a join: process_side is called, not process
    late_drops: int  # records dropped as too late so far, summed into the query's metrics
    rejected: dict[int, str]  # records the last batch refused (position -> reason): routed, then cleared

    def open(self, ctx) -> None:
        """Once, before the first batch: stores, partition count and clock (runtime/context.py)."""

    def process(self, batch: pd.DataFrame) -> pd.DataFrame | None:
        """The rows for the children; may raise, the runtime then splits the batch to find the records."""

    def process_side(self, side: int, batch: pd.DataFrame) -> pd.DataFrame | None:
        """A batch from input number `side` (a join)."""

    def on_idle(self) -> pd.DataFrame | None:
        """Rows due because wall-clock time passed; called on every poll round."""

    def current_rows(self) -> pd.DataFrame | None:
        """The root's whole table, written first when a live query restores its state (None: no table)."""


class SourceOperatorProtocol(OperatorProtocol, Protocol):
    """The operator of a source node (operators/source.py): turns a raw batch into rows."""

    late: frozenset  # metadata columns it leaves out, filled in for the rows that reach the output
    projection: Any  # the JSON fields it decodes alone (plan/values.py), or None
    projected: bool  # whether the last batch was decoded with `projection`

    def decode(self, raw: RawBatch) -> tuple[pd.DataFrame, dict[int, str]]:
        """(rows, {position: reason} of the records that do not decode)."""

    def with_metadata(self, out: pd.DataFrame, raw: RawBatch, wanted) -> pd.DataFrame:
        """`out` with the `late` columns in `wanted` filled in from `raw`."""

    def with_record(self, out: pd.DataFrame, raw: RawBatch) -> pd.DataFrame:
        """`out` with each record as consumed (a projected JSON batch going to a JSON topic)."""


class ReaderProtocol(Protocol):
    """Where a query's records come from: a topic's consumer or an in-memory DataFrame."""

    bounded: bool  # it ends (at_end) even in a live query: an in-memory input
    on_revoke: Callable[[], None] | None  # called before partitions are taken away: the query checkpoints
    start_offsets: Offsets  # where to resume (from durable state or the sink), set before open()
    end: Offsets  # bounded: each partition's end offset ({} when it has no partitions of its own)

    def open(self) -> None: ...

    def poll(self, max_records: int, timeout: float) -> dict[str, RawBatch]:
        """At most `max_records` records, by topic; waits up to `timeout` s when there are none."""

    def at_end(self) -> bool:
        """Everything there is to read has been read (always False for a live topic)."""

    def positions(self) -> Offsets:
        """The next offset to read of every partition it reads (what a checkpoint covers)."""

    def pending_partitions(self) -> set[tuple[str, int]]:
        """Partitions known to hold records not read yet: what a join's merge waits for."""

    def commit(self, offsets: Offsets) -> None: ...

    def transaction_offsets(self, offsets: Offsets) -> tuple[list, object] | None:
        """Exactly-once: the partitions commit(offsets) would commit and the consumer group's metadata,
        for the producer's transaction to commit instead (None: nothing of a group to commit)."""

    def rewind(self) -> None:
        """Exactly-once, after an aborted transaction: back to the offsets last committed."""

    def lag(self) -> int:
        """Records not read yet."""

    def close(self) -> None: ...


class SinkProtocol(Protocol):
    """Where a query's output rows go; subclass it for the defaults of the optional parts."""

    metadata: frozenset = frozenset(META)  # the metadata columns it reads (the sources may leave out others)
    materialized: bool = False  # it keeps a table's current rows: a restored table is written to it whole
    exactly_once: bool = False  # what it writes is exact under processing_guarantee="exactly_once"
    topics: tuple[str, ...] = ()  # the Kafka topics it writes (their limits bound the producer's batches)
    rewinds: bool = False  # rows written again after an aborted transaction replace themselves

    def open(self, query: QueryHandle) -> None:
        """Once, before the first row; `query` offers its connection, producer and offsets."""

    @property
    def rejected(self) -> dict:
        """Rows the last writes could not produce (label → reason), for the query to route by on_error."""
        return {}

    def write(self, frame: pd.DataFrame) -> int:
        """Rows with their metadata columns; returns how many were written."""
        raise NotImplementedError

    def offsets(self) -> Offsets:
        """Where its own contents say the query resumes ({}: where the consumer group committed)."""
        return {}


class QueryHandle(Protocol):
    """What a running query offers its sinks, its dead letters and the joins' repartition copies."""

    name: str
    connection: Any  # a kafka Connection, or None for in-memory input and output
    bounded: bool
    output: Any  # the query's kafka Output (producer), None without a connection

    def input_partitions(self) -> int: ...

    def processed_offsets(self) -> Offsets: ...
