"""Poison records (issue 13, item 3) and output too large for its topic (item 4), against the real broker.

A topic holds 2,000 records of which 1% are bad in every way the issue lists. Each test compares what
the query wrote with pandas over the good records (the golden run, computed from the generated input),
counting records in, out, missing and duplicated by each record's `id`, and checks the dead-letter topic
holds exactly the bad records: their original bytes, and topic, partition, offset and reason in headers.
"""

from __future__ import annotations

import collections
import random
import re
import time

import orjson
import pandas as pd
import pytest
from confluent_kafka import Consumer, TopicPartition

import streamframe as sf
from tests.integration.helpers import consume_all, create_topic, produce, wait_until

pytestmark = pytest.mark.integration

SCHEMA = {"id": "int64", "sym": str, "qty": "int64", "price": "float64", "note": str}
N, PARTITIONS, BIG = 2000, 2, 1_200_000
# kind → (value, key, reason the dead letter must give); None as a reason: a good record for a query
# that does not need what it lacks (a null key is bad only where a groupby needs the key).
BAD = {
    "invalid JSON": (b'{"id": 1, "sym": "A", "qty": ', b"u1", "invalid JSON"),
    "non-UTF-8 bytes": (b'{"id": 1, "sym": "\xff\xfe", "qty": 3, "price": 1.0, "note": ""}', b"u1",
                        "invalid JSON"),
    "an array": (b"[1, 2, 3]", b"u1", "not a JSON object but an array"),
    "a number": (b"42", b"u1", "not a JSON object but a number"),
    "wrong type": (b'{"id": 1, "sym": "B", "qty": "abc", "price": 2.0, "note": ""}', b"u1",
                   "does not fit the schema"),
    "empty value": (b"", b"u1", "invalid JSON"),
    "null value": (None, b"u1", "null value on a stream"),
}
KEYLESS = {"null key": None, "undecodable key": b"\xff\xfe\x00k"}  # values: good records


def _generate(topic: str):
    """(values, keys, partitions, {position: kind}) — a record's offset is its position // PARTITIONS."""
    rng = random.Random(13)
    values, keys, kinds = [], [], {}
    odd = [*BAD, *KEYLESS, "over 1 MB"]
    for i in range(N):
        good = {"id": i, "sym": rng.choice("ABCDE"), "qty": rng.randint(1, 20),
                "price": round(rng.uniform(1, 9), 2), "note": ""}
        key = f"u{rng.randint(0, 9)}".encode()
        kind = odd[(i // 100) % len(odd)] if i % 100 == 37 else None  # 1% odd, two of each kind
        if kind in BAD:
            value, key = BAD[kind][0], BAD[kind][1]
        elif kind in KEYLESS:
            value, key = orjson.dumps(good), KEYLESS[kind]
        elif kind == "over 1 MB":  # good (past the filter), but its output is too large for a 1 MB topic
            value = orjson.dumps({**good, "qty": 10, "note": "x" * BIG})
        else:
            value = orjson.dumps(good)
        values.append(value)
        keys.append(key)
        if kind:
            kinds[i] = kind
    return values, keys, [i % PARTITIONS for i in range(N)], kinds


@pytest.fixture
def poisoned(bootstrap, conn, topic_name):
    create_topic(bootstrap, topic_name, PARTITIONS, {"max.message.bytes": str(3 << 20)})
    values, keys, partitions, kinds = _generate(topic_name)
    produce(bootstrap, topic_name, values, keys=keys, partitions=partitions, max_bytes=2 << 20)
    assert len(kinds) == N // 100 == 20
    return topic_name, values, keys, kinds


def _good_frame(values, keys, kinds, bad_kinds) -> pd.DataFrame:
    """The golden input: the records no query should refuse, as pandas reads them."""
    kept = [i for i in range(N) if kinds.get(i) not in bad_kinds]
    frame = pd.DataFrame([orjson.loads(values[i]) for i in kept])
    frame["_key"] = pd.Series([None if keys[i] is None else keys[i].decode("utf-8", "surrogateescape")
                               for i in kept], dtype=object)  # a text key, as the source reads it
    return frame.astype({c: t for c, t in SCHEMA.items() if t is not str})


def _counts(expected_ids, got_ids) -> dict:
    seen = collections.Counter(got_ids)
    return {"in": N, "out": len(got_ids), "missing": len(set(expected_ids) - set(seen)),
            "duplicated": sum(c - 1 for c in seen.values() if c > 1),
            "unexpected": len(set(seen) - set(expected_ids))}


def _check_dead_letters(bootstrap, topic, values, kinds, bad_kinds, reasons):
    """The dead-letter topic holds exactly the bad records: bytes, where from, why."""
    expected = {(i % PARTITIONS, i // PARTITIONS): i for i, k in kinds.items() if k in bad_kinds}
    letters = consume_all(bootstrap, f"{topic}.dlq", expect=len(expected))
    got = {}
    for m in letters:
        h = dict(m.headers())
        where = (int(h["streamframe.partition"]), int(h["streamframe.offset"]))
        assert h["streamframe.topic"] == topic.encode()
        assert where not in got, f"dead-lettered twice: {where}"
        got[where] = (m.value(), h["streamframe.error"].decode())
    assert set(got) == set(expected), f"missing {set(expected) - set(got)}, extra {set(got) - set(expected)}"
    for where, i in expected.items():
        value, reason = got[where]
        assert value == values[i], f"{kinds[i]}: not the original bytes"
        assert re.search(reasons[kinds[i]], reason), f"{kinds[i]}: {reason!r}"
    return len(got)


STATELESS_BAD = {*BAD, "over 1 MB"}  # a null or undecodable key is fine where no key is needed
STATELESS_REASONS = {**{k: r for k, (_, _, r) in BAD.items()},
                     "over 1 MB": r"output record of \d+ bytes is larger than the max\.message\.bytes "
                                  r"\d+ of topic"}


def _stateless(topic, **options):
    s = sf.stream(topic, schema=SCHEMA, **options)
    return s[s.qty > 5].assign(notional=s.qty * s.price)


def _golden_stateless(good: pd.DataFrame) -> pd.DataFrame:
    return good[good.qty > 5].assign(notional=good.qty * good.price)


def test_dead_letters_hold_exactly_the_bad_records_and_the_output_equals_pandas(poisoned, bootstrap):
    topic, values, keys, kinds = poisoned
    started = time.monotonic()
    q = _stateless(topic).to_topic(f"{topic}-out", until="end", timeout=120)
    took = time.monotonic() - started
    gold = _golden_stateless(_good_frame(values, keys, kinds, STATELESS_BAD))
    out = [orjson.loads(m.value()) for m in consume_all(bootstrap, f"{topic}-out", expect=len(gold))]
    counts = _counts(gold["id"].tolist(), [r["id"] for r in out])
    assert counts == {"in": N, "out": len(gold), "missing": 0, "duplicated": 0, "unexpected": 0}, counts
    by_id = {r["id"]: r for r in out}
    for row in gold.itertuples():
        assert by_id[row.id]["notional"] == pytest.approx(row.notional) and by_id[row.id]["sym"] == row.sym
    dead = _check_dead_letters(bootstrap, topic, values, kinds, STATELESS_BAD, STATELESS_REASONS)
    assert dead == 16 == q.metrics["dead_letters"] == q.metrics["errors"]
    assert q.metrics["records_in"] == N and q.metrics["records_out"] == len(gold)
    print(f"\nMATRIX stateless dead_letter: {counts} dead-lettered={dead} in {took:.1f} s")


def test_a_groupby_on_the_key_dead_letters_null_keys_and_equals_pandas(poisoned, bootstrap):
    topic, values, keys, kinds = poisoned
    # The record over 1 MB aggregates to a small row: good here. A key that is not UTF-8 cannot be a
    # group of a text key (pandas' own groupby refuses it too): dead-lettered, not lost.
    bad = {*BAD, "null key", "undecodable key"}
    s = sf.stream(topic, schema=SCHEMA)
    got = s.groupby("_key").agg(qty=("qty", "sum"), n=("qty", "count")).run(timeout=120)
    good = _good_frame(values, keys, kinds, bad)
    gold = good.groupby("_key").agg(qty=("qty", "sum"), n=("qty", "count"))
    assert len(good) == N - 18
    pd.testing.assert_frame_equal(got.sort_index(), gold.sort_index(), check_dtype=False,
                                  check_names=False)
    reasons = {**STATELESS_REASONS, "null key": r"null group key \(_key\)",
               "undecodable key": r"group key \(_key\) is not UTF-8 text"}
    dead = _check_dead_letters(bootstrap, topic, values, kinds, bad, reasons)
    print(f"\nMATRIX groupby _key dead_letter: in={N} groups={len(got)} (pandas {len(gold)}) "
          f"dead-lettered={dead} missing=0 duplicated=0")


def test_on_error_fail_stops_at_the_first_bad_record_naming_partition_and_offset(poisoned):
    topic, values, keys, kinds = poisoned
    started = time.monotonic()
    with pytest.raises(sf.RecordError) as err:
        _stateless(topic, on_error="fail").run(timeout=120)
    took = time.monotonic() - started
    m = re.search(rf"record {re.escape(topic)}\[(\d)\]@(\d+) failed: (.*) \(on_error='fail'", str(err.value))
    assert m, str(err.value)
    position = int(m.group(2)) * PARTITIONS + int(m.group(1))
    assert kinds.get(position) in BAD
    assert re.search(STATELESS_REASONS[kinds[position]], m.group(3))
    first = min(i for i, k in kinds.items() if k in BAD and i % PARTITIONS == int(m.group(1)))
    assert position == first  # the first bad record of its partition, none before it
    print(f"\nMATRIX stateless fail: stopped at {topic}[{m.group(1)}]@{m.group(2)} in {took:.1f} s")


def test_on_error_skip_counts_them_and_the_output_equals_pandas(poisoned, bootstrap, conn):
    topic, values, keys, kinds = poisoned
    q = _stateless(topic, on_error="skip").to_topic(f"{topic}-skip", until="end", timeout=120)
    gold = _golden_stateless(_good_frame(values, keys, kinds, STATELESS_BAD))
    out = [orjson.loads(m.value()) for m in consume_all(bootstrap, f"{topic}-skip", expect=len(gold))]
    counts = _counts(gold["id"].tolist(), [r["id"] for r in out])
    assert counts == {"in": N, "out": len(gold), "missing": 0, "duplicated": 0, "unexpected": 0}, counts
    assert q.metrics["skipped"] == 16 == q.metrics["errors"] and q.metrics["dead_letters"] == 0
    assert f"{topic}.dlq" not in conn.topics()
    print(f"\nMATRIX stateless skip: {counts} skipped={q.metrics['skipped']}")


# --- item 4: output larger than its topic accepts --------------------------------------------------------
SMALL = 2048  # the output topic's max.message.bytes
OVERSIZE = {301, 777, 1500}  # positions whose output would be 4 kB


@pytest.fixture
def small_output(bootstrap, conn, topic_name):
    """One input partition; the output topic takes records up to 2 kB; three outputs would be 4 kB."""
    create_topic(bootstrap, topic_name)
    create_topic(bootstrap, f"{topic_name}-out", config={"max.message.bytes": str(SMALL)})
    values = [orjson.dumps({"id": i, "qty": i % 7, "note": "y" * (4000 if i in OVERSIZE else 20)})
              for i in range(N)]
    produce(bootstrap, topic_name, values)
    return topic_name, values


def _committed(bootstrap, group: str, topic: str) -> int | None:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        [tp] = c.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        c.close()
    return tp.offset if tp.offset >= 0 else None


def test_an_output_record_too_large_for_its_topic_is_dead_lettered(small_output, bootstrap):
    topic, values = small_output
    s = sf.stream(topic)
    q = s.assign(double=s.qty * 2).to_topic(f"{topic}-out", name=f"{topic}-q", commit_interval=0.2)
    wait_until(lambda: q.metrics["records_in"] >= N or q.status == "failed", timeout=90)
    assert q.status == "running", q.exception
    wait_until(lambda: _committed(bootstrap, q.group_id, topic) == N, timeout=30)
    q.stop()
    out = [orjson.loads(m.value()) for m in consume_all(bootstrap, f"{topic}-out", expect=N - 3)]
    expected = [i for i in range(N) if i not in OVERSIZE]
    counts = _counts(expected, [r["id"] for r in out])
    assert counts == {"in": N, "out": N - 3, "missing": 0, "duplicated": 0, "unexpected": 0}, counts
    assert all(r["double"] == r["qty"] * 2 for r in out)
    letters = consume_all(bootstrap, f"{topic}.dlq", expect=3)
    assert sorted(int(dict(m.headers())["streamframe.offset"]) for m in letters) == sorted(OVERSIZE)
    assert all(m.value() == values[int(dict(m.headers())["streamframe.offset"])] for m in letters)
    reasons = {dict(m.headers())["streamframe.error"].decode() for m in letters}
    assert all(re.search(rf"larger than the max\.message\.bytes {SMALL} of topic '{topic}-out'", r)
               for r in reasons), reasons
    print(f"\nMATRIX oversize output dead_letter: {counts} dead-lettered={len(letters)}")


def test_an_output_record_too_large_fails_the_query_and_nothing_is_committed_past_it(small_output,
                                                                                   bootstrap):
    topic, _ = small_output
    s = sf.stream(topic, on_error="fail")
    started = time.monotonic()
    q = s.assign(double=s.qty * 2).to_topic(f"{topic}-out", name=f"{topic}-f", commit_interval=0.05)
    wait_until(lambda: q.status == "failed", timeout=90)
    took = time.monotonic() - started
    message = str(q.exception)
    first = min(OVERSIZE)
    assert f"record {topic}[0]@{first} failed: output record of" in message, message
    assert f"max.message.bytes {SMALL} of topic '{topic}-out'" in message
    committed = _committed(bootstrap, q.group_id, topic)
    assert committed is None or committed <= first, committed
    print(f"\nMATRIX oversize output fail: committed={committed} (failing offset {first}) in {took:.1f} s")



def test_an_aggregate_row_too_large_for_its_topic_fails_the_query_and_commits_nothing(small_output,
                                                                                      bootstrap):
    """A group's row is not one input record: dead-lettering the record that last changed it would leave
    its effect in the state (and every later record of the group would follow it), so whatever on_error
    says the query fails with a DeliveryError, and no input offset is committed."""
    topic, values = small_output
    rows = pd.DataFrame([orjson.loads(v) for v in values])
    golden = rows.groupby("qty")["note"].max()
    too_large = {int(k) for k, note in golden.items() if len(note) > SMALL}
    assert too_large  # pandas says which groups' rows cannot fit the output topic
    t = sf.stream(topic).groupby("qty").agg(n=("id", "count"), note=("note", "max"))
    started = time.monotonic()
    q = t.to_topic(f"{topic}-out", name=f"{topic}-agg", commit_interval=0.05)
    wait_until(lambda: q.status != "running", timeout=60)
    took = time.monotonic() - started
    assert q.status == "failed" and isinstance(q.exception, sf.DeliveryError), q.exception
    message = str(q.exception)
    assert "an aggregate's row: output record of" in message and f"max.message.bytes {SMALL}" in message
    assert "\n" not in message and took < 30
    assert _committed(bootstrap, q.group_id, topic) is None
    print(f"\nMATRIX oversize aggregate row: groups too large {sorted(too_large)} of {len(golden)}, "
          f"failed in {took:.1f} s, committed=None: {message}")
