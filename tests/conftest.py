"""Shared fixtures: a real in-memory SQLite store under a simulated clock."""

from __future__ import annotations

import pytest

from failfirst.clock import SimClock
from failfirst.processor import JobQueue
from failfirst.store import Store


def deliver(payload, ctx):
    return [("delivered", int(payload.get("amount", 1)))]


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def store(clock: SimClock) -> Store:
    return Store.memory(clock)


@pytest.fixture
def queue(store: Store) -> JobQueue:
    return JobQueue(store, {"deliver": deliver})
