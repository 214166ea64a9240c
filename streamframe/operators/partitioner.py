"""Kafka's default partitioner (murmur2 of the key bytes, as the Java client computes it), so a
re-keyed group lands on the partition a repartition topic would give it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from streamframe.serde import key_bytes

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """org.apache.kafka.common.utils.Utils.murmur2, as an unsigned 32-bit int."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    rest = length % 4
    tail = length - rest
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    """Utils.toPositive(murmur2(key)) % partitions."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Partitioner:
    """Partitions for a column of keys, computing each distinct key once."""

    def __init__(self, partitions: int):
        self.partitions = max(1, partitions)
        self._cache: dict = {}

    def __call__(self, keys: pd.Series) -> np.ndarray:
        cache = self._cache
        uniques = pd.unique(keys)
        for k in uniques:
            if k not in cache:
                raw = key_bytes(k)
                # null keys are rejected before
                cache[k] = 0 if raw is None else partition_for(raw, self.partitions)
        if len(cache) > 1_000_000:
            self._cache = {}
        return keys.map(cache).to_numpy(dtype="int32")
