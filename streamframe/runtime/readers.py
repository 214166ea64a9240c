"""In-memory input: a DataFrame read in chunks, shaped like a topic's batches."""

from __future__ import annotations

import time

from streamframe.errors import StreamframeError
from streamframe.records import RawBatch


class PandasReader:
    """Reads a `from_pandas` source in chunks; a RawBatch's values are row positions of the frame."""

    bounded = True

    def __init__(self, node, topic: str):
        self.node, self.topic = node, topic
        self._next = 0
        self.on_revoke = None
        self.start_offsets: dict[tuple[str, int], int] = {}  # unused: a DataFrame is read from its start
        self.end: dict[tuple[str, int], int] = {}  # no partitions of its own: `until=` a time waits on none

    def open(self) -> None:
        self._next = 0

    def poll(self, max_records: int, timeout: float) -> dict[str, RawBatch]:
        n = len(self.node.frame)
        if self._next >= n:
            time.sleep(min(timeout, 0.01))
            return {}
        lo, hi = self._next, min(n, self._next + max_records)
        self._next = hi
        now = int(time.time() * 1000)
        positions = list(range(lo, hi))
        return {self.topic: RawBatch(self.topic, positions, [None] * len(positions), [now] * len(positions),
                                     [0] * len(positions), positions, [None] * len(positions))}

    def at_end(self) -> bool:
        return self._next >= len(self.node.frame)

    def positions(self) -> dict[tuple[str, int], int]:
        return {}  # no offsets to commit: a restarted query reads the DataFrame again

    def pending_partitions(self) -> set[tuple[str, int]]:
        return set()  # a join's merge does not wait on it: its rows are all there

    def commit(self, offsets=None) -> None:
        pass

    def transaction_offsets(self, offsets) -> None:
        return None

    def rewind(self) -> None:
        raise StreamframeError("an in-memory input cannot rewind an aborted transaction; run it again")

    def lag(self) -> int:
        return len(self.node.frame) - self._next

    def close(self) -> None:
        pass
