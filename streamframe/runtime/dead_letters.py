"""Records an operator or a source failed on, routed by their source's `on_error`: "fail" raises,
"skip" counts and logs them, "dead_letter" sends them (original key, value and headers, plus the reason)
to the source's dead-letter topic, or to a list when the query has no broker."""

from __future__ import annotations

import logging

from streamframe.errors import RecordError
from streamframe.runtime.metrics import Metrics
from streamframe.runtime.sinks import MemoryDeadLetters

log = logging.getLogger("streamframe.query")
ON_ERROR = ("dead_letter", "skip", "fail")


class DeadLetterRouting:
    """Routes a batch's failed records; `letters` is where dead letters go (memory until `to_topics`)."""

    def __init__(self, query_name: str, metrics: Metrics, connection=None):
        self.query_name = query_name
        self.metrics = metrics
        self.connection = connection  # scrubs credentials out of the reasons
        self.letters = MemoryDeadLetters()

    def to_topics(self, letters) -> None:
        """Send dead letters to their topics from now on (a KafkaDeadLetters, once there is a producer)."""
        self.letters = letters

    def route(self, src, raw, errors: dict[int, str]) -> None:
        """`errors`: {position in `raw`: reason} of records from source node `src`."""
        self.metrics.errors += len(errors)
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
                self.metrics.skipped += 1
                log.warning("skipped record %s[%s]@%s: %s", record["topic"], record["partition"],
                            record["offset"], reason)
            else:
                self.letters.send(src.dlq_topic, record, reason, self.query_name)
                self.metrics.dead_letters += 1
