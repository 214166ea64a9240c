"""Deleting records a query no longer needs: a repartition topic's consumed records, an earlier run's copy.

    >>> delete_records(conn, {("orders-repartition", 0): OFFSET_END})   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import (
    OFFSET_END,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from streamframe.errors import StreamframeError
from streamframe.kafka.connection import code

__all__ = ["OFFSET_END", "delete_records", "purge_consumed"]

log = logging.getLogger("streamframe.repartition")
_TRANSIENT = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError.UNKNOWN_TOPIC_OR_PART}


def delete_records(conn, before: dict[tuple[str, int], int], timeout: float = 30.0) -> None:
    """Delete the records of each (topic, partition) before an offset (OFFSET_END: all of them); a
    partition whose leader is not known yet (a topic created a moment ago) is retried briefly."""
    deadline = time.monotonic() + timeout
    while before:
        futures = conn.admin().delete_records([TopicPartition(t, p, o) for (t, p), o in before.items()],
                                              request_timeout=timeout)
        retry = {}
        for tp, future in futures.items():
            try:
                future.result(timeout=timeout + 5)
            except KafkaException as e:
                if code(e) not in _TRANSIENT or time.monotonic() > deadline:
                    raise conn.error(e, f"cannot delete records of {tp.topic}[{tp.partition}]") from None
                retry[(tp.topic, tp.partition)] = before[(tp.topic, tp.partition)]
        before = retry
        if before:
            time.sleep(0.2)


def purge_consumed(conn, topic: str, group: str) -> None:
    """Delete a repartition topic's records the reading query's group has committed (best effort: a
    failure only leaves them for the next time)."""
    try:
        request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p)
                                                        for p in range(conn.partitions(topic))])]
        result = conn.admin().list_consumer_group_offsets(
            request, request_timeout=10)[group].result(timeout=15)
        delete_records(conn, {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions
                              if tp.offset > 0 and tp.error is None})
    except (KafkaException, StreamframeError, TimeoutError) as e:
        log.debug("could not delete consumed records of %s: %s", topic, e)
