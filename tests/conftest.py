"""Shared fixtures: a real in-memory SQLite store under a simulated clock, and the
PostgreSQL server the ``postgresql`` tests use."""

from __future__ import annotations

import os

import pytest

from failfirst.processor.queue import JobQueue
from failfirst.store import Store, parse_store_url, pgtools
from failfirst.store.clock import SimClock


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


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The server at ``$FAILFIRST_PG_URL``. Without one the test is skipped with a one-line
    reason, or fails when ``FAILFIRST_REQUIRE_PG=1`` (CI)."""
    problem = pgtools.server_problem()
    if problem is not None:
        reason = f"PostgreSQL not reachable at {parse_store_url(pgtools.admin_url()).redacted}: {problem}"
        if os.environ.get(pgtools.REQUIRE_ENV) == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return pgtools.admin_url()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.services("redis", ...)``: the shared servers the test talks to must
    accept connections before it starts."""
    from needs import skip_or_fail  # tests/ is on sys.path

    from failfirst.peers import services

    for mark in item.iter_markers("services"):
        for name in mark.args:
            if not services.reachable(name):
                host, port = services.PORTS[name]
                skip_or_fail(f"{name} is not running on {host}:{port}")

