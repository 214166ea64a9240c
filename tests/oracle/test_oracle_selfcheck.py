"""Self-check of the two oracles: Kafka Streams 4.3.1 (Java, real broker) == tests/oracle/rules.py.

Each case is a tiny input on a 2-partition topic (keys pinned to partitions) with out-of-order records,
late records, records exactly on the close boundary, and partitions whose stream times differ (a window
that only the other partition's stream time would close stays open). The Python rules are also checked
against hand-computed answers, without a broker.
"""

from __future__ import annotations

import json
import random
import time
import uuid

import pandas as pd
import pytest

from .rules import final_windows, windows_for

# (key, ts, amount, partition) in produce order, i.e. per-partition offset order.
TUMBLING = [
    ("a", 1, 1.0, 0),
    ("a", 7, 2.0, 0),
    ("b", 12, 4.0, 0),  # stream time 12: [0,10) still open with grace 5 (10 > 12 - 5)
    ("a", 3, 8.0, 0),  # out of order, accepted
    ("a", 15, 16.0, 0),  # stream time 15: [0,10) closes (10 <= 15 - 5)
    ("a", 9, 32.0, 0),  # late: windowEnd 10 == close time 10 -> dropped
    ("b", 26, 64.0, 0),  # closes [10,20)
    ("a", 31, 128.0, 0),  # [20,30) of b stays open: 30 > 31 - 5
    ("c", 100, 1.0, 1),
    ("c", 5, 2.0, 1),  # late on partition 1 (its stream time is 100)
    ("c", 95, 4.0, 1),  # out of order, accepted: 100 > 100 - 5
    ("c", 97, 8.0, 1),
    ("c", 120, 16.0, 1),  # closes [90,100); partition 0's windows are unaffected
]

HOPPING = [
    ("a", 2, 1.0, 0),  # only [0,10): no window starts before 0
    ("a", 8, 2.0, 0),  # [0,10) [5,15)
    ("a", 12, 4.0, 0),  # [5,15) [10,20); closes [0,10)
    ("a", 6, 8.0, 0),  # [0,10) expired (dropped), [5,15) accepted
    ("a", 14, 16.0, 0),
    ("a", 21, 32.0, 0),  # closes [5,15) and [10,20)
    ("a", 17, 64.0, 0),  # [10,20) expired, [15,25) accepted
    ("a", 30, 128.0, 0),  # closes [15,25) and [20,30) (30 <= 30)
    ("b", 0, 1.0, 1),
    ("b", 4, 2.0, 1),  # only [0,10) again
    ("b", 50, 4.0, 1),
    ("b", 1, 8.0, 1),  # late for [0,10) only (its one window)
]

SESSION = [
    ("a", 0, 1.0, 0),
    ("a", 10, 2.0, 0),  # exactly gap after: merges -> [0,10]
    ("a", 25, 4.0, 0),  # new session; stream time 25 emits [0,10] (10 <= 25 - 10)
    ("a", 15, 8.0, 0),  # within gap of the emitted [0,10] but not merged with it; joins [25,25] -> [15,25]
    ("x", 40, 16.0, 0),  # emits a:[15,25]
    ("a", 26, 32.0, 0),  # late: [15,25] is gone (retention), [26,26] ends before 40 - 10
    ("b", 30, 64.0, 0),  # end == stream time - gap: accepted and emitted at once
    ("b", 31, 128.0, 0),  # not merged with the emitted [30,30]
    ("y", 60, 256.0, 0),
    ("c", 1000, 1.0, 1),
    ("c", 1005, 2.0, 1),
    ("c", 1003, 4.0, 1),  # out of order inside the session
    ("c", 1015, 8.0, 1),  # gap-inclusive merge -> [1000,1015]
    ("c", 2000, 16.0, 1),
    ("c", 1990, 32.0, 1),  # merges into the open [2000,2000] -> [1990,2000]
    ("c", 3000, 64.0, 1),
]

# Sliding windows [start, start + 10], both ends inclusive (grace 0 unless said).
SLIDING = [
    ("a", 2, 1.0, 0),  # ts < 10: into [0,10], which stands in for every left window before 10
    ("a", 8, 2.0, 0),  # [0,10] += 8; the previous record's right window [3,13] = {8}
    ("a", 5, 4.0, 0),  # updates [3,13]; its own right window [6,16] = a copy of [3,13] before the update
    ("a", 13, 8.0, 0),  # updates [6,16] (first, so suppress closes [3,13] = {8,5}) and [3,13]; creates [9,19]
    ("a", 100, 16.0, 0),  # left window [90,100]: final at once (end <= stream time)
    ("a", 95, 32.0, 0),  # [90,100] updated (end >= close) and emitted again; [85,95] closed: dropped once
    ("a", 60, 64.0, 0),  # 60 + 10 < 100: the whole record is dropped
    ("a", 120, 128.0, 0),
    ("c", 209, 1.0, 0),
    ("c", 212, 2.0, 0),  # [199,209] ends before 212 and holds 209: left [202,212] = {209,212}; [210,220]
    ("c", 225, 4.0, 0),  # 212's right window would be [213,223]: 225 is not in it, so not created
    ("z", 300, 0.0, 0),
    ("d", 1000, 1.0, 1),
    ("d", 1003, 2.0, 1),
    ("d", 1003, 4.0, 1),  # same ts again: updates [1001,1011] and [993,1003] (emitted twice), nothing new
    ("d", 1012, 8.0, 1),  # [1004,1014] stays open (partition 1's stream time is 1012)
    ("d", 500, 16.0, 1),  # dropped
]

# The window store's retention (2 * 2 + 1 = 5) is counted from the largest window start it holds on the
# task (b's [32,34]): a:[27,29] (start < 32 - 5 + 1) is invisible when a@30 comes, so a's previous
# record is not known, no window a:[30,32] is made, and a@30 only meets its closed left window [28,30].
SLIDING_RETENTION = [
    ("a", 29, 1.0, 0),
    ("b", 31, 2.0, 0),
    ("b", 33, 4.0, 0),
    ("a", 30, 8.0, 0),
    ("z", 99, 0.0, 0),
]

CASES = {
    "tumbling": (TUMBLING, {"window": "tumbling", "size_ms": 10, "grace_ms": 5}),
    "hopping": (HOPPING, {"window": "hopping", "size_ms": 10, "advance_ms": 5, "grace_ms": 0}),
    "session": (SESSION, {"window": "session", "gap_ms": 10, "grace_ms": 0}),
    "session-grace": (SESSION, {"window": "session", "gap_ms": 10, "grace_ms": 7}),
    "sliding": (SLIDING, {"window": "sliding", "size_ms": 10, "grace_ms": 0}),
    "sliding-grace": (SLIDING, {"window": "sliding", "size_ms": 10, "grace_ms": 20}),
    "sliding-retention": (SLIDING_RETENTION, {"window": "sliding", "size_ms": 2, "grace_ms": 1}),
}


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["key", "ts", "amount", "partition"])


def _rows(df: pd.DataFrame) -> list[tuple]:
    return [
        tuple(r) for r in df[["key", "window_start", "window_end", "count", "sum"]].itertuples(index=False)
    ]


# ---------------------------------------------------------------- the rules, by hand (no broker)


def test_windows_for_is_epoch_aligned_and_never_negative():
    assert windows_for(7, 10, 10) == [0]
    assert windows_for(2, 10, 5) == [0]
    assert windows_for(12, 10, 5) == [5, 10]
    assert windows_for(10, 10, 3) == [3, 6, 9]
    assert windows_for(0, 10, 5) == [0]


def test_rules_tumbling_by_hand():
    df = final_windows(_frame(TUMBLING), **CASES["tumbling"][1])
    assert _rows(df) == [
        ("a", 0, 10, 3, 11.0),
        ("a", 10, 20, 1, 16.0),
        ("b", 10, 20, 1, 4.0),
        ("c", 90, 100, 2, 12.0),
        ("c", 100, 110, 1, 1.0),
    ]
    assert df.attrs["dropped_records"] == 2


def test_rules_hopping_by_hand():
    df = final_windows(_frame(HOPPING), **CASES["hopping"][1])
    assert _rows(df) == [
        ("a", 0, 10, 2, 3.0),
        ("a", 5, 15, 4, 30.0),
        ("a", 10, 20, 2, 20.0),
        ("a", 15, 25, 2, 96.0),
        ("a", 20, 30, 1, 32.0),
        ("b", 0, 10, 2, 3.0),
    ]
    assert df.attrs["dropped_records"] == 3


def test_rules_session_by_hand():
    df = final_windows(_frame(SESSION), **CASES["session"][1])
    assert _rows(df) == [
        ("a", 0, 10, 2, 3.0),
        ("a", 15, 25, 2, 12.0),
        ("b", 30, 30, 1, 64.0),
        ("b", 31, 31, 1, 128.0),
        ("c", 1000, 1015, 4, 15.0),
        ("c", 1990, 2000, 2, 48.0),
        ("x", 40, 40, 1, 16.0),
    ]
    assert df.attrs["dropped_records"] == 1


def test_rules_session_with_grace_by_hand():
    # Grace 7: [0,10] stays mergeable until stream time 27, so a@15 joins everything into one session.
    df = final_windows(_frame(SESSION), **CASES["session-grace"][1])
    assert _rows(df) == [
        ("a", 0, 26, 5, 47.0),
        ("b", 30, 31, 2, 192.0),
        ("c", 1000, 1015, 4, 15.0),
        ("c", 1990, 2000, 2, 48.0),
        ("x", 40, 40, 1, 16.0),
    ]
    assert df.attrs["dropped_records"] == 0


def test_rules_session_retention_example():
    df = final_windows(
        _frame([("a", 0, 1.0, 0), ("b", 10, 1.0, 0), ("a", 10, 1.0, 0), ("z", 99, 0.0, 0)]),
        window="session",
        gap_ms=10,
    )
    assert _rows(df)[:2] == [("a", 0, 0, 1, 1.0), ("a", 10, 10, 1, 1.0)]


def test_rules_sliding_by_hand():
    df = final_windows(_frame(SLIDING), **CASES["sliding"][1])
    assert _rows(df) == [
        ("a", 0, 10, 3, 7.0),
        ("a", 3, 13, 2, 6.0),  # emitted twice: once when stream time reached 13, then with a@13 in it
        ("a", 3, 13, 3, 14.0),
        ("a", 6, 16, 2, 10.0),
        ("a", 9, 19, 1, 8.0),
        ("a", 90, 100, 1, 16.0),
        ("a", 90, 100, 2, 48.0),
        ("a", 96, 106, 1, 16.0),
        ("a", 110, 120, 1, 128.0),
        ("c", 199, 209, 1, 1.0),
        ("c", 202, 212, 2, 3.0),
        ("c", 210, 220, 1, 2.0),
        ("c", 215, 225, 1, 4.0),
        ("d", 990, 1000, 1, 1.0),
        ("d", 993, 1003, 2, 3.0),
        ("d", 993, 1003, 3, 7.0),
        ("d", 1001, 1011, 2, 6.0),
        ("d", 1002, 1012, 3, 14.0),
        ("z", 290, 300, 1, 0.0),
    ]
    assert df.attrs["dropped_records"] == 3  # a:[85,95], a@60 and d@500


def test_rules_sliding_with_grace_by_hand():
    # Grace 20: nothing is emitted twice, a@95 gets its own [85,95]; partition 1 closes nothing (1012 - 20).
    df = final_windows(_frame(SLIDING), **CASES["sliding-grace"][1])
    assert _rows(df) == [
        ("a", 0, 10, 3, 7.0),
        ("a", 3, 13, 3, 14.0),
        ("a", 6, 16, 2, 10.0),
        ("a", 9, 19, 1, 8.0),
        ("a", 85, 95, 1, 32.0),
        ("a", 90, 100, 2, 48.0),
        ("a", 96, 106, 1, 16.0),
        ("a", 110, 120, 1, 128.0),
        ("c", 199, 209, 1, 1.0),
        ("c", 202, 212, 2, 3.0),
        ("c", 210, 220, 1, 2.0),
        ("c", 215, 225, 1, 4.0),
    ]
    assert df.attrs["dropped_records"] == 2  # a@60 and d@500


def test_rules_sliding_retention_by_hand():
    df = final_windows(_frame(SLIDING_RETENTION), **CASES["sliding-retention"][1])
    assert _rows(df) == [
        ("a", 27, 29, 1, 1.0),
        ("b", 29, 31, 1, 2.0),
        ("b", 31, 33, 2, 6.0),
        ("b", 32, 34, 1, 4.0),
    ]
    assert df.attrs["dropped_records"] == 1
    # With a store that remembers everything, a@30 would have had the window [30,32].
    df = final_windows(_frame(SLIDING_RETENTION), retention_ms=1000, **CASES["sliding-retention"][1])
    assert ("a", 30, 32, 1, 8.0) in _rows(df)


# ---------------------------------------------------------------- Kafka Streams == the rules


def _random_rows(seed: int, n: int = 300) -> list[tuple]:
    """Keys pinned to partitions, event time mostly increasing with jitter, some very late records."""
    rng = random.Random(seed)
    keys = [f"k{i}" for i in range(6)]
    rows, clock = [], 0
    for _ in range(n):
        clock += rng.choice([0, 1, 2, 3, 5, 8, 13])
        key = rng.choice(keys)
        ts = max(0, clock - rng.choice([0, 0, 0, 1, 4, 9, 15, 40]))
        amount = round(rng.uniform(-5, 100), 2)  # not exact in binary: checks the summation order too
        rows.append((key, ts, amount, int(key[1:]) % 2))
    return rows


RANDOM_CASES = {
    "tumbling-random": {"window": "tumbling", "size_ms": 20, "grace_ms": 6},
    "hopping-random": {"window": "hopping", "size_ms": 30, "advance_ms": 7, "grace_ms": 3},
    "session-random": {"window": "session", "gap_ms": 6, "grace_ms": 4},
    "sliding-random": {"window": "sliding", "size_ms": 10, "grace_ms": 3},
}
RANDOM_SEEDS = {"hopping-random": 11, "session-random": 12, "tumbling-random": 13, "sliding-random": 14}


def _run_both(bootstrap, case, rows, params):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from .kstreams import run_window_oracle

    topic = f"oracle-selfcheck-{case}-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, ts, amount, partition in rows:
        producer.produce(
            topic, json.dumps({"ts": ts, "amount": amount}).encode(), key=key.encode(), partition=partition
        )
    assert producer.flush(30) == 0
    try:
        started = time.monotonic()
        got = run_window_oracle(bootstrap, topic, **params)
        summary = {k: v for k, v in got.attrs["oracle"].items() if k != "stderr"}
        print(f"{case}: oracle {time.monotonic() - started:.1f}s {summary}")
    finally:
        admin.delete_topics([topic])
    return got, final_windows(_frame(rows), **params)


@pytest.mark.integration
@pytest.mark.parametrize("case", list(CASES))
def test_kafka_streams_equals_rules(bootstrap, case):
    rows, params = CASES[case]
    got, expected = _run_both(bootstrap, case, rows, params)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got.attrs["oracle"]["input_records"] == len(rows)
    assert got.attrs["oracle"]["output_records"] == len(expected)
    assert got.attrs["oracle"]["dropped_records"] == expected.attrs["dropped_records"]


@pytest.mark.integration
@pytest.mark.parametrize("case", list(RANDOM_CASES))
def test_kafka_streams_equals_rules_random(bootstrap, case):
    rows = _random_rows(seed=RANDOM_SEEDS[case])
    got, expected = _run_both(bootstrap, case, rows, RANDOM_CASES[case])
    assert expected.attrs["dropped_records"] > 0 and len(expected) > 20  # the input does exercise lateness
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got.attrs["oracle"]["dropped_records"] == expected.attrs["dropped_records"]
