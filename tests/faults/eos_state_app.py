"""The application the exactly-once state fault tests kill, crash and restart (`streamframe run
--processing-guarantee ...`): an aggregation by `k`, a column (not the record key), live, into a topic:
SF_SHAPE "window" (1 s tumbling windows, emitted final) or "table" (a count and sum per k, updates).
Slowed per batch so the kills land mid-stream. Configured by environment: SF_TOPIC, SF_OUT, SF_APP_ID,
SF_STATE_DIR, SF_SHAPE, SF_COMMIT_INTERVAL (unset: the guarantee's default), STREAMFRAME_BOOTSTRAP and
STREAMFRAME_FAULT (the checkpoint's fault switch)."""

import os
import time

import streamframe as sf

# a killed member holds its partitions until its session times out: the broker's least, not 45 s
sf.connect(app_id=os.environ["SF_APP_ID"], config={"session.timeout.ms": 6000})
trades = sf.stream(os.environ["SF_TOPIC"], timestamp="ts")
slow = trades.peek(lambda batch: time.sleep(0.05))
groups = slow.groupby("k")
if os.environ["SF_SHAPE"] == "window":
    groups = groups.window(tumbling="1s", grace="60s")
result = groups.agg(n=("amount", "count"), total=("amount", "sum"))
if os.environ["SF_SHAPE"] == "window":
    result = result.emit("final")
interval = os.environ.get("SF_COMMIT_INTERVAL")
result.to_topic(os.environ["SF_OUT"], name="eos-state", batch_size=100, state_dir=os.environ["SF_STATE_DIR"],
                commit_interval=float(interval) if interval else None)
print("started", flush=True)
