"""Crashed for real on PostgreSQL, judged by plain SQL afterwards: a connection terminated
by the server mid-transaction, the server itself crashed and restarted, a worker cut off
by a network partition longer than its lease. Each with its guard-off negative control.

The server crash and the partition run against a private server that the test starts
(initdb into a temporary folder, its own port), never the machine's shared one.
"""

from __future__ import annotations

import os

import pytest

from failfirst.realrun import pgstress
from failfirst.store import pgtools

pytestmark = pytest.mark.postgresql

#: Each run's faults are planned at seeded points of its progress (so many jobs claimed),
#: never by the clock: a fast machine and a loaded one see the same number of them.
FAULTS = 4


def _require(problem: str | None, what: str) -> None:
    if problem is None:
        return
    if os.environ.get(pgtools.REQUIRE_ENV) == "1":
        pytest.fail(f"{what}: {problem}")
    pytest.skip(f"{what}: {problem}")


@pytest.fixture(scope="module")
def shared_db(pg_admin_url) -> str:
    with pgtools.throwaway_database(pg_admin_url, tag="ff_faults") as url:
        yield url


@pytest.fixture(scope="module")
def private_server() -> pgtools.PrivateServer:
    _require(None if pgtools.binaries_available() else "initdb/pg_ctl/postgres not on PATH",
             "no PostgreSQL binaries for a private server")
    server = pgtools.PrivateServer().init()
    server.start()
    yield server
    server.cleanup()


def _run(url: str, schema: str, fault: str, guard: bool, **kw) -> tuple[dict, pgtools.Verdict]:
    result = pgstress.run(f"{url}?schema={schema}", jobs=kw.pop("jobs", 300), workers=2, fault=fault,
                          guard=guard, seed=kw.pop("seed", 1), faults=kw.pop("faults", FAULTS),
                          timeout_s=600, **kw)
    return result, pgtools.judge_sql(url, schema)


@pytest.mark.parametrize("guard", [True, False], ids=["guard-on", "guard-off"])
def test_connection_terminated_mid_transaction(shared_db, guard):
    # Handlers that take 10 ms, in batches of 4: a run of seconds, with transactions to cut.
    result, verdict = _run(shared_db, f"term_{int(guard)}", "terminate", guard, jobs=400, faults=6,
                           batch=4, work_s=0.01)
    assert result["faults"] == 6 and result["hits"] > 0
    assert verdict.lost == 0 and verdict.terminal == verdict.jobs
    if guard:
        assert verdict.ok, verdict
    else:  # a worker cut off after its effect committed and before its completion did
        assert verdict.extra_effect_rows > 0, (result, verdict)


@pytest.mark.parametrize("guard", [True, False], ids=["guard-on", "guard-off"])
def test_server_crash_and_restart(private_server, guard):
    with pgtools.throwaway_database(private_server.url, tag="ff_crash") as url:
        # Each crash restarts the server (crash recovery) and every worker process.
        # No handler work: a worker's time is its commits, so a crash lands between a
        # job's effect and its completion often (what the guard-off control needs).
        result, verdict = _run(url, "crash", "server_crash", guard, jobs=600, server=private_server,
                               faults=4)
    assert result["faults"] == 4 and verdict.lost == 0 and verdict.terminal == verdict.jobs
    if guard:
        assert verdict.ok, verdict
    else:
        assert verdict.extra_effect_rows > 0, (result, verdict)


@pytest.mark.parametrize("guard", [True, False], ids=["guard-on", "guard-off"])
def test_partitioned_worker_late_writes_are_refused(private_server, guard):
    _require(pgstress.namespaces_permitted(), "network namespaces not permitted")
    with pgtools.throwaway_database(private_server.url, tag="ff_part") as url:
        # A handler that takes 0.2 s (less than a heartbeat period, so it sends none): the
        # worker spends its lease between its claim and its commit, where a zombie is made.
        result, verdict = _run(url, "part", "partition", guard, jobs=100, batch=1, work_s=0.2,
                               faults=1)
    assert result["faults"] == 1 and verdict.lost == 0 and verdict.terminal == verdict.jobs
    if guard:
        assert verdict.ok, verdict
        assert result["refused_writes"] > 0  # the zombie came back and was turned away
    else:
        assert verdict.extra_effect_rows > 0, (result, verdict)
