"""A query's checkpoint: what it has processed is made safe, in the order that keeps it at-least-once."""

from __future__ import annotations

from collections.abc import Callable

from streamframe.errors import TransactionAbortedError
from streamframe.runtime.gcpause import gc_paused
from streamframe.runtime.merge import TimeMerger
from streamframe.runtime.protocols import Offsets, ReaderProtocol
from streamframe.state.manager import StoreManager


class Checkpoint:
    """Runs on the commit interval, at the end of a query and before a rebalance takes partitions away.

    Each step only starts once the one before it is done, so a crash between two steps repeats work
    but never loses it (at-least-once). Under exactly-once the output is a TransactionalOutput
    (kafka/transactions.py) and steps 3 and 5 are one transaction: the output records and the input
    offsets commit together or not at all. An aborted transaction rewinds the readers to the offsets
    last committed; after MAX_ABORTS in a row without a commit the query fails.
    """

    MAX_ABORTS = 3

    def __init__(self, readers: list[ReaderProtocol], merger: TimeMerger | None, stores: StoreManager, *,
                 changelog: bool, connection=None, after: Callable[[], None] | None = None):
        self.readers = readers  # the query's list: readers opened later are covered too
        self.merger = merger
        self.stores = stores
        self.changelog = changelog
        self.connection = connection
        self.after = after
        self.output = None  # the query's producer, once it is open
        self.transactional = False  # exactly-once: the producer is a TransactionalOutput
        self.durable = None  # the query's SQLite state, once attached
        self._changelogs: set[str] = set()  # changelog topics made sure of
        self._aborts = 0  # exactly-once: transactions aborted since the last commit

    def open(self, output, durable, transactional: bool = False) -> None:
        """The producer (None: no broker) and durable state (None: none) of the opened query."""
        self.output, self.durable, self.transactional = output, durable, transactional

    def processed_offsets(self) -> Offsets:
        """Per input partition, the next offset not yet fully processed: the consumer's position,
        held back to the first record a join still holds in its merger."""
        offsets: dict = {}
        for reader in self.readers:
            offsets.update(reader.positions())
        if self.merger is not None:
            for key, first in self.merger.pending_offsets().items():
                offsets[key] = min(offsets.get(key, first), first)
        return offsets

    def run(self) -> None:
        # 0. Outputs so far delivered first: a broker gone away stops the checkpoint here
        # (BrokerUnreachableError) before the stores hand over their changes.
        if self.output is not None and not self.transactional:
            self.output.flush()
        # 1. The offsets everything before has been processed up to.
        offsets = self.processed_offsets()
        changes = None
        if self.durable is not None or (self.changelog and self.stores.changelog is not None):
            # 2. The stores' changes since the last checkpoint, produced to their changelog topics.
            produce = self._produce_changelog if self.changelog else None
            with gc_paused():  # a row's worth of objects per changed key (runtime/gcpause.py)
                changes = self.stores.checkpoint(offsets, produce)
        if self.transactional:  # 3 and 5 in one transaction
            self._commit_transaction(offsets)
            return
        # 3. Every output and changelog record delivered.
        if self.output is not None:
            self.output.flush()
        # 4. The changes and offsets saved in the durable file, in one SQLite transaction.
        if self.durable is not None:
            with gc_paused():
                self.durable.save(changes, offsets)
        # 5. The input offsets committed: a restart resumes after what steps 2 to 4 made safe.
        for reader in self.readers:
            reader.commit(offsets)
        # 6. The query's own follow-up (a repartition copy deletes what its readers committed).
        if self.after is not None:
            self.after()

    def _commit_transaction(self, offsets: Offsets) -> None:
        pending = [r.transaction_offsets(offsets) for r in self.readers]
        try:
            self.output.commit([p for p in pending if p is not None])
        except TransactionAbortedError as e:
            self.recover(e)
            return
        self._aborts = 0
        if self.after is not None:
            self.after()

    def recover(self, error) -> None:
        """Exactly-once: abort the open transaction and rewind the readers to the offsets last
        committed, so its records are processed again; `error` is raised after MAX_ABORTS in a row."""
        self._aborts += 1
        if self._aborts > self.MAX_ABORTS:
            raise error
        self.output.abort()
        for reader in self.readers:
            reader.rewind()

    def _produce_changelog(self, topic: str, records: list) -> None:
        if topic not in self._changelogs:
            self.connection.ensure_topic(topic, 1, {"cleanup.policy": "compact"})
            self._changelogs.add(topic)
        # one call for the store's records: produce() per row is the slow part of a large checkpoint
        self.output.produce_many(topic, [v for _, v in records], [k for k, _ in records], [0] * len(records))
