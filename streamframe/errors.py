"""The one exception tree of streamframe.

    StreamframeError                 base of everything raised on purpose
    ├── ConfigError                  bad argument or configuration (also ValueError)
    ├── BrokerUnreachableError       no answer from the bootstrap address in time
    │   └── AuthenticationError      the broker refused the credentials (names the user, never the password)
    ├── AuthorizationError           an ACL is missing (names principal, topic or group, operation)
    ├── UnknownTopicError            a topic that does not exist (lists similar names)
    ├── RecordError                  a record failed under on_error="fail" (names topic, partition, offset)
    ├── DeliveryError                the producer could not deliver output (nothing was committed)
    │   └── TransactionAbortedError  a transaction must be aborted: its records and offsets are discarded
    ├── StateError                   the state directory cannot be written, e.g. it is full (names the path)
    ├── QueryTimeoutError            a bounded run did not reach its end in time (also TimeoutError)
    ├── UnknownColumnError           no record of the input has a column the frame names (also KeyError)
    ├── MissingColumnError           a record lacks a column others have (also KeyError; dead-lettered)
    ├── ConnectorError               a connector could not move a record (it ends FAILED)
    ├── ConnectRestError             a Kafka Connect REST call failed (``status``: the HTTP status)
    ├── SchemaRegistryError          the Schema Registry is unreachable, refused the credentials or a call
    │   └── IncompatibleSchemaError  the registry rejected a schema as incompatible (names the subject)
    ├── BrokerError                  the local broker could not be fetched, started or stopped
    │   └── ConnectWorkerError       the same for the local Kafka Connect worker
    └── NotebookError                a cell of a notebook run headless failed (names cell, line, error)

    StreamframeWarning (UserWarning)       base of every warning streamframe gives
    └── DroppedRecordsWarning              a bounded run left records out: dead-lettered, skipped, late

confluent_kafka's own errors are translated into these at the kafka boundary (Connection.error).

Messages are one line, say what was wrong and what to do, and never contain secrets.
"""

from __future__ import annotations


class StreamframeError(Exception):
    """Base class of every error streamframe raises on purpose."""


class ConfigError(StreamframeError, ValueError):
    """An argument or a configuration value is not valid."""


class BrokerUnreachableError(StreamframeError):
    """The Kafka bootstrap address did not answer in time."""


class AuthenticationError(BrokerUnreachableError):
    """The broker refused the SASL credentials: nothing can be reached with them. The message names the
    address and the user, never the password."""


class AuthorizationError(StreamframeError):
    """The broker's authorizer denied a request: the message names the principal, the topic or consumer
    group and the operation an ACL must allow."""


class UnknownTopicError(StreamframeError):
    """A topic the query reads does not exist."""


class RecordError(StreamframeError):
    """A record could not be decoded or evaluated and the query was told to fail on it."""


class DeliveryError(StreamframeError):
    """Output records could not be delivered to Kafka."""


class TransactionAbortedError(DeliveryError):
    """An exactly-once transaction hit an error that needs an abort; nothing of it was committed."""


class StateError(StreamframeError):
    """A query's durable state could not be written: its state directory is full or not writable. The
    message names the directory; nothing past the state last saved there was committed, so the query
    can be started again once there is room."""


class QueryTimeoutError(StreamframeError, TimeoutError):
    """A bounded run did not reach its stopping point within its timeout."""


class UnknownColumnError(StreamframeError, KeyError):
    """A frame names a column that no record of its input has (judged on the first batch, or on the
    topic's sample): a mistake in the program, not bad data, so the query fails at once. The message names
    the column, the columns seen and the closest match."""

    def __str__(self) -> str:
        return self.args[0]


class MissingColumnError(StreamframeError, KeyError):
    """A record lacks a column other records have; the record is dead-lettered with this reason."""

    def __str__(self) -> str:
        return self.args[0]


class ConnectorError(StreamframeError):
    """A connector could not move a record (it ends FAILED with this as its last error)."""


class ConnectRestError(StreamframeError):
    """A Kafka Connect REST call failed. ``status`` is the HTTP status (None if there was no answer)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class SchemaRegistryError(StreamframeError):
    """The Schema Registry could not be reached, refused the credentials, or failed a call (one line,
    credentials masked). A record whose schema id the registry does not know is not this: it is
    dead-lettered as bad input."""


class IncompatibleSchemaError(SchemaRegistryError):
    """The registry rejected a schema for a subject as incompatible with the versions it holds."""

    def __init__(self, message: str, subject: str):
        super().__init__(message)
        self.subject = subject


class BrokerError(StreamframeError):
    """The local Kafka broker could not be fetched, started or stopped (message says why)."""


class ConnectWorkerError(BrokerError):
    """The local Kafka Connect worker could not be fetched, started or stopped (message says why)."""


class NotebookError(StreamframeError):
    """A cell of a notebook run headless (`streamframe run analysis.ipynb`) failed: the message names the
    notebook, the cell (counted among code cells), the line in it and the exception, in one line."""


class StreamframeWarning(UserWarning):
    """Base class of every warning streamframe gives."""


class DroppedRecordsWarning(StreamframeWarning):
    """A bounded run left records out of its result: they went to a dead-letter topic, were skipped, or
    were dropped as late. One line, counted by reason, e.g. "3 of 10,000 records went to trades.dlq:
    invalid JSON (2), missing column 'price' (1)"."""
