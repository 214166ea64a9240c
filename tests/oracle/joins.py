"""Kafka Streams 4.3.1 as a correctness oracle for streamframe's joins (DESIGN §2 "Joins", issue 4).

``build_join_oracle()`` compiles ``tests/oracle/kstreams_joins`` (one class, ``JoinOracle``) with Maven once
and caches classes + runtime jars, like ``tests/oracle/kstreams.py`` does for the window oracle;
``run_join_oracle(bootstrap, mode, left, right, hows=...)`` runs it over two topics and returns, per join
kind, the records Kafka Streams wrote (key, JSON value or None for a tombstone, timestamp).
``final_table`` and ``rows_by_key`` turn those into what the tests compare.

Modes (all the ``hows`` of one mode run as joins of one topology over the same sources, so one JVM start
serves several comparisons):

* ``stream-table``: ``builder.stream(left).join|leftJoin(builder.table(right), merge)``; the stream must be
  produced keyed by the join key (no ``selectKey``, so no repartition topic is involved).
* ``table-table``: ``builder.table(left).join|leftJoin|outerJoin(builder.table(right), merge)``, output =
  the join's changelog (``toStream()``), tombstones as null values.
* ``fk``: ``builder.table(left).join|leftJoin(builder.table(right), v -> v[fk_field], merge)`` (the
  foreign-key join; a missing/null field gives a null foreign key).
* ``stream-stream``: ``builder.stream(left).join|leftJoin|outerJoin(builder.stream(right), merge,
  JoinWindows.ofTimeDifferenceAndGrace(within, grace))`` — for the stream–stream rules below (used by
  ``test_stream_stream_join_equals_kafka_streams``, an expected failure until streamframe has ``within=``).

``merge`` (the ``ValueJoiner``) copies the left JSON object, then the right object's fields except
``right_drop`` (the table key columns, which streamframe gives once); a right field whose name is a left
field (``left_fields``, or present in the left value) is renamed with the suffix ``_right``. A missing side
(left/outer joins) contributes no fields. ``key_field`` adds the record key to table outputs (streamframe's
table rows carry their key column).

Settings (as the window oracle): ``statestore.cache.max.bytes=0`` (every update forwarded), one stream
thread, at-least-once, ``commit.interval.ms=100``, event time = the record timestamp (the default
extractor: producers must set distinct timestamps > 0; confluent-kafka's ``timestamp=0`` means "now").
The app stops by itself once every input record present at start-up, and every record of its internal
(foreign-key subscription/response) topics, is consumed and committed, twice in a row a settle time
apart with no new output.

Which table version a stream record sees (stream–table)
=======================================================
Read from the kafka-streams 4.3.1 sources (``-sources.jar`` on Maven Central; same code in apache/kafka).

* A task owns partition *p* of every co-partitioned input (here: stream partition p and table partition
  p). ``StreamTask#process`` takes one record at a time from ``PartitionGroup#nextRecord``, which polls
  ``nonEmptyQueuesByTime`` — a ``PriorityQueue<RecordQueue>`` ordered by ``RecordQueue::headRecordTimestamp``,
  the *head* record's timestamp — so each step processes the buffered partition whose next record is
  oldest; within a partition, offset order. Over whole partitions this is the order of each record's
  running-maximum timestamp in its partition (an out-of-order record sits behind a newer one at the head
  and is taken right after it), which is what ``streamframe/runtime/merge.py`` sorts by. Ties between
  partitions are in ``PriorityQueue`` order (unspecified), hence the tests' distinct timestamps.
* ``StreamTask#isProcessable`` asks ``PartitionGroup#readyToProcess(wallClockTime)``: when some input
  partition of the task has no buffered record, it returns not-ready while the partition's fetched lag is
  unknown (-1) or > 0 ("must wait to poll the data we know to be on the broker"); when the lag is known
  to be 0 it waits until ``wallClockTime + max.task.idle.ms`` (``idlePartitionDeadlines``) and then
  processes the other partitions anyway ("enforced processing"). ``max.task.idle.ms = -1``
  (``MAX_TASK_IDLE_MS_DISABLED``) processes whatever is buffered at once — order then depends on fetch
  timing. The default 0 already waits for data the broker is known to hold; for the stream modes the
  oracle sets 2000 ms (``max_task_idle_ms``), a margin for stale lag metadata, so with all input
  produced before the app starts the task's order is exactly the timestamp merge above.
* ``KStreamKTableJoinProcessor#process`` → ``doJoin``: the table value is
  ``valueGetter.get(key)`` — the table's *current* value (non-versioned store; ``get(key, ts)`` only for a
  versioned store). Stream records with a null value (or null key on an inner join) are dropped;
  the result keeps the stream record's key and timestamp.
* ``KTableSource.KTableSourceProcessor#process`` applies an out-of-order table update anyway (it only
  logs "Detected out-of-order KTable update"), so "as of its own time" means "as of the merged order".

Table–table and foreign-key joins are compared on the final table only: Kafka Streams' intermediate
changelog (e.g. the tombstones ``KTableKTableInnerJoin`` forwards for keys that never joined, or the
foreign-key join's transient states) is not part of the contract.

Stream–stream windowed joins (KStream#join/leftJoin/outerJoin with JoinWindows), Kafka Streams 4.3.1
==================================================================================================
Classes: ``KStreamImplJoin#join`` builds, per side, a ``KStreamJoinWindow`` processor (puts the side's
records into its window store, "this"/"other" ``StreamJoinedStoreFactory``) feeding
``KStreamKStreamJoinLeftSide`` / ``KStreamKStreamJoinRightSide`` (both ``KStreamKStreamJoin``
processors), merged by a ``PassThrough``. ``leftJoin``: leftOuter=true, rightOuter=false; ``outerJoin``:
both true; ``join``: neither. The left processor gets ``outer = leftOuter``, the right one
``outer = rightOuter``; the right processor uses the reversed joiner, so results are always
``joiner(leftValue, rightValue)``.

Windows. ``JoinWindows.ofTimeDifferenceAndGrace(d, g)``: ``beforeMs = afterMs = d``, ``graceMs = g``,
``enableSpuriousResultFix = true`` (also ``ofTimeDifferenceWithNoGrace``, g = 0; the deprecated
``JoinWindows.of(d)`` has grace ``max(24h - 2d, 0)`` and *no* spurious-result fix: left/outer results
eagerly, as before 3.1). ``size() = beforeMs + afterMs``. Below B = beforeMs, A = afterMs, G = grace.

Match rule. A left record (k, t) and a right record (k, s) join iff ``t - B <= s <= t + A`` (both ends
inclusive). The left processor fetches the right store for key k over
``[max(0, t - B), max(0, t + A)]`` (``joinBeforeMs = B``, ``joinAfterMs = A``); the right processor
(``KStreamKStreamJoinRightSide`` passes ``windows.afterMs`` as its joinBeforeMs and ``windows.beforeMs`` as
its joinAfterMs) fetches the left store over ``[max(0, s - A), max(0, s + B)]``. Each match is forwarded
at once (inner results are never delayed), value ``joiner(left, right)``, key k, timestamp
``max(t, s)`` (``emitInnerJoin``); for one input record, matches come in the fetch order of the window
store: ascending other-side timestamp, duplicates of one timestamp in insertion order.

What a record can still match (store retention). The window stores have retention ``A + B + G``
(``StreamJoinedStoreFactory#retentionPeriod``); a record enters its own side's store after the join
processor has seen it (``KStreamJoinWindow#process``: ``forward`` then ``window.put``), if its key and value
are non-null. ``AbstractRocksDBSegmentedBytesStore`` keeps an ``observedStreamTime`` per store = the max
timestamp put into *that* store (one side's max, per task), and every fetch starts at
``getActualFrom(from) = max(from, observedStreamTime - retention + 1)``: a record of side X is visible to
the other side iff ``ts > maxTs(X) - (A + B + G)``. (Puts into a segment older than
``streamTime - retention`` are dropped, segment interval ``max(retention / 2, 60 s)``, but such records
are below the fetch bound anyway.) There is no separate "late record" drop in ``KStreamKStreamJoin``:
a late record still joins whatever the other store still shows.

Stream time. One ``TimeTracker`` per task shared by both processors (``TimeTrackerSupplier`` keyed by
``TaskId``): ``streamTime = max`` of the timestamps of all records either processor received — updated
first thing in ``process`` (``sharedTimeTracker.advanceStreamTime``), before null key/value records are
skipped (``StreamStreamJoinUtil#skipRecord``), so those advance it too. Per task = per co-partitioned
partition pair; never global. Records reach the processors in the task's timestamp-merge order above.

Left/outer non-joined results (the spurious-results fix, KIP-633/KAFKA-10847). Both processors share
one ``outerJoinStore`` (``OuterStreamJoinStoreFactory``, a ``ListValueStore``) keyed by
``TimestampedKeyAndJoinSide`` serialized as ``<8-byte big-endian ts><side byte: 1 = left, 0 = right><key>``
and iterated in byte order: by timestamp ascending, then **right before left** at equal timestamps, then
by key bytes; several records with the same (ts, side, key) are one list, in insertion order.
``KStreamKStreamJoinProcessor#process`` for a record (k, v, ts) on a processor with ``outer = true``:

1. ``streamTime = max(streamTime, ts)``.
2. Null key with non-null value on an outer processor: forward ``joiner(v, null)`` (timestamp ts) at
   once and stop (KIP-962). Otherwise null key or null value: dropped (``dropped-records``), stop.
3. If ``ts == streamTime`` (the record is not out of order) — ``emitNonJoinedOuterRecords`` — *before*
   the record's own join:

   a. return if ``minTime + joinAfterMs + G >= streamTime`` (``joinAfterMs`` of the *processing* side:
      A on the left processor, B on the right one); ``minTime`` starts at ``Long.MAX_VALUE`` (so the sum
      overflows negative and the check passes);
   b. throttle: return if ``currentSystemTimeMs < nextTimeToEmit``; else
      ``nextTimeToEmit = currentSystemTimeMs + emitInterval``. The interval is the internal config
      ``__emit.interval.ms.kstreams.outer.join.spurious.results.fix__`` (default 1000 ms, wall clock) —
      with the default, results depend on processing speed; the oracle sets 0 (always passes), the
      semantics a deterministic implementation should copy;
   c. ``minTime = Long.MAX_VALUE``; iterate the whole store in the order above; for each entry, first set
      ``minTime = entry.ts``; if both a left and a right entry were found still open, break; an entry is
      *open* iff ``minTime + lookBack + G >= streamTime``, lookBack = A for a left entry, B for a right
      entry — open entries are skipped (the side is marked open); any other entry is emitted:
      ``joiner(leftValue, null)`` / ``joiner(null, rightValue)``, key k, **timestamp = the entry's own
      ts**, then deleted. So a left record (k, t) is emitted as non-joined at the first in-order record
      (either side, any key of the task) with ``streamTime > t + A + G`` (strict), right records at
      ``streamTime > s + B + G`` — provided step (a) lets the scan run.
      Quirk to copy: after a scan ``minTime`` is the ts of the last entry *visited* (the break point, or
      the store's last entry), not the smallest entry left, and step (a) then skips scans while
      ``minTime + joinAfterMs + G >= streamTime`` even if an older entry has closed; new entries only
      lower it (``updatedMinTime(ts) = min``). E.g. left join d=10, g=0, left records of other keys at 105
      and 108 both still open at a scan: minTime = 108, so 105 is emitted only once streamTime > 118, not
      at 116 — and a late right record at 104 arriving in between still joins it (no null result).
4. Fetch the other store (match rule); forward each inner result; for every match, remove the *other*
   record's pending entry from the outer store (``emitInnerJoin``: ``putIfAbsent(otherKey, null)``, which
   on a ``ListValueStore`` deletes the whole (ts, side, key) list if present).
5. If this processor is outer and nothing matched: if ``timeTo < streamTime`` (timeTo = max(0, ts +
   joinAfterMs); **no grace** here) the record is already too old to wait — forward ``joiner(v, null)``
   at once with its own timestamp (and it still enters its window store, so a later out-of-order
   record of the other side may also inner-join it: both results appear); else
   ``updatedMinTime(ts)`` and put it into the outer store (emitted by 3 later, or removed by 4).

Checked on the broker with this oracle (one partition, ``within`` = 10): (i) grace 5, left a@100 then
records at 114, 115: nothing; at 114, 116: a@100 non-joined (strict ``>``); (ii) the quirk above: left
a@100, b@105, c@108, x@111, y@116, z@119, right w@117, b@104 → a@100 null, b joined @105, c@108 null (no
b-null); without c@108 → a null, b null @105 *and* b joined @105; (iii) grace 5, retention 25: left
j@126, k@109, right k@100, n@125 → k@100 not visible (no inner), with n@124 → inner k @109; (iv) grace
50, left h@170, q@150, right g@171, q@155 → q@150 null at once (150 + 10 < 170, grace ignored), then q
joined @155; (v) outer, right a@100 and left b@100 both expired → a (right-only) before b. Two runs of
the test's 240-record input gave identical outputs.

Nothing is emitted at end of input or on wall-clock time alone (only ``process`` triggers step 3), so
non-joined records whose window the last in-order record did not close never appear in a bounded run.
Inner join: only steps 1, 2 (drop), 4 (without the store). Right processor of a ``leftJoin``
(outer=false): steps 1, 2, 3 (it does run the emission of pending *left* entries when its record is in
order) and 4; it never stores its own unmatched records.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from tests.oracle import kstreams
from tests.oracle.kstreams import OracleError, _tail, cleanup, run_oracle_process

PROJECT_DIR = Path(__file__).resolve().parent / "kstreams_joins"
MAIN_CLASS = "streamframe.oracle.JoinOracle"
MODES = {
    "stream-table": ("inner", "left"),
    "table-table": ("inner", "left", "outer"),
    "fk": ("inner", "left"),
    "stream-stream": ("inner", "left", "outer"),
}

__all__ = [
    "OracleError", "build_join_oracle", "run_join_oracle", "final_table", "rows_by_key", "normalize",
]  # fmt: skip


def oracle_dir() -> Path:
    """Where the build for the current pom + sources is (or will be) cached."""
    return kstreams.oracle_dir(PROJECT_DIR)


def build_join_oracle() -> Path:
    """Compile the join oracle once (as ``kstreams.build_oracle``); return its cache dir."""
    return kstreams.build_oracle(PROJECT_DIR)


def oracle_command(**args) -> list[str]:
    """The java command line for JoinOracle (``args`` are its options, ``fk_field`` → ``--fk-field``)."""
    return kstreams.oracle_command(MAIN_CLASS, PROJECT_DIR, **args)


def run_join_oracle(
    bootstrap: str,
    mode: str,
    left: str,
    right: str,
    *,
    hows=None,
    left_fields=(),
    right_drop=(),
    key_field: str | None = None,
    fk_field: str | None = None,
    within_ms: int | None = None,
    grace_ms: int = 0,
    max_task_idle_ms: int | None = None,
    timeout: float = 120,
    settle_ms: int = 1000,
) -> dict:
    """Run Kafka Streams' ``mode`` joins of ``left`` and ``right`` over everything in them now.

    Returns ``{how: [record, ...]}`` in output-topic order, each record a dict with ``key`` (text),
    ``value`` (dict, or None for a tombstone), ``timestamp`` (ms); ``result["summary"]`` holds the app's
    summary line fields, wall_s and its stderr. Fresh output topics (1 partition) and application id per
    call; they, the app's internal topics and its consumer group are deleted afterwards.
    ``max_task_idle_ms``: 2000 for the stream modes (their order matters), else 0 (Kafka Streams'
    default; final tables do not depend on it, and a foreign-key task would idle each time its
    subscription-response partition runs empty).
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    hows = tuple(hows or MODES[mode])
    bad = [h for h in hows if h not in MODES[mode]]
    if bad:
        raise ValueError(f"{mode} joins are {MODES[mode]}, got {bad}")
    if mode == "fk" and not fk_field:
        raise ValueError("fk joins need fk_field")
    if mode == "stream-stream" and within_ms is None:
        raise ValueError("stream-stream joins need within_ms")

    if max_task_idle_ms is None:
        max_task_idle_ms = 2000 if mode.startswith("stream") else 0
    build_join_oracle()  # outside the run's timeout
    suffix = uuid.uuid4().hex[:8]
    prefix = f"{left}-joracle-{suffix}"
    app_id = f"streamframe-join-oracle-{suffix}"
    outputs = {how: f"{prefix}-{how}" for how in hows}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        for fut in admin.create_topics([NewTopic(t, 1, 1) for t in outputs.values()]).values():
            fut.result(timeout=30)
    except KafkaException as exc:
        raise OracleError(f"cannot create oracle output topics {list(outputs.values())}: {exc}") from exc

    cmd = oracle_command(
        bootstrap=bootstrap, mode=mode, left=left, right=right, output_prefix=prefix, app_id=app_id,
        hows=",".join(hows), left_fields=",".join(left_fields) or None,
        right_drop=",".join(right_drop) or None,
        key_field=key_field, fk_field=fk_field, within_ms=within_ms,
        grace_ms=grace_ms if mode == "stream-stream" else None, max_task_idle_ms=max_task_idle_ms,
        settle_ms=settle_ms, timeout_ms=int(max(5.0, timeout - 15) * 1000),
    )  # fmt: skip
    try:
        summary = run_oracle_process(cmd, timeout, "Kafka Streams join oracle", _parse_summary)
        result: dict = {"summary": summary}
        for how, topic in outputs.items():
            expected = summary["outputs"][how]
            try:
                result[how] = read_records(bootstrap, topic, expected)
            except OracleError as exc:
                raise OracleError(f"{exc}\n--- oracle stderr tail ---\n{_tail(summary['stderr'])}") from exc
    finally:
        cleanup(admin, app_id, list(outputs.values()))
    return result


def _parse_summary(stdout: str) -> dict | None:
    for line in reversed((stdout or "").splitlines()):
        if line.startswith("oracle ") and "status=ok" in line:
            fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            outputs, on_topic = {}, {}
            for item in fields["outputs"].split(","):
                how, produced, stored = item.split(":")
                outputs[how], on_topic[how] = int(produced), int(stored)
            return {
                "mode": fields["mode"],
                "input_records": int(fields["input_records"]),
                "outputs": outputs,
                "output_topic_records": on_topic,
                "elapsed_ms": int(fields["elapsed_ms"]),
            }
    return None


def read_records(bootstrap: str, topic: str, expected: int = 0, deadline_s: float = 20) -> list[dict]:
    """Every record of ``topic`` (all partitions, partition then offset order) up to the high watermarks:
    dicts with key (text or None), value (parsed JSON, None for a tombstone), timestamp, partition, offset.
    Waits until at least ``expected`` records are there; three attempts with a fresh consumer each."""
    errors = []
    for _attempt in range(3):
        try:
            return _read_once(bootstrap, topic, expected, deadline_s)
        except OracleError as exc:
            errors.append(str(exc))
    raise OracleError("; ".join(errors))


def _read_once(bootstrap: str, topic: str, expected: int, deadline_s: float) -> list[dict]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"streamframe-join-oracle-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        deadline = time.monotonic() + deadline_s
        parts = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        while True:
            ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
            if sum(ends.values()) >= expected:
                break
            if time.monotonic() > deadline:
                raise OracleError(f"{topic} holds {sum(ends.values())} records, {expected} expected")
            time.sleep(0.2)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        rows: list[dict] = []
        positions = {p: 0 for p in parts}
        while any(positions[p] < ends[p] for p in parts):
            if time.monotonic() > deadline:
                raise OracleError(f"timed out reading {topic}: at {positions} of {ends}")
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error():
                    raise OracleError(f"error reading {topic}: {msg.error()}")
                if msg.offset() >= ends[msg.partition()]:
                    continue
                key, value = msg.key(), msg.value()
                rows.append({
                    "key": None if key is None else key.decode(),
                    "value": None if value is None else json.loads(value),
                    "timestamp": msg.timestamp()[1],
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                })  # fmt: skip
                positions[msg.partition()] = msg.offset() + 1
        rows.sort(key=lambda r: (r["partition"], r["offset"]))
        return rows
    finally:
        consumer.close()


# --- what the tests compare --------------------------------------------------------------------------
def normalize(value: dict | None, drop=()) -> dict | None:
    """A row as comparable data: null/NaN fields dropped (a missing side's columns), integral floats as
    ints (pandas turns an int column with a missing value into floats), ``drop`` fields removed."""
    if value is None:
        return None
    out = {}
    for name, v in value.items():
        if name in drop or v is None:
            continue
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            v = v.item()  # numpy scalar
        if isinstance(v, float):
            if v != v:  # NaN
                continue
            if v.is_integer():
                v = int(v)
        out[name] = v
    return out


def final_table(records: list[dict], drop=()) -> dict:
    """A table changelog (records in order, per key) → its final state {key: normalized value};
    a tombstone (value None) deletes the key."""
    table: dict = {}
    for r in records:
        if r["value"] is None:
            table.pop(r["key"], None)
        else:
            table[r["key"]] = normalize(r["value"], drop)
    return table


def rows_by_key(records: list[dict], drop=()) -> dict:
    """Stream output → {key: [(normalized value, timestamp), ...]} in order: the multiset of rows with
    each key's order kept (different keys/partitions interleave arbitrarily)."""
    out: dict = {}
    for r in records:
        out.setdefault(r["key"], []).append((normalize(r["value"], drop), r["timestamp"]))
    return out
