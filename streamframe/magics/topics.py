"""`%kafka_topics`: list, create, describe and delete topics.

    %kafka_topics                                    # DataFrame: name, partitions
    %kafka_topics list 'orders*'                     # only names matching a glob pattern
    %kafka_topics create orders --partitions 3 --config retention.ms=86400000 cleanup.policy=delete
    %kafka_topics describe orders                    # per partition: leader, replicas, offsets, records;
                                                     # with a Schema Registry, the subjects' latest schemas
    %kafka_topics delete orders orders-copy
"""

from __future__ import annotations

import fnmatch

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from streamframe.connectors.config import parse_pairs
from streamframe.magics.common import StreamframeMagics, command

ACTIONS = ("list", "create", "describe", "delete")


@magics_class
class TopicMagics(StreamframeMagics):
    @line_magic
    @command
    @magic_arguments()
    @argument("action", nargs="?", default="list", choices=ACTIONS, help="what to do (default: list)")
    @argument("names", nargs="*", help="topic name(s); for list, a glob pattern")
    @argument("-p", "--partitions", type=int, default=None,
              help="create: the partition count (default: %%config KafkaMagics.default_partitions)")
    @argument("-c", "--config", nargs="+", default=[], metavar="KEY=VALUE",
              help="create: topic settings, e.g. retention.ms=60000 cleanup.policy=compact")
    @argument("--all", action="store_true",
              help="describe: show every setting, not only those set on the topic")
    def kafka_topics(self, args, cell=None):
        """List, create, describe or delete Kafka topics."""
        action = getattr(self, f"_{args.action}")
        if args.action != "create" and (args.partitions is not None or args.config):
            raise UsageError("--partitions and --config go with create")
        if args.action in ("create", "describe") and len(args.names) != 1:
            raise UsageError(f"{args.action} takes one topic name, e.g. %kafka_topics {args.action} orders")
        if args.action == "delete" and not args.names:
            raise UsageError("delete takes the topic name(s) to delete")
        if args.action == "list" and len(args.names) > 1:
            raise UsageError("list takes at most one glob pattern, e.g. %kafka_topics list 'orders*'")
        return action(args)

    def _list(self, args) -> pd.DataFrame:
        topics = self.connection().topics()
        names = sorted(topics)
        if args.names:
            names = [n for n in names if fnmatch.fnmatchcase(n, args.names[0])]
        return pd.DataFrame({"name": names, "partitions": [topics[n] for n in names]},
                            columns=["name", "partitions"])

    def _create(self, args) -> None:
        name = args.names[0]
        partitions = self.options.default_partitions if args.partitions is None else args.partitions
        if partitions < 1:
            raise UsageError(f"--partitions must be at least 1, got {partitions}")
        config = parse_pairs(args.config)
        conn = self.connection()
        existing = conn.topics()
        if name in existing:
            raise UsageError(f"topic {name!r} already exists ({existing[name]} partitions)")
        conn.ensure_topic(name, partitions, config)
        conn.wait_for_topics([name], exist=True)
        print(f"created topic {name!r} with {partitions} partition{'s' if partitions != 1 else ''}")

    def _describe(self, args) -> pd.DataFrame:
        from IPython.display import display

        from streamframe.kafka.peek import describe

        conn = self.connection()
        partitions, configs = describe(conn, args.names[0])
        shown = configs if args.all else configs[~configs["default"]]
        if len(shown):
            display(shown.drop(columns="default").set_index("name"))
        if conn.schema_registry is not None:  # the topic's subjects (TopicNameStrategy) and latest schemas
            subjects = [v for part in ("key", "value")
                        if (v := conn.schema_registry.version(f"{args.names[0]}-{part}")) is not None]
            if subjects:
                display(pd.DataFrame(subjects).set_index("subject"))
            partitions.attrs["subjects"] = {v["subject"]: v for v in subjects}
        partitions.attrs["config"] = dict(zip(configs["name"], configs["value"]))
        return partitions

    def _delete(self, args) -> None:
        from streamframe.kafka.peek import delete_topics

        conn = self.connection()
        delete_topics(conn, args.names)
        conn.wait_for_topics(args.names, exist=False)
        print(f"deleted topic{'s' if len(args.names) > 1 else ''} {', '.join(map(repr, args.names))}")
