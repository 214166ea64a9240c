"""The Kafka boundary, the only package that imports confluent_kafka: consumer and producer wrappers,
admin calls, peeking and purging topics, config redaction; its errors leave it as streamframe.errors.

May import operators, state, serde, time, errors and records; nothing above it (DESIGN §7,
pyproject [tool.importlinter]).
"""
