"""Exactly-once output: a query's records and the input offsets they came from, committed together in
one Kafka transaction per commit interval (KIP-447: the offsets carry the consumer group's metadata, so
a zombie instance is fenced by the group's generation).

Every transactional call runs under our own deadline, since librdkafka may not honour its timeout
(librdkafka #5456: send_offsets_to_transaction), so a kernel never hangs on one. Errors are mapped as
librdkafka classes them: retriable ones are retried until the deadline, one that needs an abort
raises TransactionAbortedError (the caller aborts and rewinds), any other is fatal (DeliveryError).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streamframe.errors import DeliveryError, TransactionAbortedError
from streamframe.kafka.connection import Connection, code
from streamframe.kafka.writer import Output

TXN_TIMEOUT = 30.0  # seconds each transactional call may take before the query fails


class TransactionalOutput(Output):
    """An Output inside a Kafka transaction from open to close: `commit(offsets)` ends one and begins
    the next."""

    def __init__(self, conn: Connection, transactional_id: str, extra: dict | None = None,
                 timeout: float = TXN_TIMEOUT):
        # a crashed process's open transaction holds every read-committed reader back until the broker
        # aborts it: 10 s, as Kafka Streams sets under exactly-once (librdkafka's default is 60 s)
        super().__init__(conn, {"transactional.id": transactional_id, "transaction.timeout.ms": 10_000,
                                **(extra or {})})
        self.transactional_id = transactional_id
        self.timeout = timeout
        self._call(lambda: self.producer.init_transactions(timeout), "initialising its transactions")
        self.producer.begin_transaction()

    def produce_many(self, topic: str, *args, **kwargs) -> None:
        try:
            super().produce_many(topic, *args, **kwargs)
        except KafkaException as e:
            if code(e) != KafkaError._STATE:  # the state of a transaction that must be aborted
                raise
            self.producer.poll(0)  # the delivery reports say why
            reason = self.failures[0] if self.failures else self.conn.scrub(str(e))
            raise TransactionAbortedError(f"producing to {topic!r} needs an abort of its transaction "
                                          f"({reason})") from None

    def commit(self, offsets: list[tuple[list[TopicPartition], object]]) -> None:
        """Commit the open transaction with the input offsets of each (partitions, consumer group
        metadata) pair, then begin the next. TransactionAbortedError: nothing of it was committed."""
        for partitions, group_metadata in offsets:
            if partitions:
                self._call(lambda p=partitions, g=group_metadata:
                           self.producer.send_offsets_to_transaction(p, g, self.timeout),
                           "sending the input offsets to its transaction")
        self._call(lambda: self.producer.commit_transaction(self.timeout), "committing its transaction")
        if self.failures:  # a refused record makes the commit above fail; should one slip through, stop
            first = self.failures[0]
            self.failures.clear()
            raise DeliveryError(f"a record was not delivered ({first}) though its transaction committed")
        self.producer.begin_transaction()

    def abort(self, begin: bool = True) -> None:
        """Discard the open transaction's records and offsets (and begin a new one)."""
        self.failures.clear()
        self._call(lambda: self.producer.abort_transaction(self.timeout), "aborting its transaction")
        if begin:
            self.producer.begin_transaction()

    def close(self) -> None:
        """Abort the transaction still open (the one begun after the last commit, or a failed run's),
        so no reader waits on it until it times out."""
        try:
            self.abort(begin=False)
        except Exception:  # noqa: BLE001 - closing is best effort; init_transactions of the next fences it
            pass

    def flush(self, timeout: float = 60.0) -> None:
        """Records are delivered by commit(): nothing to wait for outside a transaction's end."""

    def _call(self, fn: Callable[[], None], what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            error = _with_deadline(fn, deadline - time.monotonic() + 5)
            if error is None:
                return
            if isinstance(error, TimeoutError):
                raise DeliveryError(f"transactional producer {self.transactional_id!r} did not finish "
                                    f"{what} within {self.timeout:g} s; is the broker reachable?") from None
            kafka_error = error.args[0] if isinstance(error, KafkaException) and error.args else None
            if kafka_error is None:
                raise error
            if kafka_error.retriable() and time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            if kafka_error.txn_requires_abort():
                raise self.conn.error(kafka_error, f"{what} needs an abort",
                                      TransactionAbortedError) from None
            raise self.conn.error(kafka_error, f"transactional producer {self.transactional_id!r} failed "
                                               f"{what} (fenced by a newer instance, or fatal)",
                                  DeliveryError) from None


def _with_deadline(fn: Callable[[], None], seconds: float) -> BaseException | None:
    """Run `fn` on a helper thread; its exception, TimeoutError if it has not returned in `seconds`."""
    result: list[BaseException | None] = []

    def call() -> None:
        try:
            fn()
            result.append(None)
        except BaseException as e:  # noqa: BLE001 - handed back to the caller's thread
            result.append(e)

    worker = threading.Thread(target=call, name="streamframe-txn", daemon=True)
    worker.start()
    worker.join(max(seconds, 0.1))
    return result[0] if result else TimeoutError()
