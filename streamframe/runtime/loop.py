"""The poll loop of a query: it takes a batch from each reader, pushes it through the topology
depth-first, writes the outputs, routes failed records by their source's `on_error`, and checkpoints on
an interval (runtime/checkpoint.py).

Opening wires the parts: the join's co-partitioning (runtime/repartition.py), the readers and the
producer, the sink, durable state, the operators, and the global tables, read whole before the rest.
A join's inputs go through a TimeMerger (runtime/merge.py), released in event-time order.
"""

from __future__ import annotations

import logging
import time
import types
from collections.abc import Callable

import numpy as np
import pandas as pd

from streamframe.errors import (
    AuthenticationError,
    BrokerUnreachableError,
    ConfigError,
    DeliveryError,
    QueryTimeoutError,
    StreamframeError,
    TransactionAbortedError,
)
from streamframe.operators.table import TableAggregateOp
from streamframe.operators.window import AggregateOp
from streamframe.plan.nodes import DataFrameSource, Join, KafkaSource, Node
from streamframe.records import RECORD_BYTES
from streamframe.runtime.checkpoint import Checkpoint
from streamframe.runtime.dead_letters import ON_ERROR, DeadLetterRouting
from streamframe.runtime.gcpause import gc_paused
from streamframe.runtime.merge import TimeMerger, ahead_source, locate
from streamframe.runtime.readers import PandasReader
from streamframe.runtime.sinks import KafkaDeadLetters
from streamframe.time.extract import datetime_to_ms, to_epoch_ms

log = logging.getLogger("streamframe.query")


class Loop:
    """Runs one query's topology over its readers; `query` is its handle (runtime/query.py)."""

    def __init__(self, query, *, until=None, merge: bool | None = None,
                 hold: Callable[[object], pd.DataFrame] | None = None,
                 on_checkpoint: Callable[[], None] | None = None):
        self.query = query
        self.topology = query.topology
        self.metrics = query.metrics_
        self.bounded = query.bounded
        self.batch_size, self.poll_timeout = query.batch_size, query.poll_timeout
        self.until_count, self.until_ms = _parse_until(until)
        # Metadata columns the output's reader uses (a source may leave the others out, plan/metadata.py):
        # the sink's, the event time (stream time in metrics), the partition when stopping at a time.
        self.wanted_metadata = frozenset(query.sink.metadata) | {"_timestamp"} | \
            ({"_partition"} if self.until_ms is not None else set())
        self.topology.project_values(splice=RECORD_BYTES in self.wanted_metadata)
        self.by_topic: dict[str, list[Node]] = {}  # what each topic read feeds
        for src in query.root.sources():
            if src.on_error not in ON_ERROR:
                raise ConfigError(f"on_error must be one of {', '.join(ON_ERROR)}, got {src.on_error!r}")
            topic = src.topic if isinstance(src, KafkaSource) else f"pandas:{src.id}"
            self.by_topic.setdefault(topic, []).append(src)
        self.readers: list = []
        self.output = None  # the producer, with a connection
        self.global_reader = None  # every partition of the global tables, no group
        self.durable = None
        self.instance = None  # exactly-once, live: the id this process holds (runtime/instance.py)
        self._partitions = 1  # the input's partition count, once open
        self.routing = DeadLetterRouting(query.name, self.metrics, query.connection)
        self.rekeyed: set[str] = set()  # repartition topics of a re-keyed stream: records' own keys come back
        self.global_topics = {s.topic for s in query.root.sources()
                              if isinstance(s, KafkaSource) and s.global_table}
        if merge is None:
            merge = any(isinstance(n, Join) and n.join != "global" for n in query.root.walk())
        self.merger = TimeMerger({s.id: 0 if isinstance(s, KafkaSource) and s.table else 1
                                  for s in query.root.sources()}) if merge else None
        self.hold = hold
        # Its output rows are groups' rows, not input records: one too large to produce cannot be
        # dead-lettered as a record (the group's state holds every record that made it).
        self.aggregates = any(isinstance(op, (AggregateOp, TableAggregateOp))
                              for op in self.topology.ops.values())
        self.checkpoint = Checkpoint(self.readers, self.merger, query.stores, changelog=query.changelog,
                                     connection=query.connection, after=on_checkpoint)
        self.failed = False  # run() raised: nothing more may be committed
        self._backlog: dict[int, bool] = {}  # per reader: its last poll came back (about) full
        self._passed: set[tuple[str, int]] = set()  # partitions past `until=` a time
        self._ahead: int | None = None  # the merged source released ahead (merge.ahead_source)
        self._ahead_known = False

    # --- reading in place of a topic (runtime/repartition.py) ------------------------------------------
    @property
    def readings(self) -> types.MappingProxyType:
        """{topic read: the source nodes it feeds}, read-only."""
        return types.MappingProxyType(self.by_topic)

    def read_instead(self, topic: str, copy: str, rekeyed: bool = False) -> None:
        """Read topic `copy` in place of `topic`; `rekeyed`: its records carry their own key in a last
        header, put back before they are decoded."""
        self.by_topic[copy] = self.by_topic.pop(topic)
        if rekeyed:
            self.rekeyed.add(copy)

    # --- opening ---------------------------------------------------------------------------------------
    def open(self, stop=None) -> None:
        query, conn = self.query, self.query.connection
        if conn is not None and query.connect_timeout:
            self._wait_for_broker(conn, query.connect_timeout, stop)
        if conn is not None:
            from streamframe.serde import attach_registry

            for src in query.root.sources():  # formats of a Schema Registry read through the connection's
                if isinstance(src, KafkaSource):
                    attach_registry(src.value_format, conn.schema_registry)
                    if src.key_decoder is not None:
                        attach_registry(src.key_decoder, conn.schema_registry)
        if conn is not None and self.merger is not None:
            from streamframe.runtime.repartition import check_copartitioned

            check_copartitioned(query)  # may swap a side for its repartition topic
        kafka_topics = [t for t, srcs in self.by_topic.items()
                        if isinstance(srcs[0], KafkaSource) and t not in self.global_topics]
        if conn is not None:
            from streamframe.kafka.reader import KafkaReader
            from streamframe.kafka.writer import Output, producer_limits

            limits = producer_limits(conn, query.sink.topics, kafka_topics)
            self.output = self._transactional_output(limits) if query.exactly_once else Output(conn, limits)
            self.routing.to_topics(KafkaDeadLetters(query))
            if kafka_topics:
                group = None if self.bounded else query.group_id
                self.readers.append(KafkaReader(conn, kafka_topics, group, bounded=self.bounded))
            if self.global_topics:  # every partition, no group: each instance holds the whole table
                self.global_reader = KafkaReader(conn, sorted(self.global_topics), bounded=self.bounded,
                                                 assign=True)
        for topic, srcs in self.by_topic.items():
            if isinstance(srcs[0], DataFrameSource):
                self.readers.append(PandasReader(srcs[0], topic))
        query.sink.open(query)
        if not self.bounded and self.topology.stateful and conn is not None:
            self._attach_state()
        self.checkpoint.open(self.output, self.durable, transactional=query.exactly_once and conn is not None,
                             rewinds=query.sink.rewinds)
        if self.topology.stateful:
            self.checkpoint.reset = self._reset_state
        self._partitions = query.input_partitions() if conn is not None else 1
        query.open_topology(self._partitions)
        if query.sink.materialized:
            rows = self.topology.root_op.current_rows()
            if rows is not None:
                query.sink.write(rows)  # a restored table shows its whole state, not only new changes
        start = dict(query.stores.restored_offsets) or dict(query.sink.offsets())
        if self.global_reader is not None:
            self._load_global_tables()
        for reader in self.readers:
            reader.on_revoke = self._on_revoke
            reader.start_offsets = start
            reader.open()

    def _wait_for_broker(self, conn, timeout: float, stop) -> None:
        """Until the cluster answers, its "broker unreachable" in the metrics, at most `timeout` s."""
        started = time.monotonic()
        while True:
            try:
                conn.check(timeout=min(2.0, timeout))
                self.metrics.unreachable_since = None
                return
            except BrokerUnreachableError as e:
                if isinstance(e, AuthenticationError):
                    raise
                self.metrics.unreachable_since = started
                if time.monotonic() - started >= timeout or (stop is not None and stop.is_set()):
                    raise BrokerUnreachableError(
                        f"query {self.query.name!r}: no Kafka broker answered at {conn.bootstrap} within "
                        f"connect_timeout={timeout:g} s; is it running?") from None
                time.sleep(min(1.0, max(timeout - (time.monotonic() - started), 0)))

    def _on_revoke(self) -> bool:
        """Before a rebalance takes partitions away: checkpoint them; False when nothing could be
        committed because the broker is down (the reader then resumes them where it read to)."""
        conn = self.query.connection
        if conn is not None and conn.unreachable:
            return False
        try:
            self.checkpoint.run()
        except BrokerUnreachableError:
            return False
        return True

    def _transactional_output(self, extra: dict | None = None):
        """Exactly-once: the producer of transactional.id {app_id}.{query}-{instance}: a live query's
        instance id is kept in the state directory (runtime/instance.py), a bounded run's is its own."""
        import uuid

        from streamframe.kafka.transactions import TransactionalOutput
        from streamframe.runtime.instance import Instance
        from streamframe.state.durable import default_state_dir

        query = self.query
        if self.bounded:
            instance = f"run-{uuid.uuid4().hex[:8]}"
        else:
            self.instance = Instance((query.state_dir or default_state_dir()) / query.connection.app_id,
                                     query.name)
            instance = self.instance.id
        return TransactionalOutput(query.connection, f"{query.group_id}-{instance}", extra)

    def _load_global_tables(self) -> None:
        """A global table is read to its end before the stream side starts, then kept up to date."""
        reader = self.global_reader
        reader.open()
        while not reader.at_end():
            with gc_paused():
                for topic, raw in reader.poll(self.batch_size, self.poll_timeout).items():
                    self.process(topic, raw)
        self.readers.append(reader)

    def _attach_state(self) -> None:
        """Durable state: the query's SQLite file, or its changelog topics when the file is gone (or,
        under exactly-once, is not at the offsets the group committed)."""
        from streamframe.state.durable import SqliteState, default_state_dir

        query, conn = self.query, self.query.connection
        if query.state == "sqlite" and self.durable is None:
            path = (query.state_dir or default_state_dir()) / conn.app_id / f"{query.name}.sqlite"
            self.durable = SqliteState.open(path) or SqliteState(path)
            if query.exactly_once and not self._durable_is_committed():
                log.warning("state file %s is not at the committed offsets; rebuilding it from the changelog",
                            path)
                self.durable.clear()
        read = None
        if query.changelog:
            from streamframe.kafka.reader import read_topic

            existing = set(conn.topics())
            read = lambda topic: read_topic(conn, topic) if topic in existing else []  # noqa: E731
        query.stores.attach(self.durable, conn.app_id, read)

    def _durable_is_committed(self) -> bool:
        from streamframe.kafka.reader import group_offsets

        saved = self.durable.offsets()
        return group_offsets(self.query.connection, self.query.group_id, list(saved)) == saved

    def _reset_state(self) -> None:
        """Exactly-once, after an aborted transaction: the stores as the last commit left them (the
        SQLite file is written only after a commit; the changelog is read committed)."""
        query = self.query
        query.stores.reset()
        self._attach_state()
        query.open_topology(self._partitions, again=True)

    # --- the loop --------------------------------------------------------------------------------------
    def run(self, stop) -> None:
        """Open, then poll until the input ends, `until=` is reached or `stop` (an Event) is set."""
        try:
            self._run(stop)
        except BaseException:
            self.failed = True  # close() must not checkpoint what the failure left half done
            raise

    def _run(self, stop) -> None:
        query, conn = self.query, self.query.connection
        self.open(stop)
        deadline = None if query.timeout is None else time.monotonic() + query.timeout
        last_commit = time.monotonic()
        while not stop.is_set():
            if conn is not None and not self.bounded:  # a live query outlasts a broker outage
                self.metrics.unreachable_since = conn.unreachable_since
                if conn.unreachable and conn.probe():
                    self.metrics.unreachable_since = None
            try:
                self._poll_round()
            except TransactionAbortedError as e:
                if not self.checkpoint.transactional:
                    raise
                self.checkpoint.recover(e)
                continue
            self.metrics.lag = sum(r.lag() for r in self.readers)
            self.metrics.tick()
            failed = next((h for h in query.helpers if h.status == "failed"), None)
            if failed is not None:  # its input stopped coming: fail rather than wait forever
                raise StreamframeError(f"query {query.name!r} failed: its {failed.name!r} failed: "
                                       f"{failed.exception}")
            if self._done():
                break
            if deadline is not None and time.monotonic() > deadline:
                raise QueryTimeoutError(
                    f"query {query.name!r} did not finish within {query.timeout:g} s "
                    f"({self.metrics.records_in} records read); raise timeout= or check the input"
                )
            if not self.bounded and time.monotonic() - last_commit >= query.commit_interval:
                if conn is not None and conn.unreachable:
                    continue  # nothing can be made safe now: the checkpoint runs once the broker is back
                try:
                    self.checkpoint.run()
                except BrokerUnreachableError:  # it went away meanwhile, or its coordinator is loading
                    last_commit = time.monotonic() - query.commit_interval + 1.0  # again in a second
                    continue
                last_commit = time.monotonic()
        self._release_merged(final=True)
        self.checkpoint.run()

    def _poll_round(self) -> None:
        timeout = self.poll_timeout
        for reader in self.readers:
            if self.bounded and reader.at_end():
                continue  # nothing more will come: do not wait on it (a loaded global table)
            # The collector is held off while a batch is built and processed (runtime/gcpause.py);
            # while polling only when records are waiting, so an idle query never holds it off.
            with gc_paused(self._backlog.get(id(reader), self.bounded)):
                if self._read(reader, timeout):
                    timeout = 0  # other readers: take what they have, do not wait as well
            if self.output is not None:
                self.output.poll()
        self.idle()

    def idle(self) -> None:
        """The end of a poll round: release what the merger may, and what operators emit on the clock."""
        with gc_paused():
            self._release_merged()
            if self.deliver(self.topology.idle()):  # no one input record to route it by
                why = next(iter(self.query.sink.rejected.values()))
                raise DeliveryError(f"query {self.query.name!r}: {why}; nothing was committed")

    def close(self) -> None:
        if self.failed:  # a consumer's close revokes its partitions, which would checkpoint (commit) them
            for reader in self.readers:
                reader.on_revoke = None
        for part in (*self.readers, self.output):
            try:
                if part is not None:
                    part.close()
            except Exception:  # noqa: BLE001 - closing is best effort after a failure
                pass
        if self.instance is not None:
            self.instance.release()

    def _done(self) -> bool:
        if self.until_count is not None and self.metrics.records_in >= self.until_count:
            return True
        if not self.bounded:  # a live query over in-memory input only ends when that input does
            return all(r.bounded and r.at_end() for r in self.readers) and bool(self.readers)
        if self.until_ms is not None and self._all_passed():
            return True
        return all(r.at_end() for r in self.readers)

    def _all_passed(self) -> bool:
        ends = [k for r in self.readers for k in r.end]
        return bool(ends) and all(k in self._passed for k in ends)

    # --- one batch -------------------------------------------------------------------------------------
    def _read(self, reader, timeout: float) -> bool:
        """Poll `reader` once and process what came; whether anything came. The batch's objects are
        gone when this returns, so the collector, turned back on after it, need not look at them."""
        batches = reader.poll(self.batch_size, timeout)
        self._backlog[id(reader)] = sum(map(len, batches.values())) >= self.batch_size // 2
        got = bool(batches)
        with gc_paused():
            for topic, raw in batches.items():
                if self.until_count is not None:
                    left = self.until_count - self.metrics.records_in
                    if left < len(raw):
                        raw = raw.head(max(left, 0))
                if len(raw):
                    self.process(topic, raw)
            batches = raw = None  # noqa: F841 - freed before the collector is back on
        return got

    def process(self, topic: str, raw) -> None:
        """Push one raw batch from `topic` through the topology and write what comes out.
        The batch counts as read once it went through, so a reader who sees `records_in` reach n
        also sees the state those n records made."""
        self._push_raw(topic, raw)
        self.metrics.records_in += len(raw)
        self.metrics.batches += 1

    def _push_raw(self, topic: str, raw) -> None:
        if topic in self.rekeyed:
            from streamframe.runtime.repartition import restore_keys

            raw = restore_keys(raw)
        for src in self.by_topic[topic]:
            if self.merger is not None and topic not in self.global_topics:
                if self.hold is not None:
                    self.merger.add(src.id, raw.materialized(), self.hold(raw))
                    continue
                frame, errors = self.topology.decode(src.id, raw)
                if errors:
                    self.routing.route(src, raw, errors)
                # held until released: its fields as lists, not the consumed messages behind them
                self.merger.add(src.id, raw.materialized(), frame)
                continue
            result = self.topology.process(src.id, raw, self.wanted_metadata)
            if result.errors:
                self.routing.route(src, raw, result.errors)
            if self.deliver(result):  # output too large to produce: routed as its input record's error
                if self.aggregates:
                    why = next(iter(self.query.sink.rejected.values()))
                    raise DeliveryError(f"query {self.query.name!r}: an aggregate's row: {why}; raise the "
                                        "topic's max.message.bytes or aggregate less; nothing was committed")
                self.routing.route(src, raw, self._rejected(len(raw)))

    def _release_merged(self, final: bool = False) -> None:
        """Push a join's inputs in event-time order, as far as no input known to hold more records
        lags behind (Kafka Streams waits for a partition with data in flight the same way)."""
        if self.merger is None:
            return
        safe, ahead = (float("inf"), None) if final else self._safe_time()
        sources = {s.id: s for s in self.query.root.sources()}
        for src_id, parts, chunk in self.merger.release(safe, ahead):
            result = self.topology.push(src_id, chunk)
            for raw, errors in locate(parts, result.errors):
                self.routing.route(sources[src_id], raw, errors)
            if self.deliver(result):
                for raw, errors in locate(parts, self._rejected()):
                    self.routing.route(sources[src_id], raw, errors)

    def _safe_time(self) -> tuple[float, dict | None]:
        """(the time every pending input partition has reached, {the stream of stream–table joins: the
        time the other inputs' pending partitions have reached} — see merge.ahead_source)."""
        if not self._ahead_known:
            merged = [s for s in self.query.root.sources() if s.topic not in self.global_topics]
            self._ahead = ahead_source(self.query.root, self.topology.ops, merged)
            self._ahead_known = True
        safe = others = float("inf")
        for reader in self.readers:
            if reader is self.global_reader:
                continue
            for topic, part in reader.pending_partitions():
                for src in self.by_topic.get(topic, []):
                    frontier = self.merger.frontier(src.id, part)
                    safe = min(safe, frontier)
                    if src.id != self._ahead:
                        others = min(others, frontier)
        return safe, None if self._ahead is None else {self._ahead: others}

    def deliver(self, result) -> bool:
        """Write a BatchResult's rows (up to `until=` a time) to the sink, and count them; whether the
        sink rejected some (see _rejected)."""
        self.metrics.late_drops = sum(op.late_drops for op in self.topology.stateful)
        out = result.frame()
        if out is None or not len(out):
            return False
        if "_timestamp" in out.columns:
            latest = int(datetime_to_ms(out["_timestamp"]).max())
            if self.metrics.stream_time is None or latest > self.metrics.stream_time:
                self.metrics.stream_time = latest
        if self.until_ms is not None:
            out = self._before_until(out)
        if len(out):
            self.metrics.records_out += self.query.sink.write(out)
        return bool(self.query.sink.rejected)

    def _rejected(self, positions: int | None = None) -> dict[int, str]:
        """The rows the sink could not write (too large for the topic), taken from it: {the input record's
        position: why}. DeliveryError where a row is not one input record's (`positions`: the batch's)."""
        rejected = dict(self.query.sink.rejected)
        self.query.sink.rejected.clear()
        labels = list(rejected)
        if positions is not None and not all(isinstance(x, (int, np.integer)) and 0 <= x < positions
                                             for x in labels):
            raise DeliveryError(f"query {self.query.name!r}: {rejected[labels[0]]}; nothing was committed")
        return {int(x): why for x, why in rejected.items()}

    def _before_until(self, out: pd.DataFrame) -> pd.DataFrame:
        ms = datetime_to_ms(out["_timestamp"])
        late = ms > self.until_ms
        if late.any():
            for part in np.unique(out["_partition"].to_numpy()[late]):
                for reader in self.readers:
                    for key in reader.end:
                        if key[1] == int(part):
                            self._passed.add(key)
        return out[~late]


def _parse_until(until):
    """until= "end" | a record count | a time (datetime, ISO string or epoch ms) → (count, ms)."""
    if until is None or until == "end":
        return None, None
    if isinstance(until, (int, np.integer)) and not isinstance(until, bool):
        if until < 0:
            raise ConfigError(f"until= a count must be >= 0, got {until}")
        return int(until), None
    try:
        ms, ok = to_epoch_ms(pd.Series([pd.Timestamp(until) if isinstance(until, str) else until]))
    except (ValueError, TypeError):
        ok = [False]
    if not ok[0]:
        raise ConfigError(f"until= must be 'end', a record count or a time, got {until!r}")
    return None, int(ms[0])
