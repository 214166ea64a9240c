"""The operator protocol: a physical node that turns one batch (a DataFrame) into the next.

Operators are plain Python over pandas: no Kafka, no widgets, no IPython, so the same code runs under
the TestDriver, in the kernel and headless. A batch's index is the position of each row's input record
in its raw batch; operators keep it (or repeat it, for explode) so errors can name their record.
"""

from __future__ import annotations

import pandas as pd


class Operator:
    """One physical step. `process` must be pure for stateless operators: on an error the runtime
    re-runs it on parts of the batch to find exactly which records fail."""

    def __init__(self, node):
        self.node = node
        self.children: list[Operator] = []

    @property
    def name(self) -> str:
        return self.node.name

    def process(self, batch: pd.DataFrame) -> pd.DataFrame | None:
        raise NotImplementedError
