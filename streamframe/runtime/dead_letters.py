"""Records an operator or a source failed on, routed by their source's `on_error`: "fail" raises,
"skip" counts and logs them, "dead_letter" sends them (original key, value and headers, plus the reason)
to the source's dead-letter topic, or to a list when the query has no broker.

Every routed record is tallied by where it went and the kind of its reason, so that a bounded run can
say in one line what it left out (`summary`), and `metrics["last_error"]` holds the latest reason.
"""

from __future__ import annotations

import logging
import re
from collections import Counter

from streamframe.errors import RecordError
from streamframe.runtime.metrics import Metrics
from streamframe.runtime.sinks import MemoryDeadLetters

log = logging.getLogger("streamframe.query")
ON_ERROR = ("dead_letter", "skip", "fail")
LATE = "late record"  # the kind of a late record's reason (operators: "<op>: late record (...)")
_OPERATOR = re.compile(r"^[\w.]+-\d+: ")  # an operator's name before its reason: "filter-3: "


def reason_kind(reason: str) -> str:
    """What a reason is, without the details of one record, for counting.

        >>> reason_kind("invalid JSON: unexpected character: line 1 column 9 (char 8)")
        'invalid JSON'
        >>> reason_kind("filter-3: MissingColumnError: missing column 'price' (columns: id, qty)")
        "missing column 'price'"
        >>> reason_kind("assign-4: ZeroDivisionError: division by zero")
        'ZeroDivisionError in assign-4'
        >>> reason_kind("aggregate-3: late record (past window end + grace)")
        'late record'
    """
    op, rest = None, reason
    m = _OPERATOR.match(reason)
    if m:
        op, rest = reason[: m.end() - 2], reason[m.end():]
    head, sep, detail = rest.partition(": ")
    if op is not None and sep and head.isidentifier():  # an exception raised in an operator
        return detail.split(" (", 1)[0] if head == "MissingColumnError" else f"{head} in {op}"
    return head.split(" (", 1)[0]


class DeadLetterRouting:
    """Routes a batch's failed records; `letters` is where dead letters go (memory until `to_topics`)."""

    def __init__(self, query_name: str, metrics: Metrics, connection=None):
        self.query_name = query_name
        self.metrics = metrics
        self.connection = connection  # scrubs credentials out of the reasons
        self.letters = MemoryDeadLetters()
        # ("dead_letter", topic) or ("skip", None) -> {kind of reason: records}
        self.tally: dict[tuple[str, str | None], Counter] = {}

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
            self.metrics.last_error = reason
            if src.on_error == "fail":
                raise RecordError(
                    f"record {record['topic']}[{record['partition']}]@{record['offset']} failed: {reason} "
                    f"(on_error='fail'; use on_error='dead_letter' to route bad records to {src.dlq_topic})"
                )
            where = ("skip", None) if src.on_error == "skip" else ("dead_letter", src.dlq_topic)
            self.tally.setdefault(where, Counter())[reason_kind(reason)] += 1
            if src.on_error == "skip":
                self.metrics.skipped += 1
                log.warning("skipped record %s[%s]@%s: %s", record["topic"], record["partition"],
                            record["offset"], reason)
            else:
                self.letters.send(src.dlq_topic, record, reason, self.query_name)
                self.metrics.dead_letters += 1

    def summary(self, records_in: int, late_drops: int) -> str | None:
        """One line on what was left out, or None when nothing was: "3 of 10,000 records went to
        trades.dlq: invalid JSON (2), missing column 'price' (1); 4 late drops (...)"."""
        parts, routed_late = [], 0
        for (action, topic), kinds in sorted(self.tally.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            n = sum(kinds.values())
            routed_late += kinds.get(LATE, 0)
            what = f"went to {topic}" if action == "dead_letter" else "were skipped"
            if n == 1:
                what = f"went to {topic}" if action == "dead_letter" else "was skipped"
            counts = ", ".join(f"{kind} ({count:,})" for kind, count in kinds.most_common())
            parts.append(f"{n:,} of {records_in:,} record{'s' if records_in != 1 else ''} {what}: {counts}")
        dropped = late_drops - routed_late  # late="drop": counted, not routed
        if dropped > 0:
            parts.append(f"{dropped:,} late drop{'s' if dropped != 1 else ''} (records past their window's "
                         "end + grace; see metrics['late_drops'])")
        return "; ".join(parts) or None
