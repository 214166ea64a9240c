"""The one exception tree of streamframe.

    StreamframeError                 base of everything raised on purpose
    ├── ConfigError                  bad argument or configuration (also ValueError)
    ├── BrokerUnreachableError       no answer from the bootstrap address in time
    ├── UnknownTopicError            a topic that does not exist (lists similar names)
    ├── RecordError                  a record failed under on_error="fail" (names topic, partition, offset)
    ├── DeliveryError                the producer could not deliver output (nothing was committed)
    └── QueryTimeoutError            a bounded run did not reach its end in time (also TimeoutError)

Messages are one line, say what was wrong and what to do, and never contain secrets.
"""

from __future__ import annotations


class StreamframeError(Exception):
    """Base class of every error streamframe raises on purpose."""


class ConfigError(StreamframeError, ValueError):
    """An argument or a configuration value is not valid."""


class BrokerUnreachableError(StreamframeError):
    """The Kafka bootstrap address did not answer in time."""


class UnknownTopicError(StreamframeError):
    """A topic the query reads does not exist."""


class RecordError(StreamframeError):
    """A record could not be decoded or evaluated and the query was told to fail on it."""


class DeliveryError(StreamframeError):
    """Output records could not be delivered to Kafka."""


class QueryTimeoutError(StreamframeError, TimeoutError):
    """A bounded run did not reach its stopping point within its timeout."""
