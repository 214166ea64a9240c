"""streamframe's final windows equal Kafka Streams' own, on the same topics.

The oracle is a Kafka Streams 4.3.1 topology (tests/oracle/kstreams, built with Maven): groupByKey,
windowedBy, aggregate count and sum, suppress(untilWindowCloses). The input has out-of-order and late
records on two partitions; both read the topic as it stands and report the windows their stream time
closed.
"""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

import streamframe as sf
from tests.integration.helpers import create_topic, produce
from tests.oracle.kstreams import run_window_oracle

pytestmark = pytest.mark.integration

CASES = [
    ("tumbling", {"tumbling": 1000, "grace": 300}, {"size_ms": 1000, "grace_ms": 300}),
    (
        "hopping",
        {"hopping": 1000, "every": 250, "grace": 200},
        {"size_ms": 1000, "advance_ms": 250, "grace_ms": 200},
    ),
    ("session", {"session": 300, "grace": 100}, {"gap_ms": 300, "grace_ms": 100}),
    ("sliding", {"sliding": 400, "grace": 150}, {"size_ms": 400, "grace_ms": 150}),
]


@pytest.fixture(scope="module")
def input_topic(bootstrap):
    """1,500 records, 12 keys, two partitions, event times drifting forward with jitter (so some are
    out of order and some arrive after their windows closed)."""
    import uuid

    rng = np.random.default_rng(42)
    n = 1500
    ts = 1_700_000_000_000 + np.arange(n) * 20 + rng.integers(-900, 100, n)
    df = pd.DataFrame(
        {"key": [f"k{i}" for i in rng.integers(0, 12, n)], "ts": ts, "amount": rng.integers(1, 1000, n)}
    )
    topic = f"ks-windows-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic, partitions=2)
    produce(
        bootstrap,
        topic,
        [orjson.dumps({"ts": int(t), "amount": int(a)}) for t, a in zip(df.ts, df.amount)],
        keys=df["key"].tolist(),
    )
    return topic


@pytest.mark.parametrize("window,frame_args,oracle_args", CASES, ids=[c[0] for c in CASES])
def test_final_windows_equal_kafka_streams(window, frame_args, oracle_args, input_topic, conn, bootstrap):
    expected = run_window_oracle(bootstrap, input_topic, window=window, settle_ms=500, **oracle_args)
    table = (
        sf.stream(input_topic, timestamp="ts")
        .groupby("_key")
        .window(**frame_args)
        .agg(count=("amount", "size"), sum=("amount", "sum"))
        .emit("final")
    )
    got = table.run().reset_index().rename(columns={"_key": "key"})
    for c in ("window_start", "window_end"):
        got[c] = got[c].astype("datetime64[ms, UTC]").astype("int64")
    got = (
        got[["key", "window_start", "window_end", "count", "sum"]]
        .sort_values(["key", "window_start", "window_end"])
        .reset_index(drop=True)
    )
    # Kafka Streams may emit a session or a sliding window twice (see tests/oracle/kstreams.py (d)-(f));
    # as a table, the last one counts.
    expected = expected.drop_duplicates(["key", "window_start", "window_end"], keep="last").reset_index(
        drop=True
    )
    assert expected.attrs["oracle"]["dropped_records"] > 0, "the input should exercise late records"
    assert len(expected) > 50
    pd.testing.assert_frame_equal(got, expected[got.columns], check_dtype=False)
