"""What operators get from the runtime when they open: partition count, stores, a clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streamframe.state.manager import StoreManager


@dataclass
class OperatorContext:
    """What an operator is given when it opens (the one argument of Operator.open)."""

    stores: StoreManager
    partitions: int = 1
    clock: Callable[[], float] = field(default=time.monotonic)

    def store(self, op, index_names, suffix: str = "", kind=None):
        return self.stores.store(op, index_names, suffix, **({"kind": kind} if kind is not None else {}))
