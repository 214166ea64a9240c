"""`%%kafka_produce TOPIC`: the cell's lines are records, written to a topic (created if missing).

    %%kafka_produce orders --key customer_id
    {"order_id": 1, "customer_id": "c1", "amount": 9.5}
    {"order_id": 2, "customer_id": "c2", "amount": 3.0}

    %%kafka_produce payments --format avro         # JSON lines, encoded with payments-value's latest schema
    {"id": 1, "amount": 9.5}

JSON records go as written (one per line, or a JSON array); CSV bodies start with a header and each row
goes as its CSV line; text lines go as they are; with `--format avro` the JSON records are encoded with
the latest schema of the topic's subject (`<topic>-value`, or `--subject`) in the Schema Registry's wire
format. `--key COL` keys records by a field, `--timestamp COL`
sets their time (epoch ms or ISO 8601; default: now).
"""

from __future__ import annotations

import csv
import json

import orjson
import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from streamframe.magics.common import StreamframeMagics, command
from streamframe.time.extract import to_epoch_ms


def _json_records(body: str):
    """(value bytes, parsed object, line number) per record: JSON lines, or one JSON array."""
    text = body.strip()
    if text.startswith("["):
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise UsageError(f"the cell is not a JSON array: {e}") from None
        return [(orjson.dumps(obj), obj, i + 1) for i, obj in enumerate(items)]
    out = []
    for no, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise UsageError(f"line {no} is not JSON ({e}): {line.strip()[:60]!r}") from None
        out.append((line.strip().encode(), obj, no))
    return out


def _csv_records(body: str):
    lines = [(no, line) for no, line in enumerate(body.splitlines(), 1) if line.strip()]
    if not lines:
        return []
    header = next(csv.reader([lines[0][1]]))
    out = []
    for no, line in lines[1:]:
        fields = next(csv.reader([line]))
        if len(fields) != len(header):
            raise UsageError(
                f"line {no} has {len(fields)} fields, the header has {len(header)} ({', '.join(header)})"
            )
        out.append((line.strip().encode(), dict(zip(header, fields)), no))
    return out


def _field(obj, name: str, no: int, option: str):
    if not isinstance(obj, dict) or name not in obj:
        raise UsageError(f"{option} {name}: the record on line {no} has no field {name!r}")
    return obj[name]


@magics_class
class ProduceMagics(StreamframeMagics):
    @line_cell_magic  # as a line magic only for --help and a clear error
    @command
    @magic_arguments()
    @argument("topic", help="the topic to write to (created if missing)")
    @argument("-f", "--format", choices=("json", "csv", "text", "avro", "jsonschema"), default=None,
              help="how the cell's records are written (default: %%config KafkaMagics.produce_format); "
                   "avro, jsonschema: the JSON records with the subject's latest schema")
    @argument("-s", "--subject", default=None,
              help="avro, jsonschema: the subject whose latest schema encodes the records "
                   "(default: TOPIC-value)")
    @argument("-k", "--key", default=None, metavar="COL", help="the field whose value is the record key")
    @argument("-t", "--timestamp", default=None, metavar="COL",
              help="the field holding each record's time (epoch ms or ISO 8601; default: now)")
    @argument("-p", "--partitions", type=int, default=None,
              help="partitions if the topic is created (default: %%config KafkaMagics.default_partitions)")
    def kafka_produce(self, args, cell=None):
        """Write the cell's records (JSON lines, CSV with a header, or text lines) to a Kafka topic."""
        fmt = args.format or self.options.produce_format
        if cell is None:
            raise UsageError(f"%%kafka_produce is a cell magic: `%%kafka_produce {args.topic}` "
                             "on the first line, one record per line below")
        body = cell
        if not body.strip():
            raise UsageError("the cell is empty: write one record per line below the magic")
        if fmt == "text":
            if args.key or args.timestamp:
                raise UsageError(
                    "--key and --timestamp name fields; text records have none (use --format json or csv)"
                )
            records = [(line.encode(), None, no) for no, line in enumerate(body.splitlines(), 1)
                       if line.strip()]
        else:
            records = _json_records(body) if fmt in ("json", "avro", "jsonschema") else _csv_records(body)
        if args.subject and fmt not in ("avro", "jsonschema"):
            raise UsageError("--subject goes with --format avro or jsonschema")
        if fmt in ("avro", "jsonschema"):
            records = self._registered(records, args.subject or f"{args.topic}-value", fmt)
        if not records:
            raise UsageError("the cell has a CSV header but no records")
        keys = [None] * len(records)
        if args.key:
            keys = [None if (v := _field(obj, args.key, no, "--key")) is None else
                    (v if isinstance(v, str) else orjson.dumps(v).decode()).encode()
                    for _, obj, no in records]
        stamps = [0] * len(records)
        if args.timestamp:
            times = pd.Series([_field(obj, args.timestamp, no, "--timestamp") for _, obj, no in records],
                              dtype=object)
            ms, ok = to_epoch_ms(times)
            if not ok.all():
                bad = int((~ok).argmax())
                raise UsageError(f"--timestamp {args.timestamp}: {times[bad]!r} on line {records[bad][2]} "
                                 "is not a time (epoch ms or ISO 8601)")
            stamps = ms.tolist()
        return self._write(args.topic, [v for v, _, _ in records], keys, stamps, args.partitions)

    def _registered(self, records: list, subject: str, fmt: str) -> list:
        """The JSON records encoded with `subject`'s latest schema, in the wire format."""
        from streamframe.serde.avro import AvroFormat
        from streamframe.serde.jsonschema import JsonSchemaFormat

        registry = self.connection().schema_registry
        if registry is None:
            raise UsageError(f"--format {fmt} needs a Schema Registry: sf.connect(schema_registry=...) or "
                             "$STREAMFRAME_SCHEMA_REGISTRY")
        latest = registry.latest(subject)
        if latest is None:
            raise UsageError(f"the Schema Registry has no subject {subject!r}: register a schema first "
                             f"(or write a frame with to_topic(..., format={fmt!r}), which registers one)")
        sid, kind, text = latest
        wanted = {"avro": "AVRO", "jsonschema": "JSON"}[fmt]
        if kind != wanted:
            raise UsageError(f"subject {subject!r} holds a {kind} schema, not {wanted}")
        out = []
        if fmt == "jsonschema":
            check = JsonSchemaFormat(json.loads(text))
            decoded = check.decode([v for v, _, _ in records])
            if decoded.errors:
                i, why = min(decoded.errors.items())
                raise UsageError(f"line {records[i][2]} does not fit the latest schema of {subject!r} "
                                 f"(id {sid}): {why.partition(': ')[2]}")
            return [(b"\x00" + sid.to_bytes(4, "big") + v, obj, no) for v, obj, no in records]
        avro = AvroFormat(text)
        for _, obj, no in records:
            try:
                out.append((avro.encode_records([obj], sid)[0], obj, no))
            except ValueError as e:
                why = str(e).partition(": ")[2]
                raise UsageError(f"line {no} does not fit the latest schema of {subject!r} (id {sid}): "
                                 f"{why}") from None
        return out

    def _write(self, topic: str, values, keys, stamps, partitions) -> None:
        from streamframe.kafka.writer import Output

        conn = self.connection()
        created = ""
        if topic not in conn.topics():
            partitions = partitions or self.options.default_partitions
            conn.ensure_topic(topic, partitions)
            conn.wait_for_topics([topic])
            created = f" (created the topic with {partitions} partition{'s' if partitions != 1 else ''})"
        output = Output(conn)
        output.produce_many(topic, values, keys, stamps)
        output.flush(30)
        print(f"wrote {len(values)} record{'s' if len(values) != 1 else ''} to {topic!r}{created}")
