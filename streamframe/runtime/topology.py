"""Runs compiled operators over a batch, depth-first, isolating the records an operator fails on.

A batch goes from its source through every operator to the root before the next batch is taken (as in
Kafka Streams, nothing is buffered between operators). When an operator raises, the batch is split in
halves until the failing records are found; those are reported with the error, the rest go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from streamframe.operators.base import Operator
from streamframe.plan.columns import reads, unknown_column
from streamframe.plan.metadata import deferred_metadata
from streamframe.plan.nodes import Node
from streamframe.plan.values import value_projection
from streamframe.records import META, RawBatch
from streamframe.runtime.compile import compile_plan


@dataclass
class BatchResult:
    """What one raw batch produced: output rows (in input order) and failed input positions."""

    outputs: list[pd.DataFrame] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame | None:
        if not self.outputs:
            return None
        return self.outputs[0] if len(self.outputs) == 1 else pd.concat(self.outputs)


class Topology:
    def __init__(self, root: Node):
        self.root = root
        self.ops, self.root_op = compile_plan(root)
        self.sources = {n.id: self.ops[n.id] for n in root.sources()}
        self.positions = {n.id: i for i, n in enumerate(root.walk())}
        for source_id, deferred in deferred_metadata(root).items():
            self.sources[source_id].deferred = deferred
        # {node id: the columns its operator reads by name}, until its first batch has been checked
        self._unchecked = {n.id: r for n in root.walk() if (r := reads(n)) and n.id in self.ops}

    @property
    def stateful(self) -> list[Operator]:
        return [op for op in self.ops.values() if op.stateful]

    def open(self, ctx) -> None:
        for op in self.ops.values():
            op.open(ctx)

    def idle(self) -> BatchResult:
        """Let operators act on wall-clock time (close_after); their output flows on as usual."""
        result = BatchResult()
        for op in self.ops.values():
            out = op.on_idle()
            if out is not None and len(out):
                if op is self.root_op:
                    result.outputs.append(out)
                for child in op.children:
                    self._push(child, out, result, op)
        return result

    def process(self, source_id: int, raw: RawBatch, wanted=META) -> BatchResult:
        """`wanted`: the metadata columns the output's reader uses, of those the source left out."""
        source = self.sources[source_id]
        frame, errors = source.decode(raw)
        result = self.push(source_id, frame)
        result.errors.update(errors)
        if source.deferred:  # what the source left out, for the rows that came through
            result.outputs = [source.with_metadata(out, raw, wanted) for out in result.outputs]
        if source.projected and source.projection.splice:  # the records as consumed
            result.outputs = [source.with_record(out, raw) for out in result.outputs]
        return result

    def project_values(self, splice: bool) -> None:
        """Let JSON sources decode only the fields read on the way to an aggregation or, with `splice`
        (the output takes records as consumed), to a JSON topic (plan/values.py)."""
        for source_id, projection in value_projection(self.root, splice).items():
            self.sources[source_id].projection = projection

    def decode(self, source_id: int, raw: RawBatch):
        """(decoded rows, {position: reason}) of a raw batch from a source."""
        return self.sources[source_id].decode(raw)

    def push(self, source_id: int, frame: pd.DataFrame) -> BatchResult:
        """Decoded rows of a source through every operator below it."""
        result = BatchResult()
        if len(frame):
            self._push(self.sources[source_id], frame, result)
        return result

    def _push(self, op: Operator, batch: pd.DataFrame, result: BatchResult,
              sender: Operator | None = None) -> None:
        if self._unchecked and op.node.id in self._unchecked:
            self._check_columns(op, batch)
        if op.by_side:  # a join: which input the batch comes from matters
            side = [p.id for p in op.node.parents].index(sender.node.id)
            out = _run_isolating(op, batch, result.errors, lambda b: op.process_side(side, b))
        else:
            out = _run_isolating(op, batch, result.errors)
        rejected = op.rejected
        if rejected:
            result.errors.update(rejected)
            rejected.clear()
        if out is None or len(out) == 0:
            return
        if op is self.root_op:
            result.outputs.append(out)
        for child in op.children:
            self._push(child, out, result, op)


    def _check_columns(self, op: Operator, batch: pd.DataFrame) -> None:
        """An operator's first batch must have every column its node names: one no record has is a
        mistake in the frame (plan/columns.py), which fails the query rather than dead-letter each record."""
        needed = self._unchecked.pop(op.node.id)
        missing = sorted(needed.difference(batch.columns))
        if missing:
            raise unknown_column(op.node, missing[0], batch.columns, len(batch.index.unique()))


def _run_isolating(op: Operator, batch: pd.DataFrame, errors: dict[int, str], fn=None) -> pd.DataFrame | None:
    fn = fn or op.process
    try:
        return fn(batch)
    except Exception as exc:  # noqa: BLE001 - any user or data error is attributed to records
        if len(batch) == 1:
            reason = f"{op.name}: {type(exc).__name__}: {exc}"
            for label in batch.index.unique():
                errors[int(label)] = reason
            return None
    mid = len(batch) // 2
    parts = [_run_isolating(op, batch.iloc[:mid], errors, fn),
             _run_isolating(op, batch.iloc[mid:], errors, fn)]
    parts = [p for p in parts if p is not None and len(p)]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else pd.concat(parts)
