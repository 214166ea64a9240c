"""The application the exactly-once fault test kills and restarts (`streamframe run
--processing-guarantee ...`): a filter and a new column, live, into a topic, slowed down per batch so
the kills land mid-stream. Configured by environment: SF_TOPIC, SF_OUT, SF_APP_ID, SF_STATE_DIR,
STREAMFRAME_BOOTSTRAP, and SF_COMMIT_INTERVAL (unset: the guarantee's default)."""

import os
import time

import streamframe as sf

sf.connect(app_id=os.environ["SF_APP_ID"])
trades = sf.stream(os.environ["SF_TOPIC"])
slow = trades.peek(lambda batch: time.sleep(0.02))
slow[slow.qty > 50].assign(notional=slow.qty * slow.price).to_topic(
    os.environ["SF_OUT"], name="eos", batch_size=100, state_dir=os.environ["SF_STATE_DIR"],
    commit_interval=float(os.environ["SF_COMMIT_INTERVAL"]) if "SF_COMMIT_INTERVAL" in os.environ else None)
print("started", flush=True)
