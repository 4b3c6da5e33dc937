"""Opening a database file: every path reaches exactly the file it names, and a file
that is not a failfirst database of this schema is refused before anything is written:
one line, exit 2, the file byte-identical, nothing left beside it."""

from __future__ import annotations

import os
import select
import sqlite3
import stat
import subprocess
import sys

import pytest

from failfirst.cli import main
from failfirst.processor.queue import JobQueue
from failfirst.realrun.process import HANDLERS, JOB_TYPE
from failfirst.store import APPLICATION_ID, SCHEMA_VERSION, Store, StoreError
from failfirst.store.clock import RealClock, SimClock

#: Names that a URI built without escaping would send elsewhere (or nowhere):
#: name -> the file such a URI opens instead.
TRICKY = {
    "app#prod.db": "app",
    "a?mode=rwc.db": "a",
    "100%.db": None,
    "%41.db": "A.db",
    "with space.db": None,
    "new\nline.db": None,
}
SIDECARS = ("-wal", "-shm", "-journal")


def _foreign(path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()


def _failfirst_db(path, jobs: int = 3) -> None:
    store = Store.open_file(str(path), SimClock())
    JobQueue(store, HANDLERS).enqueue_many([{"type": JOB_TYPE, "payload": {"n": n}} for n in range(jobs)])
    store.close()


def _snapshot(path) -> tuple[bytes, list[str]]:
    return path.read_bytes(), sorted(os.listdir(path.parent))


def _stress_refuses(capsys, path) -> str:
    code = main(["stress", "--db", str(path), "--jobs", "5", "--workers", "1"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith("failfirst: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_a_foreign_file_at_a_tricky_path_is_refused_untouched(tmp_path, capsys, name):
    path = tmp_path / name
    _foreign(path)
    decoy = TRICKY[name]
    if decoy:  # a failfirst database where an unescaped URI would look instead
        _failfirst_db(tmp_path / decoy, jobs=0)
    before = _snapshot(path)
    assert "not a failfirst database" in _stress_refuses(capsys, path)
    assert _snapshot(path) == before


@pytest.mark.parametrize("name", sorted(TRICKY))
def test_a_failfirst_database_at_a_tricky_path_opens_that_file(tmp_path, name):
    path = tmp_path / name
    _failfirst_db(path, jobs=2)
    assert sorted(os.listdir(tmp_path)) == [name]  # created exactly there, nothing beside
    store = Store.open_file(str(path), RealClock(), create=False)
    assert len(store.jobs()) == 2
    store.close()


def test_a_newline_in_a_path_does_not_cut_the_message(tmp_path, capsys):
    path = tmp_path / "new\nline.db"
    path.write_text("not a database\n")
    err = _stress_refuses(capsys, path)
    assert "not a SQLite database" in err and "line.db" in err


def test_failfirst_application_id_with_another_schema_is_refused_untouched(tmp_path, capsys):
    path = tmp_path / "spoof.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, note TEXT)")
    conn.execute("INSERT INTO jobs VALUES (1, 'keep me')")
    conn.commit()
    conn.close()
    before = _snapshot(path)
    assert "not a failfirst database" in _stress_refuses(capsys, path)
    assert _snapshot(path) == before
    with pytest.raises(StoreError, match="not a failfirst database"):
        Store.open_file(str(path), RealClock())
    assert _snapshot(path) == before


def test_failfirst_application_id_without_a_schema_version_is_refused(tmp_path, capsys):
    path = tmp_path / "half.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    before = _snapshot(path)
    assert "not a failfirst database" in _stress_refuses(capsys, path)
    assert _snapshot(path) == before


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_failfirst_database_is_refused_untouched(tmp_path, capsys, damage):
    path = tmp_path / "damaged.db"
    _failfirst_db(path, jobs=400)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    if damage == "garbage":
        data[page:3 * page] = b"\xa5" * (2 * page)
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    before = _snapshot(path)
    assert "damaged" in _stress_refuses(capsys, path)
    assert _snapshot(path) == before


def _hold_lock(path, mode: str) -> subprocess.Popen[str]:
    """Another process holds ``path`` locked until killed (at most 60 s)."""
    code = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        f"c.execute('{mode}')\n"
        "c.execute('INSERT INTO notes VALUES (1)')\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 20.0)  # bounded wait for the lock
    assert ready and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_locked_foreign_database_is_reported_as_locked(tmp_path, capsys):
    path = tmp_path / "busy.db"
    _foreign(path)
    holder = _hold_lock(path, "BEGIN EXCLUSIVE")
    try:
        before = _snapshot(path)
        err = _stress_refuses(capsys, path)
        assert "locked" in err and "not a SQLite database" not in err
        assert _snapshot(path) == before
    finally:
        holder.kill()
        holder.wait(timeout=10)


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_a_device_is_refused_and_nothing_appears_beside_it(capsys, device):
    beside = {s: os.path.exists(device + s) for s in SIDECARS}
    assert "not a regular file" in _stress_refuses(capsys, device)
    assert {s: os.path.exists(device + s) for s in SIDECARS} == beside


def test_a_fifo_is_refused_and_left_a_fifo(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert "not a regular file" in _stress_refuses(capsys, fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and sorted(os.listdir(tmp_path)) == ["pipe"]


def test_a_directory_is_refused(tmp_path, capsys):
    assert "is a directory" in _stress_refuses(capsys, tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_database_left_by_a_killed_run_is_read_through_its_wal(tmp_path):
    """A run SIGKILLed before its first checkpoint leaves its schema and jobs in the
    -wal file; the check must read them there (resume depends on it)."""
    path = tmp_path / "killed.db"
    code = (
        "import os, sys\n"
        "from failfirst.store.clock import RealClock\n"
        "from failfirst.processor.queue import JobQueue\n"
        "from failfirst.realrun.process import HANDLERS, JOB_TYPE\n"
        "from failfirst.store import Store\n"
        "q = JobQueue(Store.open_file(sys.argv[1], RealClock()), HANDLERS)\n"
        "q.enqueue_many([{'type': JOB_TYPE, 'payload': {'n': n}} for n in range(5)])\n"
        "os._exit(0)  # no close, no checkpoint\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
    assert (tmp_path / "killed.db-wal").stat().st_size > 0
    store = Store.open_file(str(path), RealClock(), create=False)
    assert len(store.jobs()) == 5
    store.close()


def test_an_empty_file_becomes_a_database(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    store = Store.open_file(str(path), RealClock())
    assert store.jobs() == []
    store.close()



_OPEN_AT_THE_BARRIER = """
import os, sys, time
from failfirst.store import Store, StoreError
from failfirst.store.clock import RealClock
ready, go, path = sys.argv[1:4]
open(ready, "w").close()
for _ in range(200_000):  # bounded: the parent releases both at once
    if os.path.exists(go):
        break
    time.sleep(0.0002)
try:
    Store.open_file(path, RealClock()).close()
except StoreError as exc:
    sys.exit(str(exc))
"""


def test_two_processes_creating_one_new_file_at_once_both_open_it(tmp_path):
    # Both find the file missing; both used to think they made it, and the one whose switch
    # to WAL met the other's lock removed the file under the other: both failed.
    for i in range(30):  # the race lands in a few percent of tries: many tries per test
        path, go = tmp_path / f"new{i}.db", tmp_path / f"go{i}"
        ready = [tmp_path / f"ready{i}-{k}" for k in range(2)]
        procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT_THE_BARRIER, str(r), str(go), str(path)],
                                  stderr=subprocess.PIPE, text=True) for r in ready]
        for _ in range(60_000):  # bounded: both children start within seconds
            if all(r.exists() for r in ready) or any(p.poll() is not None for p in procs):
                break
            select.select([], [], [], 0.002)  # real-time: waiting for real processes
        go.touch()
        results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
        assert [code for code, _ in results] == [0, 0], f"try {i}: {results}"
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
