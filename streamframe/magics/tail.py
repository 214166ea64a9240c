"""`%kafka_tail TOPIC`: the last records of a topic as a DataFrame, or `--follow` them live.

    %kafka_tail orders                   # the last 10 (%config KafkaMagics.tail_default) over all partitions
    %kafka_tail orders -n 50 --format csv --columns id,name,amount
    %kafka_tail orders --follow --timeout 30      # keeps showing the latest; interrupt the kernel to stop
    %kafka_tail payments --format avro            # Confluent's wire format, schemas from the registry
    %kafka_tail people --format jsonschema        # the same, JSON bodies checked against their schemas

The values are decoded (auto: JSON when every record is JSON, Avro when every record is in the Schema
Registry's wire format and the connection has a registry — or JSON Schema, by the first record's schema
— else text) and the records' `_key`,
`_timestamp`, `_partition` and `_offset` follow as columns. No consumer group is used or committed.
"""

from __future__ import annotations

import time

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from streamframe.magics.common import StreamframeMagics, command
from streamframe.serde import attach_registry, decode_keys, value_format
from streamframe.serde.wire import HEADER
from streamframe.time.extract import ms_to_datetime

_BY_KIND = {"AVRO": "avro", "JSON": "jsonschema"}  # registry schema types %kafka_tail decodes


def _registry_format(fmt: str, raw, registry) -> str | None:
    """The format of a Schema Registry to decode with: the one asked for, or for "auto" the type of the
    first record's schema when every record is in the wire format."""
    if fmt in _BY_KIND.values():
        return fmt
    if fmt != "auto" or registry is None or not len(raw) or \
            not all(v is not None and len(v) >= HEADER and v[0] == 0 for v in raw.values):
        return None
    found = registry.schema(int.from_bytes(raw.values[0][1:HEADER], "big"))
    return None if found is None else _BY_KIND.get(found[0])


def records_frame(raw, fmt: str, columns=None, registry=None) -> pd.DataFrame:
    """A RawBatch as a DataFrame: decoded value columns (a record that does not decode keeps its raw
    text in `_raw` with the reason in `_error`), then the record metadata. `registry`: the connection's
    Schema Registry, for Avro values."""
    n = len(raw)
    by_registry = _registry_format(fmt, raw, registry)
    if by_registry is not None:
        decoded = attach_registry(value_format(by_registry), registry).decode(raw.values)
    elif fmt == "auto":
        decoded = value_format("json").decode(raw.values) if n else None
        if decoded is None or decoded.errors:
            decoded = value_format("text").decode(raw.values)
    else:
        decoded = value_format(fmt, columns).decode(raw.values)
    frame = decoded.frame.reindex(pd.RangeIndex(n))
    if decoded.errors:
        frame["_raw"] = pd.Series({i: (raw.values[i] or b"").decode("utf-8", "replace") if by_registry is None
                                   else (raw.values[i] or b"").hex() for i in decoded.errors}, dtype=object)
        frame["_error"] = pd.Series(decoded.errors, dtype=object)
    frame["_key"] = decode_keys(raw.keys, "text", frame.index)
    frame["_timestamp"] = ms_to_datetime(raw.timestamps)
    frame["_partition"] = pd.Series(raw.partitions, dtype="int32", index=frame.index)
    frame["_offset"] = pd.Series(raw.offsets, dtype="int64", index=frame.index)
    return frame


@magics_class
class TailMagics(StreamframeMagics):
    @line_magic
    @command
    @magic_arguments()
    @argument("topic", help="the topic to read")
    @argument("-n", type=int, default=None,
              help="how many records (default: %%config KafkaMagics.tail_default)")
    @argument("-f", "--follow", action="store_true",
              help="keep showing the latest records as they arrive, until interrupted or --timeout")
    @argument("--format", default=None,
              choices=("auto", "json", "csv", "text", "bytes", "avro", "jsonschema"),
              help="value format (default: %%config KafkaMagics.tail_format)")
    @argument("--columns", default=None, metavar="A,B,...", help="column names of CSV values")
    @argument("--timeout", type=float, default=None,
              help="--follow: stop after this many seconds (default: %%config KafkaMagics.follow_timeout)")
    def kafka_tail(self, args, cell=None):
        """Show the last records of a Kafka topic (all partitions, by timestamp), or follow it live."""
        from streamframe.kafka.peek import TopicTail

        n = self.options.tail_default if args.n is None else args.n
        if n < 0:
            raise UsageError(f"-n must be 0 or more, got {n}")
        if args.timeout is not None and not args.follow:
            raise UsageError("--timeout goes with --follow")
        fmt = args.format or self.options.tail_format
        columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
        conn = self.connection()
        registry = conn.schema_registry
        if fmt in _BY_KIND.values() and registry is None:
            raise UsageError(f"--format {fmt} reads schemas from a Schema Registry: "
                             "sf.connect(schema_registry=...) or $STREAMFRAME_SCHEMA_REGISTRY")
        tail = TopicTail(conn, args.topic, n)
        try:
            frame = records_frame(tail.last(), fmt, columns, registry)
            if not args.follow:
                return frame
            timeout = self.options.follow_timeout if args.timeout is None else args.timeout
            self._follow(tail, frame, n, fmt, columns, timeout, registry)
        finally:
            tail.close()
        return None

    def _follow(self, tail, frame: pd.DataFrame, n: int, fmt: str, columns, timeout, registry=None) -> None:
        from IPython.display import display

        started, seen = time.monotonic(), 0

        def status() -> str:
            return (f"following {tail.topic!r}: {seen} new record{'s' if seen != 1 else ''} "
                    "(interrupt to stop)")

        handle = display(frame, display_id=True) if self.live else None
        line = display(status(), display_id=True) if self.live else None
        if not self.live:
            print(frame.to_string() if len(frame) else f"(no records in {tail.topic!r} yet)")
        try:
            while timeout is None or time.monotonic() - started < timeout:
                wait = 0.5 if timeout is None else max(0.0, min(0.5, timeout - (time.monotonic() - started)))
                new = tail.poll(wait)
                if not len(new):
                    continue
                seen += len(new)
                fresh = records_frame(new, fmt, columns, registry)
                if self.live:
                    frame = pd.concat([frame, fresh], ignore_index=True).tail(n).reset_index(drop=True)
                    handle.update(frame)
                    line.update(status())
                else:
                    print(fresh.to_string(header=False))
        except KeyboardInterrupt:
            pass
        print(f"stopped following {tail.topic!r} after {seen} new record{'s' if seen != 1 else ''}")
