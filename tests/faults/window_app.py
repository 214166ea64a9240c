"""The application the fault tests kill: a windowed count and sum, emitted final, to a topic.

Configured by environment: SF_TOPIC, SF_OUT, SF_APP_ID, SF_STATE_DIR, STREAMFRAME_BOOTSTRAP. A short
sleep per batch keeps it running long enough to be killed mid-stream.
"""

import os
import time
from pathlib import Path

import streamframe as sf

sf.connect(app_id=os.environ["SF_APP_ID"])
trades = sf.stream(os.environ["SF_TOPIC"], timestamp="ts")
slow = trades.peek(lambda batch: time.sleep(0.05))
windows = (slow.groupby("_key").window(tumbling="1s", grace="200ms")
           .agg(n=("amount", "count"), total=("amount", "sum")).emit("final"))
query = windows.to_topic(os.environ["SF_OUT"], name="fault-app", batch_size=150, commit_interval=0.3,
                         state_dir=Path(os.environ["SF_STATE_DIR"]))
print("started", flush=True)
query.wait()
