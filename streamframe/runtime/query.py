"""A Query: one topology, its readers, its sink, one background thread (or the caller's, when bounded).

The loop takes a batch from each reader, pushes it through the topology depth-first, writes the outputs,
routes failed records by their source's `on_error`, and checkpoints on an interval: first every output
record is delivered (producer flush), then the input offsets are committed — at-least-once.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pandas as pd

from streamframe.errors import ConfigError, QueryTimeoutError, RecordError, StreamframeError
from streamframe.plan.nodes import Join, KafkaSource, Node, PandasSource
from streamframe.records import META, RECORD_BYTES
from streamframe.runtime.context import Context
from streamframe.runtime.gcpause import gc_paused
from streamframe.runtime.merge import TimeMerger, ahead_source, locate
from streamframe.runtime.readers import PandasReader
from streamframe.runtime.sinks import KafkaDeadLetters, MemoryDeadLetters
from streamframe.runtime.topology import Topology
from streamframe.state.manager import StoreManager
from streamframe.time.extract import datetime_to_ms, to_epoch_ms

log = logging.getLogger("streamframe.query")
ON_ERROR = ("dead_letter", "skip", "fail")


class Metrics:
    """Counters of a query, safe to read from any thread."""

    def __init__(self):
        self.records_in = self.records_out = self.errors = self.dead_letters = self.skipped = self.batches = 0
        self.late_drops = 0
        self.lag = 0
        self.rate = 0.0
        self.stream_time: int | None = None
        self.started = time.time()
        self._rate_mark = (time.monotonic(), 0)

    def tick(self) -> None:
        now, before = time.monotonic(), self._rate_mark
        if now - before[0] >= 1.0:
            self.rate = (self.records_in - before[1]) / (now - before[0])
            self._rate_mark = (now, self.records_in)

    def snapshot(self, status: str, last_error: str | None) -> dict:
        return {
            "status": status,
            "records_in": self.records_in,
            "records_out": self.records_out,
            "records_per_s": round(self.rate, 1),
            "lag": self.lag,
            "errors": self.errors,
            "dead_letters": self.dead_letters,
            "skipped": self.skipped,
            "late_drops": self.late_drops,
            "batches": self.batches,
            "stream_time": None if self.stream_time is None else pd.Timestamp(self.stream_time, unit="ms", tz="UTC"),
            "uptime_s": round(time.time() - self.started, 1),
            "last_error": last_error,
        }


class Query:
    """A running (or finished) topology. Make one with `frame.start()`, `frame.run()` or a sink.

        >>> q = frame.start(name="big-trades")     # doctest: +SKIP
        >>> q.status, q.metrics["records_in"]      # doctest: +SKIP
        ('running', 1520)
        >>> q.stop()                               # doctest: +SKIP
    """

    def __init__(self, root: Node, sink, *, name: str, connection=None, bounded: bool = False,
                 until=None, timeout: float | None = None, batch_size: int = 50_000,
                 commit_interval: float = 5.0, poll_timeout: float = 0.1, state: str = "sqlite",
                 state_dir=None, changelog: bool = True):
        self.root, self.sink, self.name = root, sink, name
        self.connection = connection
        self.bounded = bounded
        self.timeout = timeout
        # 50,000 records: a batch's consumed messages (about 16 MB of Python objects at 100-byte records)
        # are small enough that their memory is reused, not handed back to the OS and faulted in again
        # for the next batch; 100,000 ran workload 1 about 8% slower, and workloads 2 and 3 no faster
        # (benchmarks/README.md).
        self.batch_size = batch_size
        self._backlog: dict[int, bool] = {}  # per reader: its last poll came back (about) full
        self.commit_interval = commit_interval
        self.poll_timeout = poll_timeout
        if state not in ("sqlite", "memory"):
            raise ConfigError(f"state must be 'sqlite' or 'memory', got {state!r}")
        self.state, self.state_dir, self.changelog = state, state_dir, changelog
        self.durable = None
        self.topology = Topology(root)
        self.stores = StoreManager(name, self.topology.positions)
        self.clock = time.monotonic
        self._opened = False
        self._input_partitions = None
        self._until_count, self._until_ms = _parse_until(until)
        # Metadata columns the output's reader uses (a source may leave the others out, plan/metadata.py):
        # the sink's, the event time (stream time in metrics), the partition when stopping at a time.
        self._wanted_metadata = frozenset(getattr(sink, "metadata", META)) | {"_timestamp"} | \
            ({"_partition"} if self._until_ms is not None else set())
        self.topology.project_values(splice=RECORD_BYTES in self._wanted_metadata)
        self.status = "created"
        self.exception: BaseException | None = None
        self.metrics_ = Metrics()
        self.output = None
        self.readers: list = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._by_topic: dict[str, list[Node]] = {}
        self._passed: set[tuple[str, int]] = set()
        for src in root.sources():
            if src.on_error not in ON_ERROR:
                raise ConfigError(f"on_error must be one of {', '.join(ON_ERROR)}, got {src.on_error!r}")
            topic = src.topic if isinstance(src, KafkaSource) else f"pandas:{src.id}"
            self._by_topic.setdefault(topic, []).append(src)
        self.dead_letters = MemoryDeadLetters()
        self._helpers: list[Query] = []  # queries this one runs for it (repartition copies)
        self._rekeyed: set[str] = set()  # repartition topics of a re-keyed stream (runtime/repartition.py)
        self._global = {s.topic for s in root.sources() if getattr(s, "global_table", False)}
        joins = [n for n in root.walk() if isinstance(n, Join) and n.join != "global"]
        self.merger = TimeMerger({s.id: 0 if getattr(s, "table", False) else 1 for s in root.sources()}) \
            if joins else None

    # --- public handle -----------------------------------------------------------------------
    @property
    def group_id(self) -> str:
        app = self.connection.app_id if self.connection else "streamframe"
        return f"{app}.{self.name}"

    @property
    def in_memory(self) -> bool:
        """Whether every input is an in-memory DataFrame (sf.from_pandas), no topic."""
        return all(isinstance(s, PandasSource) for s in self.root.sources())

    @property
    def metrics(self) -> dict:
        """records in and out, records/s, consumer lag, errors, dead letters, stream time, ..."""
        last = None if self.exception is None else str(self.exception)
        return self.metrics_.snapshot(self.status, last)

    def start(self) -> Query:
        self._thread = threading.Thread(target=self._run_guarded, name=f"streamframe-{self.name}", daemon=True)
        self.status = "running"
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> Query:
        """Stop after the current batch: outputs are delivered and offsets committed first."""
        for helper in self._helpers:
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

    def __repr__(self) -> str:
        m = self.metrics
        return (f"<Query {self.name!r} {self.status}: {m['records_in']} in, {m['records_out']} out, "
                f"{m['errors']} errors, sink: {self.sink!r}>")

    # --- the loop ----------------------------------------------------------------------------
    def run_here(self) -> Query:
        """Run on the calling thread until the bounded end (or stop()); raises on failure."""
        self.status = "running"
        self._run_guarded()
        if self.exception is not None:
            raise self.exception
        return self

    def _run_guarded(self) -> None:
        try:
            self._run()
            self.status = "stopped" if self._stop.is_set() else "finished"
        except BaseException as exc:  # noqa: BLE001 - the query's thread must record every failure
            self.status = "failed"
            if self.connection is not None and not isinstance(exc, StreamframeError):
                exc = StreamframeError(f"query {self.name!r} failed: {self.connection.scrub(exc)}")
            self.exception = exc
            log.error("query %s failed: %s", self.name, exc)
        finally:
            for helper in self._helpers:  # a failed query's copies stop with it
                helper._stop.set()
            for reader in self.readers:
                try:
                    reader.close()
                except Exception:  # noqa: BLE001 - closing is best effort after a failure
                    pass

    def input_partitions(self) -> int:
        """The most partitions of an input topic (asked once: the sink and the operators both want it)."""
        if self._input_partitions is None:
            topics = [s.topic for s in self.root.sources() if isinstance(s, KafkaSource)]
            self._input_partitions = max(self.connection.require_topics(topics).values(), default=1) if topics else 1
        return self._input_partitions

    def _open(self) -> None:
        if self.connection is not None and self.merger is not None:
            from streamframe.runtime.repartition import check_copartitioned

            check_copartitioned(self)  # may swap a side for its repartition topic
        kafka_topics = [t for t, srcs in self._by_topic.items()
                        if isinstance(srcs[0], KafkaSource) and t not in self._global]
        if self.connection is not None:
            from streamframe.kafka.reader import KafkaReader
            from streamframe.kafka.writer import Output

            self.output = Output(self.connection)
            self.dead_letters = KafkaDeadLetters(self)
            if kafka_topics:
                group = None if self.bounded else self.group_id
                self.readers.append(KafkaReader(self.connection, kafka_topics, group, bounded=self.bounded))
            if self._global:  # every partition, no group: each instance holds the whole table
                self.global_reader = KafkaReader(self.connection, sorted(self._global), bounded=self.bounded,
                                                 assign=True)
        for topic, srcs in self._by_topic.items():
            if isinstance(srcs[0], PandasSource):
                self.readers.append(PandasReader(srcs[0], topic))
        self.sink.open(self)
        if not self.bounded and self.topology.stateful and self.connection is not None:
            self._attach_state()
        self.open_topology(self.input_partitions() if self.connection is not None else 1)
        seed = getattr(self.topology.root_op, "current_rows", None)
        if seed is not None and hasattr(self.sink, "index_names"):
            rows = seed()
            if rows is not None:
                self.sink.write(rows)  # a restored table shows its whole state, not only new changes
        start = dict(self.stores.restored_offsets) or dict(getattr(self.sink, "offsets", dict)())
        if getattr(self, "global_reader", None) is not None:
            self._load_global_tables()
        for reader in self.readers:
            reader.on_revoke = self._checkpoint
            if hasattr(reader, "start_offsets"):
                reader.start_offsets = start
            reader.open()

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
        """Durable state: the query's SQLite file, or its changelog topics when the file is gone."""
        from streamframe.state.durable import SqliteState, default_state_dir

        if self.state == "sqlite":
            path = (self.state_dir or default_state_dir()) / self.connection.app_id / f"{self.name}.sqlite"
            self.durable = SqliteState.open(path) or SqliteState(path)
        read = None
        if self.changelog:
            from streamframe.kafka.reader import read_topic

            existing = set(self.connection.topics())
            read = lambda topic: read_topic(self.connection, topic) if topic in existing else []  # noqa: E731
        self.stores.attach(self.durable, self.connection.app_id, read)

    def open_topology(self, partitions: int) -> None:
        """Give the operators their context (partition count for re-keyed groups, stores, clock)."""
        if not self._opened:
            self.topology.open(Context(self.stores, partitions=partitions, clock=lambda: self.clock()))
            self._opened = True

    def _run(self) -> None:
        self._open()
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        last_commit = time.monotonic()
        while not self._stop.is_set():
            timeout = self.poll_timeout
            for reader in self.readers:
                if self.bounded and reader.at_end():
                    continue  # nothing more will come: do not wait on it (a loaded global table)
                # The collector is held off while a batch is built and processed, until the batch is
                # gone (runtime/gcpause.py); while polling only when records are waiting, so an idle
                # query never holds it off.
                with gc_paused(self._backlog.get(id(reader), self.bounded)):
                    if self._read(reader, timeout):
                        timeout = 0  # other readers: take what they have, do not wait as well
                if self.output is not None:
                    self.output.poll()
            with gc_paused():
                self._release_merged()
                self._deliver(self.topology.idle())
            self.metrics_.lag = sum(r.lag() for r in self.readers)
            self.metrics_.tick()
            failed = next((h for h in self._helpers if h.status == "failed"), None)
            if failed is not None:  # its input stopped coming: fail rather than wait forever
                raise StreamframeError(f"query {self.name!r} failed: its {failed.name!r} failed: {failed.exception}")
            if self._done():
                break
            if deadline is not None and time.monotonic() > deadline:
                raise QueryTimeoutError(
                    f"query {self.name!r} did not finish within {self.timeout:g} s "
                    f"({self.metrics_.records_in} records read); raise timeout= or check the input"
                )
            if not self.bounded and time.monotonic() - last_commit >= self.commit_interval:
                self._checkpoint()
                last_commit = time.monotonic()
        self._release_merged(final=True)
        self._checkpoint()

    def _done(self) -> bool:
        if self._until_count is not None and self.metrics_.records_in >= self._until_count:
            return True
        if not self.bounded:  # a live query over in-memory input only ends when that input does
            return all(getattr(r, "bounded", False) and r.at_end() for r in self.readers) and bool(self.readers)
        if self._until_ms is not None and self._all_passed():
            return True
        return all(r.at_end() for r in self.readers)

    def _all_passed(self) -> bool:
        ends = [k for r in self.readers for k in getattr(r, "end", {})]
        return bool(ends) and all(k in self._passed for k in ends)

    def processed_offsets(self) -> dict[tuple[str, int], int]:
        """Per input partition, the next offset not yet fully processed: the consumer's position,
        held back to the first record a join still holds in its merger."""
        offsets: dict = {}
        for reader in self.readers:
            offsets.update(reader.positions() if hasattr(reader, "positions") else {})
        if self.merger is not None:
            for key, first in self.merger.pending_offsets().items():
                offsets[key] = min(offsets.get(key, first), first)
        return offsets

    def _checkpoint(self) -> None:
        offsets = self.processed_offsets()
        if self.durable is not None or (self.changelog and self.stores.changelog is not None):
            produce = self._changelog_producer() if self.changelog else None
            with gc_paused():  # a row's worth of objects per changed key (runtime/gcpause.py)
                changes = self.stores.checkpoint(offsets, produce)
            if self.output is not None:
                self.output.flush()
            if self.durable is not None:
                with gc_paused():
                    self.durable.save(changes, offsets)
        elif self.output is not None:
            self.output.flush()
        for reader in self.readers:
            reader.commit(offsets)

    def _changelog_producer(self):
        created = getattr(self, "_changelogs", set())
        self._changelogs = created

        def produce(topic, records):
            if topic not in created:
                self.connection.ensure_topic(topic, 1, {"cleanup.policy": "compact"})
                created.add(topic)
            # one call for the store's records: 200,000 rows through produce() one by one took 0.5 s
            self.output.produce_many(topic, [v for _, v in records], [k for k, _ in records], [0] * len(records))

        return produce

    # --- one batch ---------------------------------------------------------------------------
    def _read(self, reader, timeout: float) -> bool:
        """Poll `reader` once and process what came; whether anything came. The batch's objects are
        gone when this returns, so the collector, turned back on after it, need not look at them."""
        batches = reader.poll(self.batch_size, timeout)
        self._backlog[id(reader)] = sum(map(len, batches.values())) >= self.batch_size // 2
        got = bool(batches)
        with gc_paused():
            for topic, raw in batches.items():
                if self._until_count is not None:
                    left = self._until_count - self.metrics_.records_in
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
        self.metrics_.records_in += len(raw)
        self.metrics_.batches += 1

    def _push_raw(self, topic: str, raw) -> None:
        if topic in self._rekeyed:  # a re-keyed copy of a stream: its records' own keys come back
            from streamframe.runtime.repartition import restore_keys

            raw = restore_keys(raw)
        for src in self._by_topic[topic]:
            if self.merger is not None and topic not in self._global:
                frame, errors = self.topology.decode(src.id, raw)
                if errors:
                    self._failed_records(src, raw, errors)
                # held until released: its fields as lists, not the consumed messages behind them
                self.merger.add(src.id, raw.materialized(), frame)
                continue
            result = self.topology.process(src.id, raw, self._wanted_metadata)
            if result.errors:
                self._failed_records(src, raw, result.errors)
            self._deliver(result)

    def _release_merged(self, final: bool = False) -> None:
        """Push a join's inputs in event-time order, as far as no input known to hold more records
        lags behind (Kafka Streams waits for a partition with data in flight the same way)."""
        if self.merger is None:
            return
        safe, ahead = (float("inf"), None) if final else self._safe_time()
        sources = {s.id: s for s in self.root.sources()}
        for src_id, parts, chunk in self.merger.release(safe, ahead):
            result = self.topology.push(src_id, chunk)
            for raw, errors in locate(parts, result.errors):
                self._failed_records(sources[src_id], raw, errors)
            self._deliver(result)

    def _safe_time(self) -> tuple[float, dict | None]:
        """(the time every pending input partition has reached, {the stream of stream–table joins: the
        time the other inputs' pending partitions have reached} — see merge.ahead_source)."""
        if not hasattr(self, "_ahead"):
            merged = [s for s in self.root.sources() if getattr(s, "topic", None) not in self._global]
            self._ahead = ahead_source(self.root, self.topology.ops, merged)
        safe = others = float("inf")
        for reader in self.readers:
            if reader is getattr(self, "global_reader", None) or not hasattr(reader, "pending_partitions"):
                continue
            for topic, part in reader.pending_partitions():
                for src in self._by_topic.get(topic, []):
                    frontier = self.merger.frontier(src.id, part)
                    safe = min(safe, frontier)
                    if src.id != self._ahead:
                        others = min(others, frontier)
        return safe, None if self._ahead is None else {self._ahead: others}

    def _deliver(self, result) -> None:
        self.metrics_.late_drops = sum(getattr(op, "late_drops", 0) for op in self.topology.stateful)
        out = result.frame()
        if out is None or not len(out):
            return
        if "_timestamp" in out.columns:
            latest = int(datetime_to_ms(out["_timestamp"]).max())
            if self.metrics_.stream_time is None or latest > self.metrics_.stream_time:
                self.metrics_.stream_time = latest
        if self._until_ms is not None:
            out = self._before_until(out)
        if len(out):
            self.metrics_.records_out += self.sink.write(out)

    def _before_until(self, out: pd.DataFrame) -> pd.DataFrame:
        ms = datetime_to_ms(out["_timestamp"])
        late = ms > self._until_ms
        if late.any():
            for part in np.unique(out["_partition"].to_numpy()[late]):
                for reader in self.readers:
                    for key in getattr(reader, "end", {}):
                        if key[1] == int(part):
                            self._passed.add(key)
        return out[~late]

    def _failed_records(self, src: Node, raw, errors: dict[int, str]) -> None:
        self.metrics_.errors += len(errors)
        for pos in sorted(errors):
            record, reason = raw.record(pos), errors[pos]
            if self.connection is not None:
                reason = self.connection.scrub(reason)
            if src.on_error == "fail":
                raise RecordError(
                    f"record {record['topic']}[{record['partition']}]@{record['offset']} failed: {reason} "
                    f"(on_error='fail'; use on_error='dead_letter' to route bad records to {src.dlq_topic})"
                )
            if src.on_error == "skip":
                self.metrics_.skipped += 1
                log.warning("skipped record %s[%s]@%s: %s", record["topic"], record["partition"],
                            record["offset"], reason)
            else:
                self.dead_letters.send(src.dlq_topic, record, reason, self.name)
                self.metrics_.dead_letters += 1


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
