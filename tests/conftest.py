"""Shared fixtures: one real Kafka broker for the whole run, started through streamframe's own launcher.

If STREAMFRAME_BOOTSTRAP is set, that cluster is used instead and nothing is started or stopped.
Otherwise the broker lives in a temporary STREAMFRAME_HOME and is stopped when the session ends, so
the suite leaves nothing running.
"""

from __future__ import annotations

import os
import uuid

import pytest


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory):
    existing = os.environ.get("STREAMFRAME_BOOTSTRAP")
    if existing:
        yield existing
        return
    from streamframe import local

    home = tmp_path_factory.mktemp("streamframe-home")
    previous = os.environ.get("STREAMFRAME_HOME")
    os.environ["STREAMFRAME_HOME"] = str(home)
    broker = local.start()
    os.environ["STREAMFRAME_BOOTSTRAP"] = broker.bootstrap
    try:
        yield broker.bootstrap
    finally:
        os.environ.pop("STREAMFRAME_BOOTSTRAP", None)
        local.stop()
        if previous is None:
            os.environ.pop("STREAMFRAME_HOME", None)
        else:
            os.environ["STREAMFRAME_HOME"] = previous


@pytest.fixture
def conn(bootstrap):
    """A fresh default connection with its own application id."""
    import streamframe as sf

    connection = sf.connect(bootstrap, app_id=f"test-{uuid.uuid4().hex[:6]}")
    yield connection
    from streamframe import session

    session.stop_all()
    session.disconnect()  # later tests (the unit suite too) must not sample topics through it


@pytest.fixture
def topic_name(request):
    """A unique topic name per test."""
    return f"t-{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:6]}"
