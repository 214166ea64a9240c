"""`streamframe run analysis.ipynb` (issue 12 item 5): a notebook's code cells run headless in a real
subprocess against the real broker, its magics make the input, its live queries keep running until
SIGTERM, a failing cell ends the run in one line, and two processes of one notebook split the partitions.
Every output is compared with pandas over the input the test reads back or wrote itself."""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import nbformat
import orjson
import pandas as pd
import pytest
from confluent_kafka.admin import AdminClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.faults.test_exactly_once import read_committed
from tests.faults.test_sigkill import _committed
from tests.integration.helpers import consume_all, create_topic, group_split, produce, records_read

pytestmark = pytest.mark.integration


def _notebook(path, *cells: str):
    """A notebook of code cells (a markdown cell first, which is not run) written with nbformat."""
    nb = new_notebook(cells=[new_markdown_cell("# written by the test"), *map(new_code_cell, cells)])
    nbformat.write(nb, str(path))
    return path


def _start(notebook, bootstrap, *options: str) -> subprocess.Popen:
    env = {**os.environ, "STREAMFRAME_BOOTSTRAP": bootstrap}
    return subprocess.Popen([sys.executable, "-m", "streamframe.cli", "run", *options, str(notebook)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_all(bootstrap, topic, want: int, timeout: float = 90.0) -> list[dict]:
    """The committed records of `topic` once it holds at least `want` of them (values as dicts)."""
    partitions = _wait_for_topic(bootstrap, topic)
    deadline = time.monotonic() + timeout
    while True:
        got = [orjson.loads(m.value()) for m in read_committed(bootstrap, topic, partitions=partitions)]
        if len(got) >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def _wait_for_topic(bootstrap, topic, timeout: float = 60.0) -> int:
    """`topic`'s partition count, once it exists."""
    admin, deadline = AdminClient({"bootstrap.servers": bootstrap}), time.monotonic() + timeout
    while topic not in (topics := admin.list_topics(timeout=10).topics):
        assert time.monotonic() < deadline, f"{topic} was never created"
        time.sleep(0.2)
    return len(topics[topic].partitions)


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_notebook_runs_headless_its_magics_make_the_input_and_its_queries_keep_running(
        bootstrap, tmp_path, topic_name):
    trades, out, orders = f"{topic_name}-trades", f"{topic_name}-big", f"{topic_name}-orders"
    order_rows = [{"order": i, "customer": f"c{i % 7}", "amount": round(i * 1.7 % 13, 2)} for i in range(40)]
    body = "\n".join(orjson.dumps(r).decode() for r in order_rows)
    nb = _notebook(
        tmp_path / "analysis.ipynb",
        f"import streamframe as sf\nsf.connect(app_id='nb-{uuid.uuid4().hex[:6]}')",
        f"%kafka_source feed connector.class=generator schema=trades topic={trades} rate=4000 "
        f"count=3000 seed=5",
        f"t = sf.stream('{trades}')\n"
        f"big = t[t.qty > 100].assign(notional=t.qty * t.price)\n"
        f"big.to_topic('{out}', name='big')",
        f"%%kafka_produce {orders} --key customer\n{body}",
        f"orders = sf.stream('{orders}')\norders[orders.amount > 5]",  # displayed: starts its query
        "orders.run()",  # a bounded result, displayed in Jupyter: dropped here
    )
    proc = _start(nb, bootstrap, "--processing-guarantee", "exactly_once")
    try:
        # The connector's records, read back: what the pandas oracle runs over.
        _wait_for_topic(bootstrap, trades)
        source = [orjson.loads(m.value()) for m in consume_all(bootstrap, trades, expect=3000, timeout=60)]
        assert len(source) == 3000, len(source)
        df = pd.DataFrame(source)
        want = df[df.qty > 100].assign(notional=df.qty * df.price)
        assert 0 < len(want) < len(df)
        got = _read_all(bootstrap, out, len(want))
        assert proc.poll() is None, proc.stderr.read()[-2000:]  # live: still running after the input
    finally:
        stdout, stderr = _stop(proc)
    assert proc.returncode == 0, stderr[-2000:]
    # Exactly once: every wanted record, once, and no other.
    assert collections.Counter(r["trade_id"] for r in got) == collections.Counter(want["trade_id"])
    assert sorted(got, key=lambda r: r["trade_id"]) == want.sort_values("trade_id").to_dict("records")
    # The displayed frame started its query, which read every order the magic produced.
    started = re.search(r"a displayed StreamFrame started query (\S+)", stderr)
    assert started, stderr[-2000:]
    displayed = re.escape(started.group(1))
    assert re.search(rf"query {displayed}: stopped, {len(order_rows)} records in", stdout), stdout
    assert "query big: stopped, 3,000 records in" in stdout, stdout
    assert "connector feed: FINISHED, 3,000 records" in stdout, stdout
    assert "ran its 6 code cells" in stderr, stderr[-2000:]


@pytest.mark.parametrize("cell, line, error", [
    ("def f():\n    return 1 / 0\n\ny = f()", 2, "ZeroDivisionError: division by zero"),  # where it raised
    ("%kafka_source feed connector.class=nonesuch", 1,
     "UsageError: %kafka_source: unknown connector.class 'nonesuch'"),
    ("x = (", 1, "SyntaxError: "),
])
def test_a_failing_cell_ends_the_run_in_one_line_naming_the_cell(bootstrap, tmp_path, topic_name, cell,
                                                                  line, error):
    create_topic(bootstrap, topic_name)
    produce(bootstrap, topic_name, [b'{"x": 1}'])
    nb = _notebook(tmp_path / "broken.ipynb",
                   "import streamframe as sf\nsf.connect()",
                   f"s = sf.stream('{topic_name}')\ns.to_topic('{topic_name}-out', name='live')",  # live
                   cell,
                   "print('after the failure')")
    proc = _start(nb, bootstrap)
    try:
        stdout, stderr = proc.communicate(timeout=60)  # the live query stops with the failed run
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "after the failure" not in stdout
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr
    failures = [ln for ln in stderr.splitlines() if "cell" in ln]
    assert len(failures) == 1, stderr
    assert failures[0].startswith(f"streamframe: broken.ipynb, cell 3, line {line}: {error}"), failures


def test_sigterm_inside_a_cell_stops_the_run_and_its_queries_cleanly(bootstrap, tmp_path, topic_name):
    create_topic(bootstrap, topic_name)
    values = [{"x": i} for i in range(30)]
    produce(bootstrap, topic_name, [orjson.dumps(v) for v in values])
    nb = _notebook(tmp_path / "sleepy.ipynb",
                   "import time\nimport streamframe as sf\nsf.connect()",
                   f"s = sf.stream('{topic_name}')\ns.to_topic('{topic_name}-out', name='live')",
                   "print('sleeping', flush=True)\ntime.sleep(300)",
                   "print('after the sleep')")
    proc = _start(nb, bootstrap)
    try:
        assert proc.stdout.readline() == "sleeping\n", proc.stderr.read()[-2000:]
        got = _read_all(bootstrap, f"{topic_name}-out", len(values))  # the live query runs meanwhile
    finally:
        stdout, stderr = _stop(proc)
    assert proc.returncode == 0, stderr[-2000:]
    assert got == values
    assert "after the sleep" not in stdout
    assert f"query live: stopped, {len(values)} records in" in stdout, stdout


def test_two_processes_of_one_notebook_split_the_partitions(bootstrap, conn, tmp_path, topic_name):
    n, partitions = 4000, 4
    rows = [{"id": i, "qty": i * 37 % 200, "price": 0.5 + i % 17} for i in range(n)]
    create_topic(bootstrap, topic_name, partitions=partitions)
    produce(bootstrap, topic_name, [orjson.dumps(r) for r in rows], keys=[f"k{i % 40}" for i in range(n)])
    out, app_id, fast = f"{topic_name}-out", f"nbscale-{uuid.uuid4().hex[:6]}", tmp_path / "fast"
    nb = _notebook(
        tmp_path / "app.ipynb",
        f"import os, time\nimport streamframe as sf\nsf.connect(app_id='{app_id}')",
        f"trades = sf.stream('{topic_name}')\n"  # slow (100 records/s) until the test says both run
        f"slow = trades.peek(lambda batch: os.path.exists('{fast}') or time.sleep(0.5))",
        f"slow[slow.qty > 50].assign(notional=slow.qty * slow.price).to_topic(\n"
        f"    '{out}', name='scale', batch_size=50, commit_interval=0.3)",
    )
    group = f"{app_id}.scale"
    procs = [_start(nb, bootstrap)]
    members = []
    try:
        deadline = time.monotonic() + 120
        while _committed(conn, group, topic_name, partitions) < n // 10:  # the first is under way
            assert procs[0].poll() is None, procs[0].stderr.read()[-2000:]
            assert time.monotonic() < deadline, "the first process made no progress"
            time.sleep(0.1)
        procs.append(_start(nb, bootstrap))
        while len(members) < 2 or _committed(conn, group, topic_name, partitions) < n:
            for p in procs:
                assert p.poll() is None, p.stderr.read()[-2000:]
            assert time.monotonic() < deadline, f"no split into two members, or not done: {members}"
            if len(members) < 2:  # the group, as the broker sees it: two members, the partitions split
                members = group_split(bootstrap, group, partitions)
                if len(members) == 2:
                    fast.touch()  # both share the partitions: the rest goes at full speed
            time.sleep(0.2)
        outputs = [_stop(p) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    read = records_read([stdout for stdout, _ in outputs], "scale")
    assert all(r > 0 for r in read) and sum(read) >= n, (read, [o[-1000:] for o, _ in outputs])
    # The oracle: pandas over the input. At-least-once: every record, duplicates allowed, none else.
    df = pd.DataFrame(rows)
    want = df[df.qty > 50].assign(notional=df.qty * df.price)
    got = [orjson.loads(m.value()) for m in consume_all(bootstrap, out, expect=len(want))]
    assert set(r["id"] for r in got) == set(want["id"])
    assert {r["id"]: r for r in got} == {r["id"]: r for r in want.to_dict("records")}
