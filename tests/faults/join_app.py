"""The join application the fault tests kill: orders enriched with the current price of their symbol.

Configured by environment: SF_ORDERS, SF_PRICES, SF_OUT, SF_APP_ID, SF_STATE_DIR, STREAMFRAME_BOOTSTRAP.
"""

import os
import time
from pathlib import Path

import streamframe as sf

sf.connect(app_id=os.environ["SF_APP_ID"])
orders = sf.stream(os.environ["SF_ORDERS"]).peek(lambda batch: time.sleep(0.1))
prices = sf.table(os.environ["SF_PRICES"], key="symbol")
enriched = orders.join(prices, on="symbol", how="left")
query = enriched.to_topic(os.environ["SF_OUT"], name="fault-join", batch_size=100, commit_interval=0.3,
                          state_dir=Path(os.environ["SF_STATE_DIR"]))
query.wait()
