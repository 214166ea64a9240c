"""The session's connection to Kafka: a bootstrap address, client settings, an application id.

    >>> c = Connection("127.0.0.1:9092", {"sasl.password": "s3cret"}, app_id="demo")
    >>> c
    Connection(bootstrap='127.0.0.1:9092', app_id='demo', config={'sasl.password': '********'})
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
import time

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from streamframe.errors import (
    AuthenticationError,
    AuthorizationError,
    BrokerUnreachableError,
    ConfigError,
    StreamframeError,
    UnknownTopicError,
)
from streamframe.kafka.config import CONSUMER_DEFAULTS, PRODUCER_DEFAULTS, redact, scrub
from streamframe.kafka.registry import Registry

log = logging.getLogger("streamframe.kafka")
# librdkafka's own log lines (FAIL, BGQUEUE, ...) go to this logger; with no handler anywhere Python
# would print them raw on stderr (its last-resort handler), so it has a silent one: configure logging
# to see them.
librdkafka_log = logging.getLogger("streamframe.kafka.librdkafka")
librdkafka_log.addHandler(logging.NullHandler())
CONNECT_TIMEOUT = 10.0
BROKER_MAX_MESSAGE_BYTES = 1048588  # Kafka's default max.message.bytes (message.max.bytes of the broker)
GUARANTEES = ("at_least_once", "exactly_once")  # processing_guarantee= values; the first is the default
# What librdkafka's error callback says when no broker of the bootstrap list can be reached (it retries on
# its own; nothing will answer a request waiting on it), and the more telling errors that come before it.
_DOWN = KafkaError._ALL_BROKERS_DOWN
_REFUSED = KafkaError._AUTHENTICATION  # the credentials: retrying with the same ones cannot succeed
_WHY_DOWN = (KafkaError._RESOLVE, KafkaError._TRANSPORT, KafkaError._AUTHENTICATION, KafkaError._SSL)
# "host:port/bootstrap: " before, " (after 0ms in state CONNECT)" after the reason of a broker's error
_BROKER_PREFIX = re.compile(r"^\S+/(bootstrap|\d+): ")
_STATE_SUFFIX = re.compile(r" \(after \d+ms in state \w+(, \d+ identical error\(s\) suppressed)?\)$")
# A topic described with one of these does not exist (or not yet: a leader is elected just after creation).
_NOT_THERE = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError.TOPIC_EXCEPTION, KafkaError._INVALID_ARG)  # the last two: a name no topic can have


def code(e: KafkaException | KafkaError) -> int | None:
    """The librdkafka error code a confluent_kafka error carries (None if it carries none)."""
    err = e.args[0] if isinstance(e, KafkaException) and e.args else e
    return err.code() if isinstance(err, KafkaError) else None


def _reason(e: KafkaException | KafkaError) -> str:
    err = e.args[0] if isinstance(e, KafkaException) and e.args else e
    return err.str() if isinstance(err, KafkaError) else str(err)


def check_guarantee(value: str | None) -> str | None:
    if value is not None and value not in GUARANTEES:
        raise ConfigError(f"processing_guarantee must be one of {', '.join(GUARANTEES)}, got {value!r}")
    return value


class ScrubbingLogger:
    """Where librdkafka's log lines go: into Python logging, with secrets masked."""

    def __init__(self, config: dict):
        self._config = config

    def log(self, level, fmt, *args):
        librdkafka_log.log(level, scrub(fmt % args if args else fmt, self._config))


class Connection:
    """Bootstrap address, librdkafka settings (passed through as given) and the application id."""

    def __init__(self, bootstrap: str, config: dict | None = None, app_id: str = "streamframe",
                 processing_guarantee: str | None = None, schema_registry=None):
        if not bootstrap or not isinstance(bootstrap, str):
            raise ConfigError(f"bootstrap must be a 'host:port' string, got {bootstrap!r}")
        self.bootstrap = bootstrap
        self._config = dict(config or {})
        self._config.pop("bootstrap.servers", None)
        self.app_id = app_id
        self.processing_guarantee = check_guarantee(processing_guarantee)  # its queries' default
        self._admin = None
        self._lock = threading.Lock()
        self.errors: list[str] = []
        self._admin_errors: list[tuple[float, int, str]] = []  # (monotonic time, code, reason), the latest
        self._reached = False  # a request of the admin client was answered
        self._max_bytes: dict[str, int] = {}  # max.message.bytes per topic, once asked
        # the Schema Registry of avro/protobuf/jsonschema formats (kafka/registry.py), if one is given
        self.schema_registry = None if schema_registry is None else \
            schema_registry if isinstance(schema_registry, Registry) else Registry(schema_registry)
        # Set when a query's client says every broker is down; cleared once one answers (probe()).
        self.unreachable_since: float | None = None
        self._probed = 0.0

    @property
    def config(self) -> dict:
        """The client settings, secrets masked."""
        return redact(self._config)

    def __repr__(self) -> str:
        registry = "" if self.schema_registry is None else f", schema_registry={self.schema_registry!r}"
        return (f"Connection(bootstrap={self.bootstrap!r}, app_id={self.app_id!r}, config={self.config!r}"
                f"{registry})")

    def scrub(self, text: str) -> str:
        text = scrub(str(text), self._config)
        return text if self.schema_registry is None else self.schema_registry.scrub(text)

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == _DOWN and self.unreachable_since is None:
            self.unreachable_since = time.monotonic()
        message = self.scrub(err.str())
        self.errors.append(message)
        del self.errors[:-20]
        log.warning("kafka client error: %s", message)

    def _on_admin_error(self, err: KafkaError) -> None:
        # Not logged: a call waiting on the broker reports it, once (see _result).
        self._admin_errors.append((time.monotonic(), err.code(), self.scrub(err.str())))
        del self._admin_errors[:-20]

    def client(self, factory, conf: dict):
        """`factory(conf)` (a Consumer, Producer or AdminClient), a bad setting in `conf` raised as a
        ConfigError naming it, at once (librdkafka checks every setting when the client is made)."""
        try:
            return factory(conf)
        except KafkaException as e:
            raise self.error(e, f"bad Kafka client setting for {self.bootstrap}", ConfigError) from None

    def client_config(self, extra: dict | None = None) -> dict:
        conf = {"bootstrap.servers": self.bootstrap, **self._config, **(extra or {})}
        conf["logger"] = ScrubbingLogger(conf)
        conf["error_cb"] = self._on_error
        return conf

    def consumer_config(self, group_id: str, extra: dict | None = None) -> dict:
        return self.client_config({**CONSUMER_DEFAULTS, "group.id": group_id, **(extra or {})})

    def producer_config(self, extra: dict | None = None) -> dict:
        return self.client_config({**PRODUCER_DEFAULTS, **(extra or {})})

    # --- admin -------------------------------------------------------------------------------
    def admin(self) -> AdminClient:
        with self._lock:
            if self._admin is None:
                conf = self.client_config()
                conf["error_cb"] = self._on_admin_error  # unreachable brokers: reported by the calls below
                self._admin = self.client(AdminClient, conf)
            return self._admin

    def _result(self, future, timeout: float):
        """`future.result()` of an admin request, waiting at most `timeout` s, but raising
        BrokerUnreachableError as soon as librdkafka says every broker is down (a refused connection or
        an unknown host: nothing would answer the request before its timeout)."""
        admin, started = self.admin(), time.monotonic()
        deadline = started + timeout
        while not future.done():
            admin.poll(0.05)  # serves the error callback
            refused = [e for e in self._admin_errors if e[0] >= started and e[1] == _REFUSED]
            if refused and not future.done():  # librdkafka retries, but the same credentials fail again
                raise self.authentication_failed(refused[-1][2])
            down = [e for e in self._admin_errors if e[0] >= started and e[1] == _DOWN]
            if down and not future.done():
                why = [e for e in self._admin_errors if e[0] >= started and e[1] in _WHY_DOWN]
                raise self._unreachable(why[-1][2] if why else down[-1][2], time.monotonic() - started)
            if time.monotonic() >= deadline:
                break
        result = future.result(timeout=max(deadline - time.monotonic(), 0) + 5)
        self._reached = True
        return result

    def metadata(self, timeout: float = CONNECT_TIMEOUT):
        if not self._reached:
            self.check(timeout)  # list_topics blocks its full timeout against a broker that is not there
        try:
            return self.admin().list_topics(timeout=timeout)
        except KafkaException as e:
            raise self._unreachable(_reason(e), timeout) from None

    def check(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """Raise BrokerUnreachableError unless the cluster answers within `timeout` (one small request,
        where listing every topic costs as much as the cluster has topics)."""
        try:
            self._result(self.admin().describe_cluster(request_timeout=timeout), timeout)
        except KafkaException as e:
            if code(e) == KafkaError._UNSUPPORTED_FEATURE:  # a broker before Kafka 2.8
                self._reached = True
                self.metadata(timeout)
                return
            raise self._unreachable(_reason(e), timeout) from None

    @property
    def unreachable(self) -> bool:
        """A query's client said every broker is down, and none has answered since."""
        return self.unreachable_since is not None

    def probe(self, every: float = 1.0) -> bool:
        """While unreachable: ask the cluster (at most once per `every` s, one short request) whether it
        answers again; whether it is reachable now."""
        if self.unreachable_since is None:
            return True
        if time.monotonic() - self._probed >= every:
            self._probed = time.monotonic()
            try:
                self.check(timeout=min(every, 2.0))
                self.unreachable_since = None
            except StreamframeError:
                pass
        return self.unreachable_since is None

    def unreachable_error(self, what: str) -> BrokerUnreachableError:
        """What a query says when the broker has not answered for as long as it may wait."""
        waited = time.monotonic() - (self.unreachable_since or time.monotonic())
        reason = self.errors[-1] if self.errors else "no answer"
        return self._unreachable(f"{reason}; {what}", waited)

    def error(self, e: KafkaException | KafkaError, what: str, cls=StreamframeError) -> StreamframeError:
        """The one translation of a confluent_kafka error into ours: "`what`: the broker's reason",
        one line, secrets masked."""
        return cls(f"{what}: {self.scrub(_reason(e))}")

    @property
    def principal(self) -> str:
        """Who the broker sees: User:<sasl.username>, else User:ANONYMOUS (no SASL)."""
        return f"User:{self._config.get('sasl.username') or 'ANONYMOUS'}"

    def authentication_failed(self, reason: str) -> AuthenticationError:
        reason = _STATE_SUFFIX.sub("", _BROKER_PREFIX.sub("", self.scrub(reason)))
        return AuthenticationError(
            f"authentication failed at {self.bootstrap} as {self.principal} ({reason}); "
            "check sasl.username, sasl.password and sasl.mechanism")

    def not_authorized(self, resource: str, name: str, operation: str) -> AuthorizationError:
        """One line naming the principal, the topic or group and the operation an ACL must allow."""
        acl = f"--{resource} {name}"
        if resource == "group" and name.startswith(f"{self.app_id}."):  # each run has a group of its own
            acl = f"--resource-pattern-type prefixed --group {self.app_id}."
        return AuthorizationError(
            f"{self.principal} is not allowed to {operation.upper()} {resource} {name!r} "
            f"at {self.bootstrap}; an admin adds the ACL: kafka-acls --add --allow-principal "
            f"{self.principal} --operation {operation.capitalize()} {acl}")

    def _unreachable(self, reason: str, waited: float) -> BrokerUnreachableError:
        """One line naming the address, librdkafka's reason without its broker prefix and state suffix."""
        reason = _STATE_SUFFIX.sub("", _BROKER_PREFIX.sub("", self.scrub(reason)))
        hint = "check the host name" if "resolve" in reason else \
            "is the broker running? `streamframe local start` starts one"
        return BrokerUnreachableError(
            f"cannot reach Kafka at {self.bootstrap} after {waited:.1f} s ({reason}); {hint}"
        )

    def topics(self, timeout: float = CONNECT_TIMEOUT) -> dict[str, int]:
        """Every topic's partition count (internal topics left out)."""
        md = self.metadata(timeout)
        return {name: len(t.partitions) for name, t in md.topics.items() if not name.startswith("__")}

    def partitions(self, topic: str) -> int:
        return self.require_topics([topic])[topic]

    def describe(self, names, timeout: float = CONNECT_TIMEOUT, need: str = "describe") -> dict[str, int]:
        """Partition counts of those of `names` that exist, asking the broker about these topics only:
        a cluster can hold thousands, and listing them all costs as much as it has. (DescribeTopics never
        creates a topic, where a metadata request for one may, on a broker that auto-creates topics.)
        A topic the principal may not even see raises AuthorizationError naming `need` (what the caller
        wants to do with it: read, write)."""
        names = [n for n in dict.fromkeys(names) if n]  # no topic has an empty name
        if not names:
            return {}
        found = {}
        try:
            futures = self.admin().describe_topics(TopicCollection(names), request_timeout=timeout)
            for name, future in futures.items():
                try:
                    found[name] = len(self._result(future, timeout).partitions)
                except KafkaException as e:
                    if code(e) == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                        raise self.not_authorized("topic", name, need) from None
                    if code(e) not in _NOT_THERE:
                        raise
        except KafkaException as e:
            if code(e) in (KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN):
                raise self._unreachable(_reason(e), timeout) from None
            raise self.error(e, f"cannot describe topics {', '.join(names)}", ConfigError) from None
        return found

    def require_topics(self, names, need: str = "describe") -> dict[str, int]:
        """Partition counts of `names`; an UnknownTopicError naming similar topics if one is missing."""
        found = self.describe(names, need=need)
        for name in names:
            if name not in found:
                existing = self.topics()
                similar = difflib.get_close_matches(name, list(existing), n=5, cutoff=0.5)
                hint = f"; similar topics: {', '.join(similar)}" if similar else \
                    f"; {len(existing)} topics exist (see `%kafka_topics` or Connection.topics())"
                raise UnknownTopicError(f"topic {name!r} does not exist at {self.bootstrap}{hint}")
        return {n: found[n] for n in names}

    def max_message_bytes(self, topic: str) -> int:
        """The largest record batch `topic` accepts (its max.message.bytes), asked once per topic."""
        known = self._max_bytes
        if topic not in known:
            resource = ConfigResource("topic", topic)
            try:
                entries = self._result(
                    self.admin().describe_configs([resource], request_timeout=CONNECT_TIMEOUT)[resource],
                    CONNECT_TIMEOUT)
                known[topic] = int(entries["max.message.bytes"].value)
            except (KafkaException, KeyError, TypeError, ValueError):
                return BROKER_MAX_MESSAGE_BYTES  # not known (yet): the broker's default, not cached
        return known[topic]

    def ensure_topic(self, name: str, partitions: int = 1, config: dict | None = None) -> int:
        """Create `name` if missing; returns its partition count."""
        existing = self.describe([name], need="write")
        if name in existing:
            return existing[name]
        futures = self.admin().create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
            operation_timeout=CONNECT_TIMEOUT, request_timeout=CONNECT_TIMEOUT,
        )
        try:
            futures[name].result(timeout=CONNECT_TIMEOUT + 5)
        except KafkaException as e:
            if code(e) != KafkaError.TOPIC_ALREADY_EXISTS:
                raise self.error(e, f"cannot create topic {name!r}", ConfigError) from None
        self.wait_for_topics([name])
        return partitions

    def wait_for_topics(self, names, exist: bool = True, timeout: float = 10.0) -> None:
        """Wait until metadata shows topics created (or deleted) a moment ago: creation returns before
        every broker's metadata cache knows, and the next client to look a topic up would miss it."""
        deadline = time.monotonic() + timeout
        while True:
            topics = self.describe(names)
            if all((n in topics) == exist for n in names) or time.monotonic() >= deadline:
                return
            time.sleep(0.1)

    def delete_topics(self, names) -> None:
        futures = self.admin().delete_topics(list(names), operation_timeout=CONNECT_TIMEOUT)
        for f in futures.values():
            try:
                f.result(timeout=CONNECT_TIMEOUT + 5)
            except KafkaException as e:
                if code(e) != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise
        self.wait_for_topics(list(names), exist=False)


def lists_brokers(bootstrap: str, timeout: float, logger=None, config: dict | None = None) -> bool:
    """Whether `bootstrap` answers a metadata request naming a broker (raises KafkaException before
    it can); `config`: more client settings (the credentials of a SASL listener)."""
    conf = {"bootstrap.servers": bootstrap, **(config or {}),
            **({"logger": logger} if logger is not None else {})}
    return bool(AdminClient(conf).list_topics(timeout=timeout).brokers)
