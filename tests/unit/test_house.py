"""The house rules a reader relies on: one name per class, one exception tree, one Kafka error translation."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections import defaultdict

import pytest
from confluent_kafka import KafkaError, KafkaException

import streamframe
from streamframe import errors
from streamframe.kafka.connection import Connection, code


def _classes() -> list[type]:
    found = []
    for info in pkgutil.walk_packages(streamframe.__path__, "streamframe."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found += [obj for obj in vars(module).values()
                  if inspect.isclass(obj) and obj.__module__ == module.__name__]
    return found


def test_no_two_classes_share_a_name():
    where = defaultdict(set)
    for cls in _classes():
        where[cls.__qualname__].add(cls.__module__)
    assert {name: sorted(mods) for name, mods in where.items() if len(mods) > 1} == {}


def test_every_exception_lives_in_errors_and_is_drawn_in_its_tree():
    elsewhere = [f"{c.__module__}.{c.__qualname__}" for c in _classes()
                 if issubclass(c, BaseException) and c.__module__ != "streamframe.errors"]
    assert elsewhere == []
    ours = [c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, BaseException)
            and c.__module__ == "streamframe.errors"]
    assert len(ours) > 1
    for cls in ours:
        if issubclass(cls, Warning):  # warnings have their own root, drawn beside the errors'
            assert issubclass(cls, errors.StreamframeWarning), cls.__name__
        else:
            assert issubclass(cls, errors.StreamframeError), cls.__name__
        assert f" {cls.__name__} " in errors.__doc__, f"{cls.__name__} is missing from the tree"


@pytest.mark.parametrize("raised",
                         [KafkaException(KafkaError(KafkaError._TRANSPORT, "sasl.password=s3cret refused")),
                          KafkaError(KafkaError._TRANSPORT, "sasl.password=s3cret refused")])
def test_a_kafka_error_becomes_one_scrubbed_line_of_ours(raised):
    conn = Connection("127.0.0.1:9", {"sasl.password": "s3cret"})
    err = conn.error(raised, "cannot read the offsets of t[0]", errors.ConfigError)
    assert isinstance(err, errors.ConfigError)
    assert str(err).startswith("cannot read the offsets of t[0]: ")
    assert "s3cret" not in str(err) and "\n" not in str(err)
    assert code(raised) == KafkaError._TRANSPORT
