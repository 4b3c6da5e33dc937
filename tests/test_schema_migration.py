"""Schema version 2 adds the transactional outbox (FM_009). A version-1 file is
upgraded in place, in one transaction, when it is opened: its jobs and history stay,
the outbox appears; a file that claims version 1 without version 1's tables is
refused untouched, like any foreign file."""

from __future__ import annotations

import sqlite3

import pytest

from failfirst.processor.queue import JobQueue
from failfirst.realrun.process import HANDLERS, JOB_TYPE
from failfirst.store import APPLICATION_ID, SCHEMA_VERSION, Store, StoreError
from failfirst.store.clock import SimClock
from failfirst.store.sqlite import MIGRATIONS


def _version_1_file(path) -> int:
    """A database as failfirst with schema version 1 left it: one job, no outbox."""
    store = Store.open_file(str(path), SimClock())
    job = JobQueue(store, HANDLERS).enqueue(JOB_TYPE, {"n": 1})
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX outbox_unpublished")
    conn.execute("DROP TABLE outbox")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    return job


def _version(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_the_outbox_is_schema_version_2_and_its_migration_adds_only_it():
    assert SCHEMA_VERSION == 2
    assert [s.split("(")[0].split()[-1] for s in MIGRATIONS[1]] == ["outbox", "outbox"]


def test_a_version_1_file_is_upgraded_in_place_keeping_its_jobs(tmp_path):
    path = tmp_path / "v1.db"
    job = _version_1_file(path)
    assert _version(path) == 1
    store = Store.open_file(str(path), SimClock())
    assert _version(path) == SCHEMA_VERSION
    assert store.job(job).state == "pending" and store.outbox() == []
    assert [e["kind"] for e in store.events()] == ["enqueue"]
    with store.transaction():
        store.insert_outbox_message("m1.1.0", job, 1, "t", "{}", 0.0)
    assert store.unpublished_outbox(5)[0]["id"] == "m1.1.0"
    store.close()
    again = Store.open_file(str(path), SimClock())  # opening a current file changes nothing
    assert again.outbox()[0][0] == "m1.1.0"
    again.close()


def test_a_failed_migration_leaves_the_file_at_version_1(tmp_path, monkeypatch):
    path = tmp_path / "v1.db"
    _version_1_file(path)
    broken = (*MIGRATIONS[1], "CREATE TABLE jobs (x)")  # the last statement fails
    monkeypatch.setitem(MIGRATIONS, 1, broken)
    with pytest.raises(StoreError):
        Store.open_file(str(path), SimClock())
    assert _version(path) == 1
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert "outbox" not in tables, "the one transaction rolled back whole"


def test_a_file_claiming_version_1_with_other_tables_is_refused_untouched(tmp_path):
    path = tmp_path / "spoof.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, note TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a failfirst database"):
        Store.open_file(str(path), SimClock())
    assert path.read_bytes() == before and _version(path) == 1


@pytest.mark.postgresql
def test_a_version_1_postgresql_schema_is_upgraded_in_place():
    import psycopg

    from failfirst.store import parse_store_url, pgtools
    from failfirst.store.postgresql import META_TABLE, PostgresStore

    problem = pgtools.server_problem()
    if problem is not None:
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    with pgtools.throwaway_database(tag="ff_migrate") as url:
        store = PostgresStore.open(url, SimClock())
        job = JobQueue(store, HANDLERS).enqueue(JOB_TYPE, {"n": 1})
        store.close()
        with psycopg.connect(parse_store_url(url).conninfo, autocommit=True) as conn:
            conn.execute("DROP TABLE failfirst.outbox")
            conn.execute(f"UPDATE failfirst.{META_TABLE} SET schema_version = 1")
        store = PostgresStore.open(url, SimClock())
        try:
            assert store.job(job).state == "pending" and store.outbox() == []
            with store.transaction():
                store.insert_outbox_message("m1.1.0", job, 1, "t", "{}", 0.0)
            assert store.unpublished_outbox(5)[0]["id"] == "m1.1.0"
        finally:
            store.close()
        with psycopg.connect(parse_store_url(url).conninfo, autocommit=True) as conn:
            version = conn.execute(f"SELECT schema_version FROM failfirst.{META_TABLE}").fetchone()[0]
        assert version == SCHEMA_VERSION
