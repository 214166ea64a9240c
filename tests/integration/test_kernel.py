"""streamframe in a real Jupyter kernel (jupyter_client) (issue 13, item 6): Ctrl-C (SIGINT, the
notebook's interrupt) stops a bounded run() within 2 s with a KeyboardInterrupt and leaves no consumer in
the group; the cell runs again; restarting the kernel leaves no orphan member of a live query's group
(asked of the broker with the admin API, well before the 45 s session timeout would clear one)."""

from __future__ import annotations

import json
import os
import time
import uuid

import orjson
import pytest
from confluent_kafka.admin import AdminClient
from jupyter_client.manager import start_new_kernel

from tests.integration.helpers import create_topic, produce

pytestmark = pytest.mark.integration
RECORDS = 20_000
STOPPED_WITHIN = 2.0  # the bound, from SIGINT to the cell's reply
LEFT_WITHIN = 10.0  # a member left behind would stay until session.timeout.ms (45 s)


def _execute(kc, code: str, timeout: float = 60.0) -> tuple[dict, str]:
    """Run `code` in the kernel: (its execute_reply content, everything it printed)."""
    msg_id = kc.execute(code)
    printed = []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(deadline - time.monotonic(), 0.1))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=timeout)
    assert reply["parent_header"]["msg_id"] == msg_id
    return reply["content"], "".join(printed)


def _members(admin: AdminClient, prefix: str) -> dict[str, int]:
    """Members per consumer group whose id starts with `prefix`, as the broker lists them."""
    groups = [g.group_id for g in admin.list_consumer_groups(request_timeout=10).result(15).valid
              if g.group_id.startswith(prefix)]
    if not groups:
        return {}
    return {gid: len(f.result(15).members)
            for gid, f in admin.describe_consumer_groups(groups, request_timeout=10).items()}


@pytest.fixture
def kernel(bootstrap):
    env = {**os.environ, "STREAMFRAME_BOOTSTRAP": bootstrap, "PYTHONDONTWRITEBYTECODE": "1"}
    km, kc = start_new_kernel(kernel_name="python3", env=env, startup_timeout=60)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_interrupt_a_bounded_run_then_run_again_then_restart_the_kernel(kernel, bootstrap, topic_name):
    km, kc = kernel
    create_topic(bootstrap, topic_name, partitions=2)
    produce(bootstrap, topic_name, [orjson.dumps({"i": i, "qty": i % 10}) for i in range(RECORDS)])
    app = f"kernel-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    reply, _ = _execute(kc, f"import time, json, streamframe as sf\nsf.connect(app_id={app!r});")
    assert reply["status"] == "ok", reply

    # A run slow enough to be interrupted: 50 records a batch, 50 ms each (20 s in all).
    slow = (f"print('running', flush=True)\n"
            f"out = sf.stream({topic_name!r}).map(lambda df: (time.sleep(0.05), df)[1]).run(batch_size=50)")
    msg_id = kc.execute(slow)
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            break
    time.sleep(1.5)  # well into the run
    km.interrupt_kernel()
    interrupted = time.monotonic()
    reply = kc.get_shell_msg(timeout=30)
    took = time.monotonic() - interrupted
    assert reply["parent_header"]["msg_id"] == msg_id
    content = reply["content"]
    print(f"\ninterrupted after {took:.2f} s: {content.get('ename')}: {content.get('evalue')}")
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    assert took < STOPPED_WITHIN
    while kc.get_iopub_msg(timeout=10)["msg_type"] != "status":  # drain to the interrupted cell's idle
        pass
    members = _members(admin, app)
    print(f"groups of {app} after the interrupt: {members}")
    assert all(n == 0 for n in members.values())

    # The same cell, run again, without the slow map: every record, once.
    reply, printed = _execute(kc, f"out = sf.stream({topic_name!r}).run()\n"
                                  "print(json.dumps({'rows': len(out), 'ids': int(out.i.nunique()), "
                                  "'sum': int(out.i.sum())}))")
    assert reply["status"] == "ok", reply
    got = json.loads(printed.strip().splitlines()[-1])
    want = {"rows": RECORDS, "ids": RECORDS, "sum": sum(range(RECORDS))}
    print(f"re-run: in {RECORDS}, out {got['rows']}, missing {RECORDS - got['ids']}, "
          f"duplicated {got['rows'] - got['ids']}")
    assert got == want

    # A live query's consumer is a member of its group; restarting the kernel must take it away.
    reply, _ = _execute(kc, f"q = sf.stream({topic_name!r}).start(name='live')\n"
                            f"while q.metrics['records_in'] < {RECORDS} and q.status == 'running':\n"
                            "    time.sleep(0.1)\n"
                            "print(q.status, q.metrics['records_in'])", timeout=90)
    assert reply["status"] == "ok", reply
    group = f"{app}.live"
    deadline = time.monotonic() + 30
    while _members(admin, app).get(group, 0) != 1:
        assert time.monotonic() < deadline, f"no member in {group}: {_members(admin, app)}"
        time.sleep(0.5)
    restarted = time.monotonic()
    km.restart_kernel(now=False)  # a shutdown request, then a new kernel: returns once it is gone
    while _members(admin, app).get(group, 0) != 0:
        assert time.monotonic() - restarted < LEFT_WITHIN, f"orphan member in {group}: {_members(admin, app)}"
        time.sleep(0.5)
    print(f"the live query's member left {time.monotonic() - restarted:.1f} s after the restart began")
    kc.wait_for_ready(timeout=60)
    reply, printed = _execute(kc, "print(1 + 1)")
    assert reply["status"] == "ok" and printed.strip() == "2"
