"""Kafka Streams 4.3.1 as a correctness oracle for streamframe's windowed aggregations (DESIGN §2 "Time", §6).

``build_oracle()`` compiles ``tests/oracle/kstreams`` (a one-class Kafka Streams app) with Maven once and
caches classes + runtime jars; ``run_window_oracle(bootstrap, topic, window=...)`` runs it on a topic and
returns its final windowed ``count``/``sum`` per key as a DataFrame. ``tests/oracle/rules.py`` evaluates the
same rules in plain Python.

Semantics streamframe must match (tumbling, hopping, session, sliding)
=====================================================================
Read from the kafka-streams 4.3.1 sources (the ``-sources.jar`` on Maven Central; same code in
apache/kafka). Topology:
``groupByKey().windowedBy(...).aggregate(...).suppress(untilWindowCloses(unbounded()))``
with ``statestore.cache.max.bytes=0`` (every update forwarded at once) and the default RocksDB stores.

(a) Windows of a timestamp, tumbling/hopping — ``TimeWindows.windowsFor(ts)``:
    ``start0 = (max(0, ts - size + advance) // advance) * advance``; windows ``[s, s + size)`` for
    ``s = start0, start0 + advance, ...`` while ``s <= ts``. I.e. every ``s = k*advance`` (aligned to epoch 0)
    with ``ts - size < s <= ts`` and ``s >= 0``: no window starts before 0, so a small ts is in fewer
    hopping windows. Tumbling is ``advance == size``. ``TimeWindow``: start inclusive, end exclusive,
    ``window_end = start + size``.

(b) Late drop.
    Time windows — ``KStreamWindowAggregate.KStreamWindowAggregateProcessor.process``:
    ``updateObservedStreamTime(ts)`` first, then ``closeTime = observedStreamTime - grace``; for each window
    of (a), the record is aggregated iff ``windowEnd > closeTime``, else skipped ("Skipping record for
    expired window", ``AbstractKStreamTimeWindowAggregateProcessor.logSkippedRecordForExpiredWindow``),
    counted once *per skipped window* in ``dropped-records``. So with hopping windows one record can be
    added to its newer windows and dropped from its older ones.
    Session windows — ``KStreamSessionWindowAggregate.KStreamSessionWindowAggregateProcessor.process``:
    ``observedStreamTime = max(observedStreamTime, ts)``; ``closeTime = observedStreamTime - grace - gap``;
    the merged session of (d) is computed first; the record is dropped iff ``mergedWindow.end() < closeTime``
    (strict: ``end == observedStreamTime - grace - gap`` is still accepted). It is the merged session's end
    that counts, not the record's ts. One drop = one count.

(c) Stream time. Each processor (window aggregate, session aggregate, suppress) keeps its own
    ``observedStreamTime`` field (starts at -1, in memory only), the max over the timestamps of the records
    it has processed. Processors are instantiated per task, and with ``groupByKey`` on one input topic
    there is one task per input partition: stream time is per partition, never global, and records of one
    partition never close windows of another. Records are processed in offset order within a partition.
    The current record is included before the late check. Late records are included too, but can never
    raise the max (a dropped record has ``ts < observedStreamTime``). Records with a null key are skipped
    before the update (counted as dropped). A negative extracted timestamp (our extractor returns -1 for a
    missing/invalid ``ts``) is dropped earlier by ``RecordQueue`` (counted). The task's
    ``PartitionGroup``/``RecordQueue.partitionTime`` is not what these processors use.

(d) Sessions — ``KStreamSessionWindowAggregate...process`` + ``SessionWindow`` + ``SessionKeySchema``:
    for a record (k, ts) the store is asked ``findSessions(k, earliestSessionEndTime=ts - gap,
    latestSessionStartTime=ts + gap)``: existing sessions of k with ``end >= ts - gap`` and
    ``start <= ts + gap`` (``SessionKeySchema.hasNextCondition``; both inclusive: a record exactly ``gap`` ms
    from a session merges). Merged session = ``[min(ts, starts), max(ts, ends)]``; its aggregate = the
    merger over the found sessions (ascending end, starting from the initializer) then the aggregator on the
    record; found sessions are removed (a tombstone is forwarded for each) and the merged one put. A
    session's start and end are the timestamps of its first and last record, both inclusive
    (single-record session: ``window_start == window_end == ts``; not ts + gap).
    Store retention matters: the RocksDB session store has retention ``gap + grace``
    (``SessionStoreMaterializer.retentionPeriod``) and ``AbstractRocksDBSegmentedBytesStore.fetch``
    (``getActualFrom``) only returns sessions with ``end >= storeStreamTime - (gap + grace) + 1``, where
    ``storeStreamTime`` is the store's own max session end put so far on that task (= max accepted ts
    *before* the current record). A session with ``end <= streamTime - gap - grace`` (already emitted by
    suppress, see (e)) is therefore never merged into: a non-late record within ``gap`` of it starts a new
    session. Example gap=10, grace=0 on one partition: a@0, b@10, a@10 gives a:[0,0] and a:[10,10].

(e) Emission — ``KTableSuppressProcessorSupplier.KTableSuppressProcessor.process/enforceConstraints``,
    ``FinalResultsSuppressionBuilder.buildFinalResultsSuppression``,
    ``TimeDefinitions.WindowEndTimeDefinition``, ``KTableImpl.buildSuppress`` →
    ``GraphGraceSearchUtil.findAndVerifyWindowGrace``. Buffer time of an update
    = its window end; suppress duration = ``grace`` for time windows, ``gap + grace`` for session windows
    (``SessionWindowedKStreamImpl``: ``gracePeriod = gracePeriodMs() + inactivityGap()``). For every update
    it receives: ``streamTime = max(streamTime, update.timestamp)``, buffer it (replacing the same windowed
    key), then evict while ``minBufferTime <= streamTime - suppressDuration``; evicted tombstones are dropped
    (``safeToDropTombstones``), the rest emitted. Hence a time window is emitted once, when
    ``windowEnd <= streamTime - grace`` — the same moment the aggregate starts rejecting it — and a session
    once, when ``end <= streamTime - gap - grace`` (a record accepted at exactly
    ``mergedEnd == streamTime - gap - grace`` is put and emitted at once; the retention rule of (d) stops
    it being merged again).
    Suppress's stream time is its own, a max over the timestamps of the updates the aggregate forwards:
    time windows forward with ``max(ts of the window's records)`` (``newTimestamp`` in (b)'s process),
    sessions with the session end (tombstones with the removed session's end). With caching off every
    accepted record is forwarded at once, so after each record it equals the aggregate's stream time (the
    max-ts record is always accepted; dropped/null-key records forward nothing and never raise the max).
    Emission is driven by records only: nothing is emitted at end of input or on wall-clock time, so windows
    the partition's last stream time has not closed are absent from the final output.

(f) Sliding windows — ``SlidingWindows.ofTimeDifferenceAndGrace(d, grace)`` →
    ``SlidingWindowedKStreamImpl`` → ``KStreamSlidingWindowAggregate.KStreamSlidingWindowAggregateProcessor``.
    Bounds: a window is ``TimeWindow(start, start + d)``, both ends *inclusive* (``SlidingWindows`` javadoc;
    ``emitRangeUpperBound``); ``Windowed.window().end()`` returns ``start + d``, and the output key (through
    the suppress buffer's ``FullTimeWindowedSerde(keySerde, d)``) carries that end:
    ``window_end = start + d``. Windows never start before 0. ``d = 0`` is accepted by ``SlidingWindows``
    but the first record then fails (``TimeWindow``: "Window endMs must be greater than window startMs"),
    so d > 0 in practice.
    Windows exist only where the set of records changes: a record at ts has its *left* window
    ``[ts - d, ts]`` and, once a later record of the key lies in ``(ts, ts + 1 + d]``, its *right* window
    ``[ts + 1, ts + 1 + d]``. A stored window's value carries a timestamp (``ValueTimestampHeaders``) =
    the max ts of the records aggregated into it.
    ``process(record)``: null key (or value) → dropped (counted). ``updateObservedStreamTime(ts)``,
    ``closeTime = observedStreamTime - grace``. If ``ts + d < closeTime`` the whole record is dropped
    (``logSkippedRecordForExpiredWindow``, one count): even ``[ts, ts + d]`` is closed. Else
    ``ts < d`` → ``processEarly``, otherwise ``processReverse`` (the default RocksDB window store supports
    ``backwardFetch``, probed once; ``processInOrder`` is only for stores that do not).
    ``updateWindowAndForward(window, value)`` — the only way a record enters a window: if
    ``window.end() >= closeTime`` (inclusive: note the contrast with (b)'s strict ``>``), put
    ``aggregator(record, value)`` with timestamp ``max(ts, value.timestamp)`` and forward it; else skip it
    (one dropped-records count per closed window). New windows start from ``value`` = the initializer
    (timestamp ts) or from a copy of a neighbour's aggregate, as below.
    ``processReverse``: ``backwardFetch(key, max(0, ts - 2d), ts + 1)`` — windows of the key with start in
    that range, newest start first — and for each (collecting their starts):
      start == ts + 1 → the record's right window exists (``rightWinAlreadyCreated``);
      end > ts (so start <= ts: the window contains ts) → the first such one's *pre-update* value is
      ``rightWinAgg``; the window is updated;
      end == ts → the left window exists: updated; if its timestamp < ts, ``previousRecordTimestamp`` = that
      timestamp, else (a record at ts came before) *return* — nothing else is created;
      end < ts → ``leftWinAgg`` = its value, ``previousRecordTimestamp`` = its timestamp; stop iterating.
    Then ``createWindows``: (1) the previous record's right window ``[p + 1, p + 1 + d]``
    (p = previousRecordTimestamp) if its start was not seen and ``p + 1 + d >= ts``: initializer + record;
    (2) unless the left window exists, ``[ts - d, ts]`` = (``leftWinAgg``'s value if ``ts - d <= p``,
    else the initializer) + record; (3) unless the right window exists, if ``rightWinAgg`` is set and its
    timestamp > ts (a later record is in it): put ``[ts + 1, ts + 1 + d]`` = a copy of ``rightWinAgg``
    (value and timestamp; the record is *not* added; no close check) and forward it
    (``createCurrentRecordRightWindow``). Steps (1) and (2) go through ``updateWindowAndForward``.
    ``processEarly`` (0 <= ts < d): ``[0, d]`` (the "combined window") stands in for every left window.
    ``fetch(key, 0, ts + 1)`` ascending: start 0 → the combined window (``previousRecordTimestamp`` = its
    timestamp if < ts); 0 < start <= ts → updated, ``rightWinAgg`` = its pre-update value (the last one
    wins); start == ts + 1 → right window exists. Then: if no ``rightWinAgg`` and the combined window's
    timestamp > ts, ``rightWinAgg`` = the combined window's value; create the record's right window as in
    (3); create the previous record's right window ``[p + 1, p + 1 + d]`` if its start was not seen (no
    ``p + 1 + d >= ts`` test here); finally update ``[0, d]`` (from the initializer if it did not exist).
    Store and retention: ``SlidingWindowStoreMaterializer`` — ``persistentTimestampedWindowStore`` with
    retention ``2d + grace`` by default (a Materialized retention below that is rejected), window size d.
    The RocksDB segmented store keys windows by start and keeps its own ``observedStreamTime`` = the max
    window start ever put on the task (all keys); ``AbstractRocksDBSegmentedBytesStore.getActualFrom``
    hides windows with ``start < storeTime - retention + 1`` from every fetch. This changes results: with
    d=2, grace=1 on one partition, a@29, b@31, b@33 (puts b:[32,34], storeTime 32), a@30: a:[27,29] is
    hidden, so a@30 learns of no previous record, no a:[30,32] is made, and a@30 only meets its closed
    left window [28,30] (one drop). A put always lands in a live segment (every put window starts at or
    after ``storeTime - retention``), so the store's own expired-record drop never fires.
    Emission: suppress exactly as in (e) with suppress duration = grace (``buildWindowed(...,
    windows.gracePeriodMs(), ...)``) and buffer time = ``window.end()``: a window is emitted when
    ``start + d <= streamTime - grace``. Since the aggregate still updates a window at ``end == closeTime``,
    such a window can be emitted, updated and emitted again — even within one record: with grace 0, a
    record's first forwarded update raises suppress's stream time, which evicts a window that the same
    record then updates (e.g. a@2, a@8, a@5, a@13 with d=10: [3,13] comes out as {8,5}, then {8,5,13}).
    The left window of the newest record is final at once when grace = 0. As a table the last emission
    counts. Suppress's stream time equals the aggregate's after each record (the newest record's left
    window — or [0, d] for an early one — is always put with timestamp ts).

Aggregates: ``count`` = records aggregated; ``sum`` = double, accumulated in per-partition offset order
(``((0.0 + a1) + a2) + ...``; for sessions ``0.0 + found sessions' sums (ascending end) + amount``).
A missing or non-numeric sum field adds 0.0 and still counts (an oracle choice, not Kafka Streams').
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd

KAFKA_STREAMS_VERSION = "4.3.1"
PROJECT_DIR = Path(__file__).resolve().parent / "kstreams"
MAIN_CLASS = "streamframe.oracle.WindowOracle"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
MARKER = ".complete"
COLUMNS = ["key", "window_start", "window_end", "count", "sum"]


class OracleError(RuntimeError):
    """The oracle could not be built or did not run to completion."""


def _source_hash(project: Path = PROJECT_DIR) -> str:
    h = hashlib.sha256()
    files = [project / "pom.xml", *sorted(p for p in (project / "src").rglob("*") if p.is_file())]
    for path in files:
        h.update(str(path.relative_to(project)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "streamframe"


def oracle_dir(project: Path = PROJECT_DIR) -> Path:
    """Where the build of `project` (its current pom + sources) is (or will be) cached."""
    name = "kstreams" if project.name == "kstreams" else f"kstreams-{project.name.removeprefix('kstreams_')}"
    return _cache_root() / f"oracle-{name}-{KAFKA_STREAMS_VERSION}-{_source_hash(project)}"


def _tail(text: str, lines: int = 40) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text or "")
    return "\n".join(text.strip().splitlines()[-lines:])


def build_oracle(project: Path = PROJECT_DIR) -> Path:
    """Compile the oracle once; return its cache dir (``classes/`` and ``lib/*.jar`` inside).

    Runs ``mvn -B -q compile dependency:copy-dependencies`` in a scratch copy of ``tests/oracle/kstreams``
    (so the work tree gets no ``target/``), under a file lock, and marks the result complete only after a
    full copy. Raises OracleError with the tail of Maven's output if mvn is missing or fails.
    """
    dest = oracle_dir(project)
    if (dest / MARKER).exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f"{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (dest / MARKER).exists():  # built by another process while we waited
            return dest
        mvn = shutil.which("mvn")
        if mvn is None:
            raise OracleError(
                "Maven (mvn) is not on PATH; it is needed once to build the Kafka Streams oracle"
            )
        with tempfile.TemporaryDirectory(prefix="streamframe-oracle-build-") as tmp:
            work = Path(tmp) / project.name
            shutil.copytree(project, work, ignore=shutil.ignore_patterns("target"))
            staging = Path(tempfile.mkdtemp(prefix=f"{dest.name}.tmp-", dir=dest.parent))
            try:
                cmd = [
                    mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(work / "pom.xml"),
                    "compile", f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                    "-DincludeScope=runtime", f"-DoutputDirectory={staging / 'lib'}",
                ]  # fmt: skip
                try:
                    proc = subprocess.run(
                        cmd, cwd=work, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1800
                    )
                except subprocess.TimeoutExpired as exc:
                    raise OracleError(
                        "mvn did not finish building the Kafka Streams oracle in 30 minutes"
                    ) from exc
                if proc.returncode != 0:
                    raise OracleError(
                        f"mvn failed (exit {proc.returncode}) building the Kafka Streams oracle "
                        f"({' '.join(cmd[1:])})\n--- last lines of mvn output ---\n"
                        f"{_tail(proc.stdout + proc.stderr)}"
                    )
                shutil.copytree(work / "target" / "classes", staging / "classes")
                if not (staging / "lib" / f"kafka-streams-{KAFKA_STREAMS_VERSION}.jar").exists():
                    raise OracleError(
                        f"mvn finished but kafka-streams-{KAFKA_STREAMS_VERSION}.jar is not in {staging}"
                    )
                shutil.rmtree(dest, ignore_errors=True)
                staging.rename(dest)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        (dest / MARKER).write_text(f"kafka-streams {KAFKA_STREAMS_VERSION}\n")
    return dest


def java_command(project: Path, main_class: str, jvm: list[str], args: dict) -> list[str]:
    """The java command line running `main_class` of `project`'s build (``args`` are its options,
    ``size_ms`` → ``--size-ms``; None is left out); `jvm` are the JVM's own options."""
    home = build_oracle(project)
    java = shutil.which("java")
    if os.environ.get("JAVA_HOME") and (Path(os.environ["JAVA_HOME"]) / "bin" / "java").exists():
        java = str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    if java is None:
        raise OracleError("java is not on PATH (Java 17+ is needed to run Kafka Streams)")
    cp = os.pathsep.join([str(home / "classes"), str(home / "lib" / "*")])
    cmd = [java, *jvm, "-cp", cp, main_class]
    for name, value in args.items():
        if value is not None:
            cmd += [f"--{name.replace('_', '-')}", str(value)]
    return cmd


def oracle_command(main_class: str = MAIN_CLASS, project: Path = PROJECT_DIR, **args) -> list[str]:
    """The java command line for an oracle (``args`` are its options, ``size_ms`` → ``--size-ms``):
    a small heap and the quick compiler, for short runs."""
    return java_command(
        project, main_class, ["-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"], args
    )


def run_window_oracle(
    bootstrap: str,
    input_topic: str,
    *,
    window: str,
    size_ms: int | None = None,
    advance_ms: int | None = None,
    gap_ms: int | None = None,
    grace_ms: int = 0,
    ts_field: str = "ts",
    sum_field: str = "amount",
    timeout: float = 120,
    settle_ms: int = 2000,
) -> pd.DataFrame:
    """Run Kafka Streams over everything in ``input_topic`` now; return its final windowed count/sum.

    Columns key, window_start, window_end, count, sum, sorted by key, window_start. ``df.attrs["oracle"]``
    holds the app's summary: input_records, output_records, output_topic_records (what the broker holds),
    dropped_records (the ``dropped-records-total`` task metric), elapsed_ms, wall_s, and its stderr.
    A fresh output topic and application id are used each call; both are deleted afterwards.
    """
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    if window not in ("tumbling", "hopping", "session", "sliding"):
        raise ValueError(f"window must be 'tumbling', 'hopping', 'session' or 'sliding', got {window!r}")
    if window in ("tumbling", "hopping") and not size_ms:
        raise ValueError(f"{window} windows need size_ms")
    if window == "sliding" and (size_ms is None or size_ms < 0):
        raise ValueError("sliding windows need size_ms (the time difference) >= 0")
    if window == "hopping" and not advance_ms:
        raise ValueError("hopping windows need advance_ms")
    if window == "session" and not gap_ms:
        raise ValueError("session windows need gap_ms")

    build_oracle()  # outside the run's timeout
    suffix = uuid.uuid4().hex[:8]
    output_topic = f"{input_topic}-oracle-{suffix}"
    app_id = f"streamframe-oracle-{suffix}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        admin.create_topics([NewTopic(output_topic, 1, 1)])[output_topic].result(timeout=30)
    except KafkaException as exc:
        raise OracleError(f"cannot create oracle output topic {output_topic}: {exc}") from exc

    cmd = oracle_command(
        bootstrap=bootstrap, input=input_topic, output=output_topic, app_id=app_id, window=window,
        size_ms=size_ms, advance_ms=advance_ms if window == "hopping" else None,
        gap_ms=gap_ms, grace_ms=grace_ms, ts_field=ts_field, sum_field=sum_field,
        settle_ms=settle_ms, timeout_ms=int(max(5.0, timeout - 15) * 1000),
    )  # fmt: skip
    try:
        summary = run_oracle_process(cmd, timeout, "Kafka Streams oracle", _parse_summary)
        try:
            df = _read_topic(Consumer, TopicPartition, bootstrap, output_topic, summary["output_records"])
        except OracleError as exc:
            raise OracleError(f"{exc}\n--- oracle stderr tail ---\n{_tail(summary['stderr'])}") from exc
    finally:
        cleanup(admin, app_id, [output_topic])
    df.attrs["oracle"] = summary
    return df


def cleanup(admin, app_id: str, topics: list[str]) -> None:
    """Best effort: delete an oracle run's output `topics`, its Kafka Streams internal topics
    (`{app_id}-…`) and its consumer group."""
    try:
        internal = [t for t in admin.list_topics(timeout=10).topics if t.startswith(f"{app_id}-")]
    except Exception:  # noqa: BLE001 - best-effort cleanup
        internal = []
    for fut in admin.delete_topics(topics + internal, operation_timeout=30).values():
        try:
            fut.result(timeout=30)
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass
    try:
        for fut in admin.delete_consumer_groups([app_id], request_timeout=30).values():
            fut.result(timeout=30)
    except Exception:  # noqa: BLE001 - best-effort cleanup
        pass


def run_oracle_process(cmd: list[str], timeout: float, what: str, parse) -> dict:
    """Run an oracle's JVM to completion: its summary line parsed by `parse(stdout)`, with `wall_s`
    and `stderr` added; an OracleError with the output's tail when it times out, fails or prints none."""
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise OracleError(
            f"{what} did not finish in {timeout} s\n--- stderr tail ---\n"
            f"{_tail(exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or '')}"
        ) from exc
    summary = parse(proc.stdout)
    if proc.returncode != 0 or summary is None:
        raise OracleError(
            f"{what} failed (exit {proc.returncode})\n--- stdout ---\n{_tail(proc.stdout, 5)}"
            f"\n--- stderr tail ---\n{_tail(proc.stderr)}"
        )
    summary["wall_s"] = round(time.monotonic() - started, 2)
    summary["stderr"] = proc.stderr
    return summary


def _parse_summary(stdout: str) -> dict | None:
    for line in reversed((stdout or "").splitlines()):
        if line.startswith("oracle ") and "status=ok" in line:
            fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            return {
                "window": fields["window"],
                "input_records": int(fields["input_records"]),
                "output_records": int(fields["output_records"]),
                "output_topic_records": int(fields.get("output_topic_records", -1)),
                "dropped_records": int(fields["dropped_records"]),
                "elapsed_ms": int(fields["elapsed_ms"]),
            }
    return None


def _read_topic(Consumer, TopicPartition, bootstrap: str, topic: str, expected: int) -> pd.DataFrame:
    """Every record of partition 0 of ``topic``: at least ``expected`` and up to the high watermark.

    Each attempt uses a fresh consumer (a stuck first fetch was seen once under load); three attempts.
    """
    errors = []
    for _attempt in range(3):
        try:
            rows = _read_once(Consumer, TopicPartition, bootstrap, topic, expected, deadline_s=20)
            break
        except OracleError as exc:
            errors.append(str(exc))
    else:
        raise OracleError("; ".join(errors))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df = df.astype({"window_start": "int64", "window_end": "int64", "count": "int64", "sum": "float64"})
    return df.sort_values(["key", "window_start", "window_end"], kind="mergesort").reset_index(drop=True)


def _read_once(
    Consumer, TopicPartition, bootstrap: str, topic: str, expected: int, deadline_s: float
) -> list:
    from confluent_kafka import OFFSET_BEGINNING

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"streamframe-oracle-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    rows: list[dict] = []
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + deadline_s
        position = 0
        while True:
            if len(rows) >= expected:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
                if position >= high:
                    return rows
            if time.monotonic() > deadline:
                try:
                    watermarks = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
                except Exception as exc:  # noqa: BLE001 - only for the message
                    watermarks = repr(exc)
                raise OracleError(
                    f"timed out reading {topic}: {len(rows)} of {expected} records read "
                    f"(position {position}, watermarks {watermarks})"
                )
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error():
                    raise OracleError(f"error reading {topic}: {msg.error()}")
                rows.append(json.loads(msg.value()))
                position = msg.offset() + 1
    finally:
        consumer.close()
