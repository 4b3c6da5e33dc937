"""The SQLite store: schema, transactions, WAL files, refusal of foreign files."""

from __future__ import annotations

import sqlite3

import pytest

from failfirst.store import APPLICATION_ID, SCHEMA_VERSION, Store, StoreError
from failfirst.store.clock import SimClock


def test_memory_store_has_the_versioned_schema(store):
    conn = store._conn
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"jobs", "attempts", "effects", "dead_letters", "events"} <= tables


def test_memory_stores_are_independent():
    a, b = Store.memory(SimClock()), Store.memory(SimClock())
    with a.transaction():
        a.insert_job("t", "{}", None, 0.0, 1)
    assert len(a.jobs()) == 1 and b.jobs() == []


def test_transaction_rolls_back_on_error(store):
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_job("t", "{}", None, 0.0, 1)
        raise RuntimeError("crash inside the transaction")
    assert store.jobs() == [] and not store.in_transaction


def test_writes_outside_a_transaction_are_refused(store):
    with pytest.raises(AssertionError):
        store.insert_job("t", "{}", None, 0.0, 1)


def test_file_store_uses_wal_and_survives_reopen(tmp_path):
    path = str(tmp_path / "q.db")
    s = Store.open_file(path, SimClock())
    with s.transaction():
        s.insert_job("t", '{"a":1}', "k", 0.0, 3)
    s.close()
    s2 = Store.open_file(path, SimClock())
    assert s2._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [j.payload for j in s2.jobs()] == [{"a": 1}]


def test_foreign_sqlite_file_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE x (y)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a failfirst database"):
        Store.open_file(str(path), SimClock())
    assert path.read_bytes() == before


def test_non_sqlite_file_is_refused_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a database\n" * 10)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a SQLite database"):
        Store.open_file(str(path), SimClock())
    assert path.read_bytes() == before


def test_newer_schema_is_refused_untouched(tmp_path):
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.execute("CREATE TABLE jobs (id)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer"):
        Store.open_file(str(path), SimClock())
    assert path.read_bytes() == before


def test_missing_directory_is_refused(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store.open_file(str(tmp_path / "nope" / "q.db"), SimClock())
