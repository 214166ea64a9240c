"""A query's checkpoint: what it has processed is made safe, in the order that keeps it at-least-once."""

from __future__ import annotations

import os
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
    (kafka/transactions.py) and steps 2, 3 and 5 are one transaction: the output and changelog records
    and the input offsets commit together or not at all; the SQLite file (step 4) is written after it,
    so it never holds an aborted write (a file behind the commit is rebuilt from the changelog). An
    aborted transaction rewinds the readers to the offsets last committed and drops the state changed
    since (`reset`); after MAX_ABORTS in a row without a commit the query fails.
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
        self.reset: Callable[[], None] | None = None  # exactly-once: back to the last committed state
        self.output = None  # the query's producer, once it is open
        self.transactional = False  # exactly-once: the producer is a TransactionalOutput
        self.rewinds = True  # the sink takes rows again after a rewind
        self.durable = None  # the query's SQLite state, once attached
        self._changelogs: set[str] = set()  # changelog topics made sure of
        self._aborts = 0  # exactly-once: transactions aborted since the last commit
        self._done: Offsets | None = None  # the offsets of the last checkpoint: none again until they move

    def open(self, output, durable, transactional: bool = False, rewinds: bool = True) -> None:
        """The producer (None: no broker) and durable state (None: none) of the opened query;
        `rewinds`: its sink takes the rows an aborted transaction's records give again."""
        self.output, self.durable, self.transactional = output, durable, transactional
        self.rewinds = rewinds

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
        if offsets == self._done and not self.stores.changed():
            # idle: no empty transaction and changelog marker per store every interval; step 6 still
            # runs, as its own work may be due (a purge that waits for its interval)
            if self.after is not None:
                self.after()
            return
        changes = None
        if self.durable is not None or (self.changelog and self.stores.changelog is not None):
            # 2. The stores' changes since the last checkpoint, produced to their changelog topics.
            produce = self._produce_changelog if self.changelog else None
            with gc_paused():  # a row's worth of objects per changed key (runtime/gcpause.py)
                changes = self.stores.checkpoint(offsets, produce)
        if self.transactional:  # 2, 3 and 5 in one transaction, then 4
            if self._commit_transaction(offsets):
                self._done = offsets
                _fault("after_commit")
                if self.durable is not None:
                    with gc_paused():
                        self.durable.save(changes, offsets)
            if self.after is not None:
                self.after()
            return
        # 3. Every output and changelog record delivered.
        if self.output is not None:
            self.output.flush()
        # 4. The changes and offsets saved in the durable file, in one SQLite transaction.
        if self.durable is not None:
            with gc_paused():
                self.durable.save(changes, offsets)
        # 5. The input offsets committed: a restart resumes after what steps 2 to 4 made safe.
        _fault("before_commit")
        for reader in self.readers:
            reader.commit(offsets)
        self._done = offsets
        _fault("after_commit")
        # 6. The query's own follow-up (a repartition copy deletes what its readers committed).
        if self.after is not None:
            self.after()

    def _commit_transaction(self, offsets: Offsets) -> bool:
        """True: committed; False: aborted and recovered."""
        pending = [r.transaction_offsets(offsets) for r in self.readers]
        _fault("before_commit")
        try:
            self.output.commit([p for p in pending if p is not None])
        except TransactionAbortedError as e:
            self.recover(e)
            return False
        self._aborts = 0
        return True

    def recover(self, error) -> None:
        """Exactly-once: abort the open transaction, rewind the readers to the offsets last committed
        and drop what was processed since, so its records are processed again; `error` is raised after
        MAX_ABORTS in a row."""
        self._aborts += 1
        if self._aborts > self.MAX_ABORTS or not self.rewinds:
            raise error
        self.output.abort()
        self._done = None
        for reader in self.readers:
            reader.rewind()
        if self.merger is not None:
            self.merger.clear()
        if self.reset is not None:
            self.reset()

    def _produce_changelog(self, topic: str, records: list) -> None:
        if topic not in self._changelogs:
            self.connection.ensure_topic(topic, 1, {"cleanup.policy": "compact"})
            self._changelogs.add(topic)
        # one call for the store's records: produce() per row is the slow part of a large checkpoint
        self.output.produce_many(topic, [v for _, v in records], [k for k, _ in records], [0] * len(records))


def _fault(point: str) -> None:
    """The fault tests' switch, off unless $STREAMFRAME_FAULT is `point` or `point:N`: the process dies
    there (the Nth time it gets there), as a crash would, just before committing a transaction or just
    after."""
    name, _, nth = os.environ.get("STREAMFRAME_FAULT", "").partition(":")
    if name != point:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] >= int(nth or 1):
        os._exit(70)


_reached: dict[str, int] = {}
