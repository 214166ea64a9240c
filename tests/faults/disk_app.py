"""The application the disk-full test runs (`streamframe run`): a count and sum per record key in 1 s
windows held open for a minute of grace (so its state grows with the input), emitted final, to a topic,
with durable state in the test's small mount. Configured by environment: SF_TOPIC, SF_OUT, SF_APP_ID,
SF_STATE_DIR, STREAMFRAME_BOOTSTRAP. Slowed per batch so the disk fills mid-stream."""

import os
import time

import streamframe as sf

sf.connect(app_id=os.environ["SF_APP_ID"], config={"session.timeout.ms": 6000})
trades = sf.stream(os.environ["SF_TOPIC"], timestamp="ts")
slow = trades.peek(lambda batch: time.sleep(0.02))
windows = (slow.groupby("_key").window(tumbling="1s", grace="60s")
           .agg(n=("amount", "count"), total=("amount", "sum")).emit("final"))
windows.to_topic(os.environ["SF_OUT"], name="disk", batch_size=100, commit_interval=0.3,
                 state_dir=os.environ["SF_STATE_DIR"])
print("started", flush=True)
