"""Topic-to-topic copy (`connector.class=topic`): records of `topics=` copied to `topic=` as they are
(key, value, timestamp and headers untouched), like a one-cluster MirrorMaker.

    %kafka_source mirror connector.class=topic topics=orders topic=orders-copy
"""

from __future__ import annotations

from streamframe.connectors.config import Settings
from streamframe.connectors.sink import SinkConnector
from streamframe.errors import ConfigError


class TopicCopy(SinkConnector):
    kind = "copy"
    short_name = "topic"
    KEYS = {
        "topics": "the topic(s) to copy from, comma-separated",
        "topic": "the topic to copy to (created if missing, with the source's partition count)",
        "partitions": "partitions of the target topic when it is created (default: as the source)",
    }

    @classmethod
    def settings_help(cls) -> dict[str, str]:
        # records are copied as bytes: none of the sink's decoding settings apply
        undecoded = ("format", "columns", "metadata", "errors.tolerance")
        return {k: v for k, v in super().settings_help().items() if k not in undecoded}

    def configure(self, s: Settings) -> None:
        self.target = s.require("topic", "the topic to copy to")
        sources = s.items("topics")
        if not sources:
            raise ConfigError("missing required setting topics=... (the topic(s) to copy from)")
        if self.target in sources:
            raise ConfigError(f"topic={self.target} is also in topics=: a topic cannot be copied into itself")
        # the sink settings, without the alias topic= (the target here)
        super().configure(Settings({k: v for k, v in s.raw.items() if k != "topic"}))
        self.target_partitions = s.integer("partitions", None, minimum=1)
        self.output = None

    @property
    def topics(self) -> list[str]:
        return [f"{','.join(self.topic_names)} → {self.target}"]

    def open_target(self) -> None:
        self.connection.ensure_topic(self.target, self.target_partitions or max(self.partitions.values()))
        self.connection.wait_for_topics([self.target])

    def run(self) -> None:
        from streamframe.kafka.writer import Output

        self.output = Output(self.client())
        super().run()

    def handle(self, topic: str, raw) -> None:
        if any(h for h in raw.headers):
            for value, key, ts, headers in zip(raw.values, raw.keys, raw.timestamps, raw.headers):
                self.output.produce(self.target, value, key=key, timestamp=ts, headers=headers)
        else:
            self.output.produce_many(self.target, raw.values, raw.keys, raw.timestamps)
        self.output.poll()

    def flush(self) -> None:
        if self.output is not None:
            self.output.flush()
