"""Client configuration: defaults, and keeping secrets out of every repr, log line and error.

    >>> redact({"bootstrap.servers": "h:9092", "sasl.password": "hunter2"})
    {'bootstrap.servers': 'h:9092', 'sasl.password': '********'}
"""

from __future__ import annotations

import re

MASK = "********"
_SECRET_KEY = re.compile(r"(password|secret|token|credential|jaas|\.pem$|keystore|truststore|private"
                         r"|\.key$|api\.key)",
                         re.IGNORECASE)


def is_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact(config: dict) -> dict:
    """A copy of `config` with every secret value masked."""
    return {k: (MASK if is_secret(k) and v not in (None, "") else v) for k, v in config.items()}


def secret_values(config: dict) -> list[str]:
    return sorted({str(v) for k, v in config.items()
                   if is_secret(k) and v not in (None, "") and len(str(v)) >= 3},
                  key=len, reverse=True)


def scrub(text: str, config: dict) -> str:
    """`text` with every secret value of `config` masked, wherever it appears."""
    for secret in secret_values(config):
        text = text.replace(secret, MASK)
    return text


CONSUMER_DEFAULTS = {
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "fetch.wait.max.ms": 100,
    # librdkafka's default (1000 ms) pauses fetching a full second whenever the prefetch queue is full,
    # although a batch drains it in milliseconds (benchmarks/README.md, workload 1).
    "fetch.queue.backoff.ms": 20,
    "socket.connection.setup.timeout.ms": 10000,
}

PRODUCER_DEFAULTS = {
    "enable.idempotence": True,
    "linger.ms": 10,
    "batch.num.messages": 10000,
    "queue.buffering.max.messages": 1000000,
    "queue.buffering.max.kbytes": 1048576,
    # The Java client's partitioner, so records land where Kafka Streams and Java producers put them.
    "partitioner": "murmur2_random",
    "delivery.report.only.error": True,
    "socket.connection.setup.timeout.ms": 10000,
}
