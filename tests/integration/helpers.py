"""Plain confluent-kafka clients for tests: produce input and read output independently of streamframe."""

from __future__ import annotations

import contextlib
import os
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create_topic(bootstrap: str, topic: str, partitions: int = 1, config: dict | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})
    admin.create_topics([new])[topic].result(30)
    deadline = time.monotonic() + 10
    while topic not in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.05)  # creation returns before every metadata cache knows the topic


def produce(
    bootstrap: str, topic: str, values, keys=None, timestamps=None, partitions=None, headers=None,
    max_bytes: int | None = None,
) -> None:
    """`max_bytes`: the largest record to be produced, where one is over the client's 1 MB default."""
    big = {"message.max.bytes": max_bytes + 1024} if max_bytes else {}
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", **big})
    values = list(values)
    for i, v in enumerate(values):
        kwargs = {}
        if keys is not None:
            kwargs["key"] = keys[i]
        if timestamps is not None:
            kwargs["timestamp"] = timestamps[i]
        if partitions is not None:
            kwargs["partition"] = partitions[i]
        if headers is not None:
            kwargs["headers"] = headers[i]
        p.produce(topic, v, **kwargs)
    assert p.flush(30) == 0


def consume_all(bootstrap: str, topic: str, expect: int | None = None, timeout: float = 30.0) -> list:
    """Every record of `topic` (all partitions, from the beginning) as confluent Message objects."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
        }
    )
    md = c.list_topics(topic, timeout=10)
    tps = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in md.topics[topic].partitions]
    ends = {tp.partition: c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
    if expect is not None:
        deadline = time.monotonic() + timeout
        while sum(ends.values()) < expect and time.monotonic() < deadline:
            time.sleep(0.2)
            ends = {tp.partition: c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
    c.assign(tps)
    out, deadline = [], time.monotonic() + timeout
    done = {p for p, end in ends.items() if end == 0}
    while len(done) < len(tps) and time.monotonic() < deadline:
        for m in c.consume(1000, 0.5):
            if m.error():
                continue
            out.append(m)
            if m.offset() + 1 >= ends[m.partition()]:
                done.add(m.partition())
    c.close()
    return out


def wait_until(cond, timeout: float = 60.0) -> None:
    """Poll `cond()` every 0.1 s until it holds; fail the test if it does not within `timeout` s."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


@contextlib.contextmanager
def own_broker(home, **start):
    """A local broker of a test's own in STREAMFRAME_HOME=`home` (to stop, restart or secure; the
    suite's stays up), `local.start(**start)`; stopped, with the session's queries, at the end."""
    from streamframe import local, session

    previous = {k: os.environ.get(k) for k in ("STREAMFRAME_HOME", "STREAMFRAME_BOOTSTRAP")}
    os.environ["STREAMFRAME_HOME"] = str(home)
    os.environ.pop("STREAMFRAME_BOOTSTRAP", None)
    try:
        yield local.start(timeout=90, **start)
    finally:
        session.stop_all()
        session.disconnect()
        local.stop()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def group_split(bootstrap: str, group: str, partitions: int) -> list[list[int]]:
    """The partitions each member of `group` holds, as the broker sees it, once they split all
    `partitions` between them (mid-rebalance a member may still list partitions it is giving up);
    [] until then."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_consumer_groups([group])[group].result(10)
    members = [sorted(tp.partition for tp in m.assignment.topic_partitions) for m in described.members]
    if not all(members) or sorted(sum(members, [])) != list(range(partitions)):
        return []
    return members


def records_read(stdouts: list[str], query: str) -> list[int]:
    """The records each `streamframe run` process says query `query` read, from the line it prints as
    it stops."""
    import re

    return [int(re.search(rf"query {query}: stopped, ([\d,]+) records in", out).group(1).replace(",", ""))
            for out in stdouts]
