"""The benchmark workloads written for Quix Streams, run by benchmarks/quix.py in Quix's own environment
(so this file imports neither streamframe nor the other benchmark modules).

    python quix_apps.py filter_assign '{"bootstrap": ..., "input": ..., "output": ..., "expected": ...}'

Quix Streams has no run to the end of its input: `run(count=n)` stops after n outputs, the number the
harness knows the input gives. Prints "elapsed_s=..." and exits 0.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid

from quixstreams import Application

# The consumer settings every contestant reads with: librdkafka's default fetch.queue.backoff.ms (1000)
# pauses fetching a second whenever its queue is full, which read a backlog 5x slower.
CONSUMER = {"fetch.wait.max.ms": 100, "fetch.queue.backoff.ms": 20}


def filter_assign(bootstrap: str, input: str, output: str, expected: int, qty_above: int) -> float:
    t0 = time.perf_counter()
    app = Application(broker_address=bootstrap, consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
                      auto_offset_reset="earliest", consumer_extra_config=CONSUMER, loglevel=logging.WARNING)
    source = app.topic(input, key_deserializer="bytes", value_deserializer="json")
    sink = app.topic(output, key_serializer="bytes", value_serializer="json")
    sdf = app.dataframe(source)
    sdf = sdf[sdf["qty"] > qty_above]
    sdf["notional"] = sdf["qty"] * sdf["price"]
    sdf.to_topic(sink)
    app.run(count=expected, collect=False)
    return time.perf_counter() - t0


if __name__ == "__main__":
    elapsed = {"filter_assign": filter_assign}[sys.argv[1]](**json.loads(sys.argv[2]))
    print(f"elapsed_s={elapsed:.3f}")
