"""The application the scale-out test runs as two processes with `streamframe run`: a filter and a new
column, live, to a topic. Configured by environment: SF_TOPIC, SF_OUT, SF_APP_ID, STREAMFRAME_BOOTSTRAP.
A sleep per batch keeps the first process busy until the second has joined its consumer group: long
until the file SF_GATE exists (the test makes it once both hold partitions), short after."""

import os
import time

import streamframe as sf

sf.connect(app_id=os.environ["SF_APP_ID"])
trades = sf.stream(os.environ["SF_TOPIC"])
gate = os.environ.get("SF_GATE")
slow = trades.peek(lambda batch: time.sleep(0.5 if gate and not os.path.exists(gate) else 0.1))
slow[slow.qty > 50].assign(notional=slow.qty * slow.price).to_topic(
    os.environ["SF_OUT"], name="scale", batch_size=50, commit_interval=0.3)
print("started", flush=True)
