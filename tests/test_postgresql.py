"""PostgreSQL: the same processor, proven equal to SQLite, isolation, refusals, real crashes.

Every test here needs a server (``$FAILFIRST_PG_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``); without one they are skipped with a
one-line reason, unless ``FAILFIRST_REQUIRE_PG=1`` (CI), where they fail. Each test
session works in a database of its own, created with a unique name and dropped after.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from failfirst.cli import main
from failfirst.proofs import differential
from failfirst.proofs.explorer import depth_first, explore, with_bounds
from failfirst.proofs.run import simulate
from failfirst.realrun.driver import stress
from failfirst.sim import catalogue
from failfirst.sim.choices import ReplayChoices
from failfirst.store import Store, StoreError, parse_store_url, pgtools, simulation_store
from failfirst.store.clock import SimClock
from failfirst.store.postgresql import PostgresStore

pytestmark = pytest.mark.postgresql

#: The differential proof runs at the catalogue's default bounds: with sleep sets on
#: both stores the whole catalogue is some 4,000 schedules. ``FAILFIRST_PG_MAX_FAULTS``
#: lowers the fault bound (a quick look), never raises it past the default.
PROOF_MAX_FAULTS = int(os.environ.get("FAILFIRST_PG_MAX_FAULTS", "9"))
SCHEDULE_LIMIT = 200_000


@pytest.fixture(scope="session")
def pg_url(pg_admin_url) -> str:
    with pgtools.throwaway_database(pg_admin_url, tag="ff_pytest") as url:
        yield url


# -- the differential proof: every failure mode, schedule by schedule ------------------


def _proof_cases():
    for scenario in catalogue.all_scenarios():
        for guard in (False, True):
            yield pytest.param(scenario.id, guard, id=f"{scenario.id}-guard-{'on' if guard else 'off'}")


_PROOF_ROWS: dict[tuple[str, bool], dict] = {}


@pytest.fixture(scope="module")
def proof_table():
    """The proof's rows; once every failure mode passed both ways, the table the
    PostgreSQL chapter publishes (``failfirst.proofs.differential.RESULTS``). Each row
    carries its bounds: under ``FAILFIRST_PG_MAX_FAULTS`` the chapter says which rows
    were proven below their failure mode's default bound."""
    yield _PROOF_ROWS
    if len(_PROOF_ROWS) == 2 * len(catalogue.all_scenarios()):
        differential.save([_PROOF_ROWS[key] for key in sorted(_PROOF_ROWS)])


@pytest.mark.parametrize(("fm", "guard"), list(_proof_cases()))
def test_differential_proof_same_schedules_digests_and_violations(pg_url, proof_table, fm, guard):
    """At the catalogue's default bounds, with the default reduction (symmetry and sleep
    sets, footprints recorded on each store alike): every schedule PostgreSQL's own
    search finds, replayed on SQLite, gives the same digest, violations and ``reached``;
    the counts and the violated invariants equal SQLite's own exploration
    (:func:`failfirst.proofs.differential.differential` raises on any difference)."""
    scenario = catalogue.load(fm)
    if PROOF_MAX_FAULTS < scenario.faults.max_faults:
        scenario = with_bounds(scenario, PROOF_MAX_FAULTS)
    row = differential.differential(scenario, guard, pg_url)
    print(f"{fm} guard {row['guard']}: bounds {row['bounds']}, {row['schedules']} schedules")
    assert row["reduction"] == "full" and row["same_digest"] == row["schedules"] > 0
    if guard:
        assert row["violating"] == 0, f"{fm}: the guardrail fails on PostgreSQL"
    else:
        assert row["violating"] > 0 and set(row["invariants_violated"]) & set(scenario.invariants)
    proof_table[(fm, guard)] = row


@pytest.mark.parametrize("fm", ["FM_004", "FM_010"])
@pytest.mark.parametrize("guard", [False, True], ids=["guard-off", "guard-on"])
def test_differential_without_reduction_schedule_by_schedule(pg_url, fm, guard):
    """The same comparison with no reduction at all (at one fault; two failure modes
    whose plain trees are small): every schedule of the plain tree, so the equality does
    not rest on the footprints."""
    scenario = with_bounds(catalogue.load(fm), 1)
    sqlite = explore(scenario, guard, stop_at_first=False, shrink_counterexample=False,
                     reduction="none")
    pg = simulation_store(pg_url, SimClock())
    lite = Store.memory(SimClock())
    schedules = violating = 0
    try:
        for on_pg in depth_first(lambda source: simulate(scenario, guard, source, reduce=False,
                                                         store=pg), SCHEDULE_LIMIT):
            on_lite = simulate(scenario, guard, ReplayChoices(on_pg.choices), reduce=False,
                               store=lite)
            assert on_pg.digest == on_lite.digest, f"{on_pg.schedule}: histories differ"
            schedules += 1
            violating += bool(on_pg.violations)
    finally:
        pg.close()
    assert (schedules, violating) == (sqlite.schedules, sqlite.violating)
    assert (violating == 0) == guard


def test_explore_cli_on_postgresql_equals_sqlite(pg_url, capsys):
    """The command line's path to PostgreSQL, at the differential proof's bound for FM_001
    (its default, or ``FAILFIRST_PG_MAX_FAULTS`` below it): the same ``schedules`` and
    ``reached`` as SQLite, none violating with the guardrail; INV_001 without it. Both
    run the default reduction (sleep sets record footprints on either store), and the
    PostgreSQL one in two processes, each on a private schema that it drops."""
    bound = min(PROOF_MAX_FAULTS, catalogue.load("FM_001").faults.max_faults)
    argv = ["explore", "FM_001", "--guard", "on", "--json", "--max-faults", str(bound)]
    assert main([*argv, "--workers", "2", "--store", pg_url]) == 0
    on_pg = json.loads(capsys.readouterr().out)
    assert on_pg["reduction"] == "full"
    assert main(argv) == 0
    on_lite = json.loads(capsys.readouterr().out)
    assert on_pg["schedules"] == on_lite["schedules"] and on_pg["reached"] == on_lite["reached"]
    assert on_pg["violating"] == 0 and on_pg["distinct"] == on_lite["distinct"]
    assert main(["explore", "FM_001", "--guard", "off", "--json", "--max-faults", str(bound),
                 "--store", pg_url]) == 0
    off = json.loads(capsys.readouterr().out)
    assert off["violating"] > 0
    assert "INV_001" in {v["invariant"] for v in off["counterexample"]["violations"]}


def test_run_and_replay_on_postgresql_give_sqlites_digest(pg_url, capsys):
    assert main(["run", "FM_004", "--guard", "off", "--seed", "3", "--json"]) == 0
    lite = json.loads(capsys.readouterr().out)
    assert main(["run", "FM_004", "--guard", "off", "--seed", "3", "--json", "--store", pg_url]) == 0
    pg = json.loads(capsys.readouterr().out)
    assert pg["digest"] == lite["digest"] and pg["violations"] == lite["violations"]
    assert main(["replay", "FM_004", "--guard", "off", "--schedule", lite["schedule"], "--json",
                 "--store", pg_url]) == 0
    assert json.loads(capsys.readouterr().out)["digest"] == lite["digest"]


# -- isolation: why the claim takes row locks ------------------------------------------


def _two_stores(pg_url: str, schema: str) -> tuple[PostgresStore, PostgresStore]:
    url = pg_url + f"?schema={schema}"
    a = PostgresStore.open(url, SimClock())
    b = PostgresStore.open(url, SimClock())
    with a.transaction():
        for n in range(2):
            a.insert_job("effect", json.dumps({"n": n}), None, 0.0, 3)
    return a, b


def test_a_plain_read_then_update_claim_lets_two_workers_take_one_job(pg_url):
    """Negative control, on two real connections under READ COMMITTED: both read the
    same pending job before either writes; both updates succeed (the second waits for
    nothing: the first has committed); two workers now believe they hold job 1."""
    a, b = _two_stores(pg_url, "iso_naive")
    try:
        taken = []
        a._q("BEGIN ISOLATION LEVEL READ COMMITTED")
        b._q("BEGIN ISOLATION LEVEL READ COMMITTED")
        naive_pick = "SELECT id FROM jobs WHERE state = 'pending' ORDER BY id LIMIT 1"
        job_a = a._q(naive_pick).fetchone()[0]
        job_b = b._q(naive_pick).fetchone()[0]
        for store, job, who in ((a, job_a, "A"), (b, job_b, "B")):
            done = store._q("UPDATE jobs SET state = 'leased', lease_owner = %s WHERE id = %s",
                            (who, job)).rowcount
            store._q("COMMIT")
            taken.append((who, job, done))
        assert job_a == job_b == 1
        assert taken == [("A", 1, 1), ("B", 1, 1)]  # both "claimed" job 1
    finally:
        a.close()
        b.close()


def test_the_shipped_claim_cannot_hand_one_job_to_two_workers(pg_url):
    """The same interleaving with the shipped statements: the claim's select locks the
    row (FOR UPDATE SKIP LOCKED), so the second worker skips it and gets job 2; and
    the compare-and-set would refuse a claim of a row already moved."""
    a, b = _two_stores(pg_url, "iso_shipped")
    try:
        a._begin()
        b._begin()
        job_a = a.next_claimable_jobs(0.0, 1)[0]
        job_b = b.next_claimable_jobs(0.0, 1)[0]
        assert (job_a.id, job_b.id) == (1, 2)
        assert a.compare_and_set_state(1, "pending", "leased", job_a.token, bump_token=True,
                                       columns={"lease_owner": "A"}) == 1
        a._end(commit=True)
        # B, still inside its transaction, tries job 1 anyway with what it knew: refused.
        assert b.compare_and_set_state(1, "pending", "leased", 0, bump_token=True,
                                       columns={"lease_owner": "B"}) is None
        assert b.compare_and_set_state(2, "pending", "leased", job_b.token, bump_token=True,
                                       columns={"lease_owner": "B"}) == 1
        b._end(commit=True)
        assert {j.id: j.lease_owner for j in a.jobs()} == {1: "A", 2: "B"}
    finally:
        a.close()
        b.close()


def test_keyed_effect_is_unique_by_constraint_across_connections(pg_url):
    a, b = _two_stores(pg_url, "iso_effects")
    try:
        with a.transaction():
            assert a.insert_effect(1, "row", 1, 1, 1, once=True)
        with b.transaction():
            assert not b.insert_effect(1, "row", 2, 1, 1, once=True)
        import psycopg

        with psycopg.connect(pg_url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO iso_effects.effects (job_id, part, token, keyed) "
                         "VALUES (1, 'row', 3, true)")
    finally:
        a.close()
        b.close()


# -- refusals: exit 2, one line, nothing written, no secret shown ------------------------


def _refused(capsys, *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith("failfirst: error: ") and err.count("\n") == 1
    return err


def test_unreachable_server_is_refused_without_showing_the_password(capsys):
    url = "postgresql://postgres:s3cretpw@127.0.0.1:1/test"
    for argv in (["explore", "FM_001"], ["run", "FM_001"],
                 ["stress", "--jobs", "5", "--workers", "1"]):
        err = _refused(capsys, *argv, "--store", url)
        assert "s3cretpw" not in err and "cannot connect" in err and "***" in err


def test_malformed_urls_are_refused(capsys):
    for url in ("mysql://x/y", "postgresql://h:notaport/db", "postgresql://h/db?schema=Bad-Name"):
        _refused(capsys, "run", "FM_001", "--store", url)


def test_foreign_schema_is_refused_untouched(pg_url, capsys):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA other_app; CREATE TABLE other_app.jobs (x int)")
    err = _refused(capsys, "stress", "--jobs", "5", "--workers", "1",
                   "--store", pg_url + "?schema=other_app")
    assert "not a failfirst database" in err
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'other_app'").fetchall()
    assert tables == [("jobs",)]


def test_newer_schema_is_refused_untouched(pg_url, capsys):
    import psycopg

    url = pg_url + "?schema=newer"
    PostgresStore.open(url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE newer.failfirst_meta SET schema_version = schema_version + 1")
    err = _refused(capsys, "stress", "--jobs", "5", "--workers", "1", "--store", url)
    assert "newer" in err
    with pytest.raises(StoreError, match="newer"):
        PostgresStore.open(url)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM newer.jobs").fetchone()[0] == 0


#: Damages to a failfirst schema's mark and tables, each refused in one line, untouched.
SCHEMA_DAMAGES = {
    "text application_id": ["ALTER TABLE {s}.failfirst_meta ALTER application_id TYPE text"],
    "a missing meta column": ["ALTER TABLE {s}.failfirst_meta DROP COLUMN schema_version"],
    "NULL schema_version": ["ALTER TABLE {s}.failfirst_meta ALTER schema_version DROP NOT NULL",
                            "UPDATE {s}.failfirst_meta SET schema_version = NULL"],
    "no meta row": ["DELETE FROM {s}.failfirst_meta"],
    "two meta rows": ["INSERT INTO {s}.failfirst_meta SELECT * FROM {s}.failfirst_meta"],
    "version 0": ["UPDATE {s}.failfirst_meta SET schema_version = 0"],
    "version 2 without failfirst's tables": [
        "DROP TABLE {s}.events, {s}.outbox, {s}.dead_letters, {s}.effects, {s}.attempts, {s}.jobs"],
    "a missing column": ["ALTER TABLE {s}.jobs DROP COLUMN lease_expires_s"],
    "a column of another type": ["ALTER TABLE {s}.jobs ALTER attempts TYPE bigint"],
    "a table of another application": ["CREATE TABLE {s}.users (id int)"],
    "a view for a table": ["DROP TABLE {s}.events",
                           "CREATE VIEW {s}.events AS SELECT 1::bigint AS seq"],
}


def _dump(pg_url: str, schema: str) -> list:
    """A schema's catalogue and every row of its tables: what 'untouched' compares."""
    import psycopg

    with psycopg.connect(pg_url) as conn:
        catalogue = conn.execute(
            "SELECT c.relname, c.relkind::text, a.attname, format_type(a.atttypid, a.atttypmod) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
            "WHERE n.nspname = %s ORDER BY 1, 3", (schema,)).fetchall()
        rows = [conn.execute(f"SELECT * FROM {schema}.{name} ORDER BY 1").fetchall()
                for name in sorted({r[0] for r in catalogue if r[1] in ("r", "v")})]
    return [catalogue, rows]


@pytest.mark.parametrize("damage", sorted(SCHEMA_DAMAGES))
def test_a_damaged_or_foreign_failfirst_schema_is_refused_untouched(pg_url, capsys, damage):
    import psycopg

    schema = "damaged_" + "".join(ch if ch.isalnum() else "_" for ch in damage).lower()[:40]
    url = pg_url + f"?schema={schema}"
    PostgresStore.open(url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for statement in SCHEMA_DAMAGES[damage]:
            conn.execute(statement.format(s=schema))
    before = _dump(pg_url, schema)
    for argv in (["check", "--store", url], ["resume", "--store", url],
                 ["stress", "--jobs", "2", "--workers", "1", "--store", url]):
        err = _refused(capsys, *argv)
        assert "not a failfirst database" in err, err
    with pytest.raises(StoreError, match="not a failfirst database"):
        PostgresStore.open(url)
    assert _dump(pg_url, schema) == before


@pytest.fixture(scope="module")
def damaged_run(pg_url):
    """A finished run on PostgreSQL, then hand-edited: one event's data not JSON, one
    job's payload not JSON, another job's enqueue event deleted, a claim token NULL."""
    import psycopg

    url = pg_url + "?schema=damaged_run"
    result = stress(db=url, jobs=6, workers=1)
    assert result["violations"] == {} and result["succeeded"] == 6
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET search_path TO damaged_run")
        conn.execute("UPDATE events SET data = '{oops' WHERE seq = "
                     "(SELECT min(seq) FROM events WHERE kind = 'effect')")
        conn.execute("UPDATE jobs SET payload = '[1]' WHERE id = 2")
        conn.execute("DELETE FROM events WHERE kind = 'enqueue' AND job = 3")
        conn.execute("UPDATE events SET token = NULL WHERE kind = 'claim' AND job = 4")
    return url


def test_check_of_a_damaged_postgresql_store_is_a_verdict(damaged_run, capsys):
    code = main(["check", "--store", damaged_run, "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "", err
    verdict = json.loads(out)
    assert verdict["violations"].get("INV_000", 0) >= 4, verdict
    named = {v["job"] for v in verdict["violation_examples"] if v["invariant"] == "INV_000"}
    assert {2, 3, 4} <= named, verdict


def test_the_catalogue_check_expects_exactly_what_the_schema_sql_makes(pg_url):
    """The expected tables are read from SCHEMA_SQL: a fresh schema must match them (so
    the check can neither drift from the schema nor accept everything)."""
    from failfirst.store.postgresql import _tables_of, expected_tables

    PostgresStore.open(pg_url + "?schema=expected").close()
    import psycopg

    with psycopg.connect(pg_url) as conn:
        assert _tables_of(conn, "expected") == expected_tables()


def test_real_store_uses_the_servers_clock(pg_url):
    """A worker's own clock never enters a lease decision: the store's clock is the
    server's, and a transaction sees one instant."""
    store = PostgresStore.open(pg_url + "?schema=clock")
    try:
        import psycopg

        with psycopg.connect(pg_url) as conn:
            server_s = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0]
        assert abs(store.clock.now_s() - server_s) < 5.0
        with store.transaction():
            first = store.clock.now_s()
            assert store.clock.now_s() == first
    finally:
        store.close()


# -- simulation schemas: dropped however the explorer ends, orphans reaped ----------------


def _poll(predicate, what: str, timeout_s: float = 60.0):
    """A bounded wait for an event of a real process (never a fixed time)."""
    import time

    deadline = time.monotonic() + timeout_s  # real-time: a bounded wait for a real process
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)  # real-time: polling a real process
    pytest.fail(f"setup: timed out after {timeout_s:g} s waiting for {what}")


def _schemas(pg_url: str, prefix: str) -> list[str]:
    import psycopg

    with psycopg.connect(pg_url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (prefix,))]


def _simulating(pg_url: str) -> bool:
    """Some failfirst session of this database has run a schedule (not only made its schema)."""
    import psycopg

    with psycopg.connect(pg_url) as conn:
        return bool(conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'failfirst' AND query LIKE '%%jobs%%' "
            "AND query NOT LIKE '%%CREATE%%'").fetchone()[0])


@pytest.mark.parametrize(("signum", "extra"), [
    (signal.SIGTERM, []), (signal.SIGINT, []),
    (signal.SIGTERM, ["--workers", "2", "--all"]), (signal.SIGINT, ["--workers", "2", "--all"]),
], ids=["term", "int", "term-workers-2-all", "int-workers-2-all"])
def test_a_signal_to_explore_on_postgresql_drops_its_schemas(pg_url, signum, extra):
    """The signal lands inside a driver call (most of an exploration's time is spent
    there): the explorer still exits 128 + the signal with one line, and no schema of
    it or of its forked explorers is left in the user's database."""
    for _ in range(3):  # the trials left the schema 6 times in 6
        proc = subprocess.Popen(
            [sys.executable, "-m", "failfirst.cli", "explore", "4", "--store", pg_url,
             "--reduction", "none", "--max-faults", "3", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            prefix = f"ff_sim_{proc.pid}_"
            _poll(lambda prefix=prefix: _schemas(pg_url, prefix), "the explorer's schema")
            _poll(lambda: _simulating(pg_url), "the explorer's first schedule")
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 128 + signum, err
        assert err.count("\n") == 1 and err.startswith("failfirst: "), err
        assert _schemas(pg_url, prefix) == []


_OWNER = """
import sys
from failfirst.store.clock import SimClock
from failfirst.store.postgresql import PostgresStore
store = PostgresStore.simulation(sys.argv[1], SimClock())
print(store.schema, store._conn.info.backend_pid, flush=True)
sys.stdin.read()
"""


def test_an_orphaned_simulation_schema_is_reaped_and_a_live_one_never(pg_url):
    """SIGKILL cannot be cleaned up after: the next simulation store on the server drops
    the schema, because no session holds its advisory lock any more. A schema whose
    owner lives is never touched, even one named with this process's pid (another
    machine's process may have the same pid): the lock, not the name, says who owns it."""
    import psycopg

    from failfirst.store.postgresql import _SIM_LOCK_CLASS, _SIM_LOCK_SQL

    owner = subprocess.Popen([sys.executable, "-c", _OWNER, pg_url], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    orphan, backend = owner.stdout.readline().split()
    owner.kill()
    owner.wait()
    with psycopg.connect(pg_url, autocommit=True) as watcher:
        _poll(lambda: not watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                          (int(backend),)).fetchone()[0],
              "the killed owner's session to end")
    # A live owner elsewhere, with this process's pid in its schema's name.
    elsewhere = f"ff_sim_{os.getpid()}_0ther0_{os.getpid()}_c0ffee00"
    live = psycopg.connect(pg_url, autocommit=True)
    try:
        live.execute(_SIM_LOCK_SQL, (_SIM_LOCK_CLASS, elsewhere))
        live.execute(f"CREATE SCHEMA {elsewhere}")
        mine = simulation_store(pg_url, SimClock())
        assert _schemas(pg_url, orphan) == []
        assert _schemas(pg_url, elsewhere) == [elsewhere]
        from failfirst.store.postgresql import drop_simulation_schemas

        drop_simulation_schemas(pg_url, os.getpid())  # what the explorer runs after its pool
        assert _schemas(pg_url, elsewhere) == [elsewhere]
        mine.close()
        assert _schemas(pg_url, mine.schema) == []
    finally:
        live.execute(f"DROP SCHEMA IF EXISTS {elsewhere}")
        live.close()


# -- crashed for real: worker processes SIGKILLed -----------------------------------------


def test_stress_on_postgresql_with_kills_keeps_every_invariant(pg_url):
    url = pg_url + "?schema=stress_on"
    # Kills planned by progress: a worker process needs a moment to start and connect,
    # so kills by the clock would mostly strike workers before their first claim.
    result = stress(db=url, jobs=200, workers=2, kills=4, guard=True, seed=1,
                    batch=16, lease_s=1.0, heartbeat_s=0.25)
    assert result["kills"] == 4 and result["db"] == parse_store_url(url).redacted
    assert result["lost"] == 0 and result["duplicate_effects"] == 0
    assert result["violations"] == {}, result["violation_examples"]
    verdict = pgtools.judge_sql(pg_url, "stress_on")
    assert verdict.ok and verdict.jobs == 200, verdict


def test_stress_on_postgresql_guard_off_duplicates_effects(pg_url):
    """Negative control: without the idempotent commit boundary, a worker killed between
    a job's effect and its completion leaves the effect; the re-run writes it again. The
    SQL judge counts extra rows of succeeded jobs; the run's count covers every job (one
    doubled under many kills may end dead), so it is at least the judge's."""
    url = pg_url + "?schema=stress_off"
    result = stress(db=url, jobs=400, workers=2, kills=8, guard=False, seed=3,
                    batch=16, lease_s=1.0, heartbeat_s=0.25)
    verdict = pgtools.judge_sql(pg_url, "stress_off")
    assert result["kills"] == 8 and verdict.lost == 0
    assert result["duplicate_effects"] >= verdict.extra_effect_rows > 0


def test_stress_cli_on_postgresql_never_prints_the_password(pg_url):
    """The URL reaches the worker processes through the environment, not their argv, and
    the result names the database without the password."""
    import psycopg

    role = f"ff_secret_{os.getpid()}"  # roles are server-wide: a unique name, dropped after
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw_do_not_show' SUPERUSER")
    try:
        from urllib.parse import urlsplit

        parts = urlsplit(pg_url)
        url = f"postgresql://{role}:pw_do_not_show@{parts.hostname}:{parts.port or 5432}" \
              f"{parts.path}?schema=secret"
        proc = subprocess.run([sys.executable, "-m", "failfirst.cli", "stress", "--store", url,
                               "--jobs", "20", "--workers", "1", "--json"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "pw_do_not_show" not in proc.stdout + proc.stderr
        assert json.loads(proc.stdout)["db"].startswith(f"postgresql://{role}:***@")
        with psycopg.connect(pg_url) as conn:
            logged = conn.execute("SELECT count(*) FROM secret.events WHERE data LIKE %s",
                                  ("%pw_do_not_show%",)).fetchone()[0]
        assert logged == 0
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS secret CASCADE")
            conn.execute(f"DROP ROLE IF EXISTS {role}")
