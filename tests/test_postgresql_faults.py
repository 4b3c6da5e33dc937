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

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from failfirst.cli import main
from failfirst.processor.queue import JobQueue
from failfirst.realrun import driver, faults, verdict
from failfirst.realrun.process import HANDLERS, JOB_TYPE
from failfirst.store import pgtools
from failfirst.store.postgresql import PostgresStore

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



# -- check, resume and stress on PostgreSQL: what they promise about the store -------------


def _sql(url: str, query: str, params: tuple = ()):
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        return cur.fetchall() if cur.description else []


def _one_line(capsys, code: int, *argv: str) -> str:
    got = main(list(argv))
    out, err = capsys.readouterr()
    assert got == code and out == "" and err.count("\n") == 1, (got, out, err)
    return err


def test_check_on_postgresql_judges_one_snapshot(shared_db):
    """REPEATABLE READ: another connection commits every job's completion between the
    judge's reads of the history and of the effects and states; the judge sees neither half."""
    url = f"{shared_db}?schema=snap"
    store = PostgresStore.open(url)
    JobQueue(store, HANDLERS).enqueue_batch(JOB_TYPE, [{"n": i} for i in range(20)])
    writer = JobQueue(store, HANDLERS)
    written = []

    class ReadInterleaved(PostgresStore):
        def effects(self, job_id=None):
            if not written:
                leases = writer.claim_batch("w1", 20)
                written.append(writer.commit_batch([(le, [("row", le.payload["n"])]) for le in leases],
                                                   "w1"))
            return super().effects(job_id)

    judged = ReadInterleaved.open(url, read_only=True)
    try:
        result = verdict.judge(judged)
    finally:
        judged.close()
        store.close()
    assert written == [20]
    assert result["violations"] == {}, result["violation_examples"][:3]


def test_check_on_postgresql_never_migrates(shared_db, capsys):
    url = f"{shared_db}?schema=old"
    store = PostgresStore.open(url)
    JobQueue(store, HANDLERS).enqueue_batch(JOB_TYPE, [{"n": 1}])
    store.close()
    _sql(shared_db, "DROP TABLE old.outbox; UPDATE old.failfirst_meta SET schema_version = 1")
    assert main(["check", "--store", url, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["enqueued"] == 1 and result["violations"] == {}
    assert _sql(shared_db, "SELECT schema_version FROM old.failfirst_meta") == [(1,)]
    assert _sql(shared_db, "SELECT count(*) FROM pg_tables WHERE schemaname = 'old' "
                           "AND tablename = 'outbox'") == [(0,)]


def _start_cli(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "failfirst.cli", *argv], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _succeeded(url: str, schema: str) -> int:
    try:
        return _sql(url, f"SELECT count(*) FROM {schema}.jobs WHERE state = 'succeeded'")[0][0]
    except Exception:  # noqa: BLE001 - not created yet, or the server is restarting
        return 0


def _wait_progress(proc, url: str, schema: str) -> None:
    deadline = time.monotonic() + 120  # real-time: bounded wait for real progress
    while _succeeded(url, schema) == 0:
        if proc.poll() is not None:
            pytest.fail(f"setup: the run ended (exit {proc.returncode}) before it made progress: "
                        f"{proc.stderr.read()}")
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)  # real-time: polling a real run


def _finish(proc, timeout_s: float = 120) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode, out, err


def test_a_live_run_on_postgresql_is_refused_by_resume_and_in_progress_for_check(shared_db, capsys):
    url = f"{shared_db}?schema=live"
    proc = _start_cli("stress", "--store", url, "--jobs", "60000", "--workers", "1")
    try:
        _wait_progress(proc, shared_db, "live")
        err = _one_line(capsys, 2, "resume", "--store", url)
        assert "a live run holds it" in err
        assert main(["check", "--store", url, "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["run"] == "live" and result["in_progress"] > 0 and result["lost"] == 0
        assert result["violations"] == {}, result["violation_examples"][:3]
        assert _sql(shared_db, "SELECT count(*) FROM live.events "
                               "WHERE kind IN ('crash', 'resume')") == [(0,)]
    finally:
        proc.send_signal(signal.SIGINT)
        code, _, err = _finish(proc)
    assert code == 130 and f"failfirst resume --store {url}" in err, err


def test_two_stress_runs_at_the_same_instant_on_postgresql_one_is_accepted(shared_db, tmp_path):
    from test_resume import _two_at_once

    url = f"{shared_db}?schema=twice"
    done = _two_at_once(tmp_path, url)
    assert sorted(d.returncode for d in done) == [0, 2], "\n".join(
        f"{d.returncode}: {d.stderr}" for d in done)
    loser = next(d for d in done if d.returncode == 2)
    assert "already holds" in loser.stderr or "live run" in loser.stderr, loser.stderr
    assert _sql(shared_db, "SELECT count(*) FROM twice.jobs") == [(3000,)]
    assert _sql(shared_db, "SELECT count(*) FROM twice.events WHERE kind = 'start'") == [(1,)]


def test_a_server_crash_mid_run_exits_1_and_resume_finishes(private_server, capsys):
    """Not bad input: the run breaks (exit 1) and says how to finish; resume finishes it."""
    with pgtools.throwaway_database(private_server.url, tag="ff_lost") as db:
        url = f"{db}?schema=lost"
        proc = _start_cli("stress", "--store", url, "--jobs", "30000", "--workers", "2")
        try:
            _wait_progress(proc, db, "lost")
            private_server.crash()
        finally:
            code, out, err = _finish(proc)
            private_server.start()
        assert code == 1 and out == "" and err.count("\n") == 1, (code, err)
        assert f"failfirst resume --store {url}" in err and "Traceback" not in err
        assert main(["resume", "--store", url, "--json"]) == 0
        done = json.loads(capsys.readouterr().out)
        assert done["lost"] == 0 and done["duplicate_effects"] == 0 and done["violations"] == {}
        assert done["succeeded"] == 30_000
        assert pgtools.judge_sql(db, "lost").ok


def test_a_statement_timeout_mid_run_is_not_bad_input(shared_db):
    """A server-side statement timeout: exit 1 with the command that finishes the run."""
    import psycopg

    with pgtools.throwaway_database(pgtools.admin_url(), tag="ff_slow") as db:
        dbname = db.rsplit("/", 1)[1]
        _sql(db, f'ALTER DATABASE "{dbname}" SET statement_timeout = \'1s\'')
        url = f"{db}?schema=slow"
        proc = _start_cli("stress", "--store", url, "--jobs", "30000", "--workers", "1")
        try:
            _wait_progress(proc, db, "slow")
            with psycopg.connect(db) as locker:  # a transaction that holds the jobs table
                locker.execute("SET statement_timeout = 0")
                locker.execute("LOCK TABLE slow.jobs IN ACCESS EXCLUSIVE MODE")
                code, out, err = _finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert code == 1 and out == "" and err.count("\n") == 1, (code, err)
    assert "timed out" in err and f"failfirst resume --store {url}" in err, err


@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGTERM, 143, "terminated"),
                                                  (signal.SIGINT, 130, "interrupted")])
def test_stress_pg_stopped_stops_its_server_and_removes_its_folder(tmp_path, sig, code, word):
    """``make stress-pg`` (the gate on a private server): a signal stops the run, the server
    and removes the folder, in one line, no traceback."""
    _require(pgtools.binaries_problem(), "no private PostgreSQL server")
    folder = tmp_path / "pg"
    proc = subprocess.Popen([sys.executable, "-m", "failfirst.bench.stress_gate", "--pg-folder", str(folder),
                             "--jobs", "30000", "--workers", "2", "--fault", "sigkill", "--faults", "5",
                             "--min-faults", "5",
                             "--out", str(tmp_path / "out.json")], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("stress-pg: a private server in"), (line, proc.poll())
        server_url = line.rsplit(" at ", 1)[1].strip()
        deadline = time.monotonic() + 120  # real-time: bounded wait for the run's progress

        def progress() -> int:
            try:
                rows = _sql(server_url, "SELECT datname FROM pg_database WHERE datname LIKE 'ff_stress%'")
                return rows and _succeeded(pgtools.with_database(server_url, rows[0][0]), "stress")
            except Exception:  # noqa: BLE001 - not up yet
                return 0

        while not progress():
            if proc.poll() is not None:
                pytest.fail(f"setup: stress-pg ended (exit {proc.returncode}) before it made progress: "
                            f"{proc.stderr.read()}")
            assert time.monotonic() < deadline, "stress-pg made no progress"
            time.sleep(0.1)  # real-time: polling a real run
        data = pgtools.PrivateServer(str(folder)).data  # as root, maybe a folder it points to
        with open(os.path.join(data, "postmaster.pid"), encoding="ascii") as f:
            pid = int(f.readline())
        proc.send_signal(sig)
        rc, _, err = _finish(proc)
    finally:
        if proc.poll() is None:  # SIGTERM first: the gate then stops the server it started
            proc.terminate()
            _finish(proc)
    assert rc == code and err.count("\n") == 1 and err.startswith(f"stress-pg: {word}"), err
    assert "Traceback" not in err and not folder.exists()
    assert not pgtools.process_alive(pid), "the private server is still running"
