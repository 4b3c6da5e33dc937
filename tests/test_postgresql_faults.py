"""Crashed for real on PostgreSQL, judged by plain SQL afterwards and by the checkers: a
connection terminated by the server mid-transaction, the server itself crashed and
restarted, a worker cut off by a network partition longer than its lease. Each with its
guard-off negative control.

The server crash and the partition run against a private server that the test starts
(initdb into a temporary folder, its own port), never the machine's shared one.

Every run waits for the event it needs, never for a time: faults are planned at
seeded points of progress (so many jobs claimed); a guard-off control's fault waits
for a worker between a committed effect and its completion (``window``), the only
moment where it can double an effect; a partitioned worker's run does not end before
the worker, healed, has tried its late write. A run that did not produce its fault
is a setup error with its own message (an error of the fixture), never a pass or a
misleading assertion.
"""

from __future__ import annotations

import os

import pytest

from failfirst.realrun import driver, faults
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


def _private_server() -> pgtools.PrivateServer:
    _require(pgtools.binaries_problem(), "no private PostgreSQL server")
    server = pgtools.PrivateServer().init()
    server.start()
    return server


@pytest.fixture(scope="module")
def private_server() -> pgtools.PrivateServer:
    server = _private_server()
    yield server
    server.cleanup()


@pytest.fixture
def partition_server() -> pgtools.PrivateServer:
    """A server of the partition test's own: it lets the partitioned worker's one
    address in (PrivateServer.allow_peer), and no other run uses it."""
    server = _private_server()
    yield server
    server.cleanup()


def _run(url: str, schema: str, fault: faults.Fault, guard: bool, planned: int, what: str,
         **kw) -> tuple[dict, pgtools.Verdict]:
    """The run, and plain SQL's verdict; a setup error when the fault did not happen."""
    result = driver.run(f"{url}?schema={schema}", jobs=kw.pop("jobs", 300), workers=2, fault=fault,
                        guard=guard, seed=kw.pop("seed", 1), faults=planned, timeout_s=600,
                        lease_s=1.0, heartbeat_s=0.25, **{"batch": 16, **kw})
    if result["faults"] < planned or result["hits"] == 0:
        pytest.fail(f"setup: the run did not produce its fault ({what}): {result['faults']} of "
                    f"{planned} struck, {result['hits']} hit; nothing can be concluded from it")
    return result, pgtools.judge_sql(url, schema)


def _trusted_hosts(server: pgtools.PrivateServer) -> set[str]:
    with open(os.path.join(server.data, "pg_hba.conf"), encoding="utf-8") as f:
        return {line.split()[3] for line in f
                if line.split() and not line.lstrip().startswith("#") and line.split()[0] == "host"}


def _listens(server: pgtools.PrivateServer) -> list[str]:
    with open(os.path.join(server.data, "postgresql.conf"), encoding="utf-8") as f:
        return [line.split("=", 1)[1].split("#")[0].strip() for line in f
                if line.startswith("listen_addresses")]


def _guard_id(guard: bool) -> str:
    return "guard-on" if guard else "guard-off"


@pytest.fixture(params=[True, False], ids=_guard_id)
def terminated(request, shared_db):
    guard = request.param
    # Handlers that take 10 ms, in batches of 4: a run of seconds, with transactions to cut.
    # Guard off: each cut waits for a worker between its effects and its completions.
    return guard, *_run(shared_db, f"term_{int(guard)}", faults.Terminate(window=not guard), guard,
                        6, "a connection terminated inside a transaction"
                        + ("" if guard else ", between an effect and its completion"),
                        jobs=400, batch=4, work_s=0.01)


def test_connection_terminated_mid_transaction(terminated):
    guard, result, verdict = terminated
    assert verdict.lost == 0 and verdict.terminal == verdict.jobs
    assert result["restarts"] >= 1  # a terminated worker exits and is started again
    if guard:
        assert verdict.ok, verdict
        assert result["violations"] == {}, result["violation_examples"]
    else:  # a worker cut off after its effect committed and before its completion did
        assert verdict.extra_effect_rows > 0, (result, verdict)
        assert result["violations"].get("INV_001", 0) > 0


@pytest.fixture(params=[True, False], ids=_guard_id)
def crashed(request, private_server):
    guard = request.param
    with pgtools.throwaway_database(private_server.url, tag="ff_crash") as url:
        # Each crash restarts the server (crash recovery) and every worker process. No
        # handler work: a worker's time is its commits. Guard off: each crash waits for a
        # worker between its effects and its completions.
        yield guard, *_run(url, "crash", faults.ServerCrash(window=not guard), guard, FAULTS,
                           "a server crash" + ("" if guard else " between an effect and its completion"),
                           jobs=600, server=private_server)


def test_server_crash_and_restart(crashed):
    guard, result, verdict = crashed
    assert verdict.lost == 0 and verdict.terminal == verdict.jobs
    if guard:
        assert verdict.ok, verdict
        assert result["violations"] == {}, result["violation_examples"]
    else:
        assert verdict.extra_effect_rows > 0, (result, verdict)


@pytest.fixture(params=[True, False], ids=_guard_id)
def partitioned(request, partition_server):
    _require(faults.namespaces_permitted(), "network namespaces not permitted")
    guard = request.param
    with pgtools.throwaway_database(partition_server.url, tag="ff_part") as url:
        # A handler that takes 0.2 s (less than a heartbeat period, so it sends none): the
        # worker spends its lease between its claim and its commit, where a zombie is made.
        # The run ends only after the healed worker has tried its late write.
        yield guard, *_run(url, "part", faults.Partition(), guard, 1,
                           "a partition of a worker holding a lease", jobs=100, batch=1, work_s=0.2,
                           server=partition_server)


def test_partitioned_worker_late_writes_are_refused(partitioned, partition_server):
    guard, result, verdict = partitioned
    # The partitioned worker's one address, /32, was let in on this run's server only.
    assert _trusted_hosts(partition_server) == {"127.0.0.1/32", "::1/128", f"{faults.NET_PREFIX}.2/32"}
    assert _listens(partition_server)[-1] == f"'127.0.0.1,{faults.NET_PREFIX}.1'"
    assert verdict.lost == 0 and verdict.terminal == verdict.jobs
    if guard:
        assert verdict.ok, verdict
        assert result["refused_writes"] > 0  # the zombie came back and was turned away
        assert result["violations"] == {}, result["violation_examples"]
    else:
        assert verdict.extra_effect_rows > 0, (result, verdict)
        assert result["violations"].get("INV_001", 0) > 0


def test_a_private_server_trusts_local_connections_only(private_server):
    assert _trusted_hosts(private_server) == {"127.0.0.1/32", "::1/128"}
    assert _listens(private_server)[-1] == "'127.0.0.1'"

