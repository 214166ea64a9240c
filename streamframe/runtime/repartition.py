"""Joins and partitions: the co-partitioning check (`check_copartitioned`: equal partition counts, or the
table side copied with `repartition=True`), and a stream–table join on a column of the stream, scaled out
the Kafka Streams way: the stream is re-keyed by that column through a repartition topic partitioned
like the table.

`orders.join(customers, on="customer_id")` must find each order's customer in the process that holds
the order — with a query scaled out over a consumer group, in the task of the same partition number.
So, as Kafka Streams does for `selectKey(...).join(table)`, a helper query (`RekeyCopy`) reads the
stream's topic, decodes each record with the stream's own format to find its `customer_id`, and writes
the record — value bytes, timestamp and headers unchanged — to `{app_id}-{query}-{position}-repartition`
keyed by that value, encoded as the table topic's keys are (its source's key format), so the
producer's partitioner (murmur2, as Java clients) puts it on the partition where the table has that
key; the topic has the table topic's partition count. The query reads that topic in place of the
stream's: the operators between the source and the join run unchanged, and the join finds the table
row in its own task. The record's own key, where it is not the new one, rides in a last header
(`streamframe.key`) and is put back before decoding, so `_key` stays the stream's key (and `_headers`
its headers); `_partition` and `_offset` are the repartition topic's.

Event time: the helper writes the records in the order a join takes them (a TimeMerger: by each input
partition's running-maximum event time), so each repartition partition holds them in that order and the
join still sees the table as of each record's own time.

A record whose join column is null or missing, or that does not decode, is copied with a null key to
its own partition number (mod the count): the join then passes it with nulls (left) or drops it (inner),
as the lookup in process does, and a record that does not decode is dead-lettered by the reading query.

The repartition topic keeps records until they are consumed (`retention.ms=-1`, as Kafka Streams'):
a live helper deletes what the query's group has committed every 30 s; a bounded run empties the topic
before it copies the stream, so it reads this run's copy only.

Not re-keyed (the lookup stays in process, which is only right while one process reads every
partition, or when the stream is already keyed by the column; decided by plan/rekey.py, which
explain() shows too): `join(..., repartition=False)` (the user's word that it is); `on=` the record key
or several columns; a table side that is not one `sf.table` topic; a stream side that is not only Kafka
topics, or whose topic another part of the query also reads; an operator between the source and the join that
may change the `on` column (an `assign`/`rename`/`astype`/`fillna`/`explode` of it, `map`, another
join or an aggregation) — the column must be as the source decoded it.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time

import numpy as np
import pandas as pd

from streamframe.errors import ConfigError
from streamframe.kafka.purge import OFFSET_END, delete_records, purge_consumed
from streamframe.operators.source import DecodeSource
from streamframe.plan import nodes
from streamframe.plan.rekey import rekey_plan
from streamframe.records import RawBatch
from streamframe.runtime.protocols import SinkProtocol
from streamframe.serde import key_bytes, value_format
from streamframe.time.extract import datetime_to_ms, ms_to_datetime

log = logging.getLogger("streamframe.repartition")
HEADER = "streamframe.key"  # the record's own key, put back when the query reads the copy
# s between deletions of consumed records (Kafka Streams' repartition.purge.interval.ms)
PURGE_INTERVAL = 30.0


# --- co-partitioning of joins --------------------------------------------------------------------------
def check_copartitioned(query) -> None:
    """A join of two topics pairs partition i with partition i (the same key lands on the same
    partition number): their partition counts must be equal, as Kafka Streams requires — or, with
    join(..., repartition=True), the right side is copied through a repartition topic
    `{app_id}-{query}-{position}-repartition` with the left side's partition count.
    A stream–table join `on=` a column of the stream re-keys the stream by it through such a topic
    with the table's partition count instead (rekey_stream), where it can. `query`: the Query opening."""
    for node in query.root.walk():
        if not isinstance(node, nodes.Join) or node.join == "global":
            continue
        if rekey_stream(query, node):
            continue  # the stream side now reads a copy partitioned like the table
        sides = [sorted({s.topic for s in parent.sources() if isinstance(s, nodes.KafkaSource)})
                 for parent in node.parents]
        counts = [query.connection.require_topics(topics, need="read") if topics else {} for topics in sides]
        found = {t: n for c in counts for t, n in c.items()}
        if len(set(found.values())) <= 1:
            continue
        if not node.repartition or len(sides[1]) != 1 or not counts[0]:
            listed = ", ".join(f"{t} has {n}" for t, n in sorted(found.items()))
            raise ConfigError(f"the inputs of {node.name} are not co-partitioned ({listed} partitions): give "
                              "the topics the same partition count, join with repartition=True, or join with "
                              "an sf.global_table")
        copy_table_side(query, node, sides[1][0], max(counts[0].values()))


def copy_table_side(query, node: nodes.Join, topic: str, partitions: int) -> None:
    """Copy `topic` as it is (bytes, keys, timestamps, deletes) into a topic of `partitions`
    partitions, partitioned by key like any producer's, and read that instead."""
    from streamframe.runtime.sinks import TopicSink

    position = query.topology.positions[node.id]
    name = f"{query.connection.app_id}-{query.name}-{position}-repartition"
    copy = nodes.KafkaSource((), topic=topic, key_format="bytes", value_format=value_format("bytes"))
    sink = TopicSink(name, value_format("bytes"), key_format="bytes", partitions=partitions)
    helper = query.helper(copy, sink, name=f"{query.name}-repartition-{position}")
    query.connection.ensure_topic(name, partitions)  # before this query's reader looks for it
    query.add_helper(helper)
    query.read_instead(topic, name)


def join_keys(values: pd.Series, key_format: str) -> np.ndarray:
    """Join column values as record keys like the table topic's (`key_format` of its source), each
    distinct value encoded once; None for a missing value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    encoded = np.empty(len(uniques) + 1, dtype=object)  # the last one: None, for code -1
    encoded[:-1] = [key_bytes(v, key_format) for v in uniques]
    return encoded[codes]


# --- the copy ------------------------------------------------------------------------------------------
def rekey_stream(query, node: nodes.Join) -> bool:
    """Re-key `node`'s stream side through repartition topics for `query` (a bounded query copies first, a
    live one starts the copy beside it) and read those instead; False: the lookup stays in process."""
    plan = rekey_plan(node, query.readings)
    if plan is None:
        return False
    on, streams, table = plan
    if table.key_decoder is not None:  # its keys' bytes are Avro/JSON Schema: a copy keyed so could not match
        raise ConfigError(f"joining on {on!r} needs the stream re-keyed like table {table.topic!r}, whose "
                          f"keys are {table.key_format}: read the table with key= a value column instead")
    conn = query.connection
    partitions = conn.partitions(table.topic)
    position = query.topology.positions[node.id]
    for i, src in enumerate(streams):
        tag = str(position) if len(streams) == 1 else f"{position}-{i}"
        target = f"{conn.app_id}-{query.name}-{tag}-repartition"
        created = _ensure_topic(conn, target, partitions, table.topic)
        helper = RekeyCopy(src, on, table.key_format, target, partitions,
                           name=f"{query.name}-repartition-{tag}", parent=query).query
        if query.bounded and not created:  # an earlier run's copy: this run reads its own only
            delete_records(conn, {(target, p): OFFSET_END for p in range(partitions)})
        query.add_helper(helper)
        query.read_instead(src.topic, target, rekeyed=True)
    return True


def _ensure_topic(conn, topic: str, partitions: int, table: str) -> bool:
    """Create the repartition topic if missing (True: it was); its partition count must be the table's."""
    existing = conn.describe([topic]).get(topic)
    found = existing or conn.ensure_topic(topic, partitions, {"retention.ms": "-1"})
    if found != partitions:
        raise ConfigError(f"repartition topic {topic!r} has {found} partitions, the table topic {table!r} "
                          f"{partitions}: delete {topic!r} (it is a copy of the stream, rebuilt when "
                          "missing) or give the query another name")
    return existing is None


class RekeyCopy:
    """The helper query (`.query`): copies a stream's topic into a repartition topic keyed by the join
    column, in event-time order (see the module docstring). Live, it commits to its own group
    `{app_id}.{query}-repartition-{position}`."""

    def __init__(self, stream: nodes.KafkaSource, on: str, key_format: str, topic: str, partitions: int, *,
                 name: str, parent):
        source = nodes.KafkaSource((), topic=stream.topic, key_format="bytes",
                                   value_format=value_format("bytes"))
        self.query = parent.helper(source, RekeySink(topic, partitions), name=name, timeout=parent.timeout,
                                   batch_size=parent.batch_size, commit_interval=parent.commit_interval,
                                   poll_timeout=parent.poll_timeout, state="memory", changelog=False,
                                   processing_guarantee=parent.guarantee,
                                   merge=True, hold=self.records, on_checkpoint=self.purge)
        # The stream's own decoding (format, event time), on a node of its own: a format keeps counters.
        self.decoder = DecodeSource(dataclasses.replace(stream, value_format=copy.copy(stream.value_format)))
        self.on, self.key_format = on, key_format
        self.topic = topic
        self.reader_group = parent.group_id  # whose committed offsets say what can be deleted
        self._purged_at = time.monotonic()

    def records(self, raw: RawBatch) -> pd.DataFrame:
        """Every record of the batch, with its new key and its event time (the record's timestamp when
        it does not decode: the query dead-letters it, the copy only carries it)."""
        decoded, _ = self.decoder.decode(raw)
        n = len(raw)
        stamps = np.asarray(raw.timestamps, dtype="int64")
        event = stamps.copy()
        keys = np.full(n, None, dtype=object)
        if len(decoded):
            pos = decoded.index.to_numpy()
            event[pos] = datetime_to_ms(decoded["_timestamp"])
            if self.on in decoded:
                keys[pos] = join_keys(decoded[self.on], self.key_format)
        frame = pd.DataFrame({"key": keys,
                              "value": pd.Series(raw.values, dtype=object),
                              "record_key": pd.Series(raw.keys, dtype=object),
                              "record_ts": stamps,
                              "headers": pd.Series(raw.headers, dtype=object)})
        frame["_timestamp"] = ms_to_datetime(event)
        frame["_partition"] = np.asarray(raw.partitions, dtype="int32")
        frame["_offset"] = np.asarray(raw.offsets, dtype="int64")
        return frame

    def purge(self) -> None:
        """After a live copy's checkpoint, now and then: delete what the query's group has consumed."""
        query = self.query
        if not query.bounded and time.monotonic() - self._purged_at >= PURGE_INTERVAL:
            self._purged_at = time.monotonic()
            purge_consumed(query.connection, self.topic, self.reader_group)


class RekeySink(SinkProtocol):
    """Writes RekeyCopy's records: new key, value bytes, the record's timestamp and headers, plus its own
    key in a last header where it differs; a null new key goes to the record's own partition number
    (mod the count)."""

    exactly_once = rewinds = True  # its records go through the copy's transactional producer

    def __init__(self, topic: str, partitions: int):
        self.topic, self.partitions = topic, partitions
        self.output = None

    def open(self, query) -> None:
        self.output = query.output

    def write(self, frame: pd.DataFrame) -> int:
        keys = frame["key"].tolist()
        own_partition = frame["_partition"].to_numpy() % self.partitions
        partitions = np.where(frame["key"].isna(), own_partition, -1).tolist()
        stamps = np.maximum(frame["record_ts"].to_numpy(), 0).tolist()  # no timestamp (-1): now
        owns = frame["record_key"].tolist()
        headers = [hs if own == key
                   else [*(hs or ()), (HEADER, own)]  # a stream keyed by the column needs none
                   for key, own, hs in zip(keys, owns, frame["headers"].tolist())]
        self.output.produce_many(self.topic, frame["value"].tolist(), keys, stamps, partitions, headers)
        return len(frame)

    def __repr__(self) -> str:
        return f"repartition topic {self.topic}"


def restore_keys(raw: RawBatch) -> RawBatch:
    """A batch read from a repartition topic with each record's own key (and headers) back: from the
    last header where the copy added one, else the record's key is its own."""
    if not any(raw.headers):
        return raw
    keys, headers = list(raw.keys), list(raw.headers)
    for i, hs in enumerate(headers):
        if hs and hs[-1][0] == HEADER:
            keys[i] = hs[-1][1]
            headers[i] = hs[:-1] or None
    return RawBatch(raw.topic, raw.values, keys, raw.timestamps, raw.partitions, raw.offsets, headers)
