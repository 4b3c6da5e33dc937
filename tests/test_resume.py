"""``failfirst resume`` finishes an interrupted stress run exactly once, and
``failfirst check`` judges any failfirst file read-only; both refuse bad input as
``stress`` does (one line, exit 2, the file untouched)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from failfirst.cli import main

VERDICT_KEYS = {"enqueued", "succeeded", "dead", "lost", "duplicate_effects", "kills", "restarts",
                "violations", "violation_examples", "db"}


def _count(db, sql: str) -> int:
    uri = f"file:{db}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5)
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0  # not created yet, or mid-creation


_SLOW_STRESS = """
import sys
from failfirst.realrun.driver import stress
stress(sys.argv[1], jobs=int(sys.argv[2]), workers=2, batch=int(sys.argv[3]))
"""


def _start_stress(db, jobs: int, batch: int) -> subprocess.Popen:
    """A stress run in a process of its own, slowed by small batches (a few hundred jobs a
    second), so that it is still going when a test looks at it."""
    return subprocess.Popen([sys.executable, "-c", _SLOW_STRESS, str(db), str(jobs), str(batch)],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _progress(proc, db, sql: str = "SELECT count(*) FROM jobs WHERE state = 'succeeded'",
              what: str = "its first succeeded job") -> None:
    """Wait for the event (``sql`` counts more than zero); the run's end first is a setup error."""
    deadline = time.monotonic() + 120  # real-time: bounded wait for real progress
    while _count(db, sql) == 0:
        if proc.poll() is not None:
            pytest.fail(f"setup: the stress run ended (exit {proc.returncode}) before {what}")
        assert time.monotonic() < deadline, f"the run made no progress: {what}"
        time.sleep(0.05)  # real-time: polling a real run


def _read(db, sql: str) -> int:
    """A count from a file whose processes are all gone: a read-write connection, which may
    recover the WAL index a killed writer left (a read-only one cannot), and fails loudly."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def _interrupted_run(tmp_path) -> str:
    """A stress run SIGKILLed (its parent: the workers die with it) while its workers hold
    leases, after some jobs succeeded."""
    db = tmp_path / "run.db"
    proc = _start_stress(db, jobs=20_000, batch=16)
    try:
        _progress(proc, db, "SELECT count(*) FROM jobs WHERE state = 'succeeded' AND "
                            "(SELECT count(*) FROM jobs WHERE state = 'leased') > 2",
                  "jobs succeeded and more leased")
    finally:
        proc.kill()
        proc.wait(timeout=10)
    return str(db)


def _cli(capsys, *argv) -> tuple[int, dict]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert err == "", err
    return code, json.loads(out)


def test_resume_finishes_an_interrupted_run_exactly_once(tmp_path, capsys):
    db = _interrupted_run(tmp_path)
    code, before = _cli(capsys, "check", "--db", db, "--json")
    assert code == 0 and VERDICT_KEYS <= set(before)
    # Interrupted: jobs left pending or leased are unfinished, not lost (resume finishes them).
    assert before["run"] == "interrupted" and before["unfinished"] > 0 and before["lost"] == 0
    code, done = _cli(capsys, "resume", "--db", db, "--workers", "2", "--json")
    assert code == 0 and done["resumed"] == before["unfinished"]
    assert done["lost"] == 0 and done["duplicate_effects"] == 0
    assert done["violations"] == {}, done["violation_examples"]
    assert done["succeeded"] + done["dead"] == done["enqueued"] == 20_000
    # From the file itself: one effect row per succeeded job, none for any other.
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT j.state, (SELECT count(*) FROM effects e WHERE e.job_id = j.id) "
                        "FROM jobs j").fetchall()
    conn.close()
    assert {(state, n) for state, n in rows} <= {("succeeded", 1), ("dead", 0)}
    code, after = _cli(capsys, "check", "--db", db, "--json")
    assert code == 0 and after["lost"] == 0 and after["violations"] == {}
    # Nothing left to do: resume judges and writes nothing.
    events = _count(db, "SELECT count(*) FROM events")
    code, again = _cli(capsys, "resume", "--db", db, "--json")
    assert code == 0 and again["resumed"] == 0 and _count(db, "SELECT count(*) FROM events") == events


def test_check_is_read_only(tmp_path, capsys):
    db = tmp_path / "done.db"
    assert main(["stress", "--db", str(db), "--jobs", "20", "--workers", "1"]) == 0
    capsys.readouterr()
    before = db.read_bytes(), sorted(os.listdir(tmp_path))
    code = main(["check", "--db", str(db)])
    out, _ = capsys.readouterr()
    assert code == 0 and "20 succeeded" in out and "every invariant holds" in out
    assert (db.read_bytes(), sorted(os.listdir(tmp_path))) == before


def test_check_names_what_a_guard_off_run_broke(tmp_path, capsys):
    """A hand-made file with one effect doubled: check reports it as stress would."""
    from failfirst.processor.queue import JobQueue
    from failfirst.realrun.process import HANDLERS, JOB_TYPE
    from failfirst.store import Store
    from failfirst.store.clock import RealClock

    db = str(tmp_path / "doubled.db")
    queue = JobQueue(Store.open_file(db, RealClock()), HANDLERS)
    queue.enqueue(JOB_TYPE, {"n": 1})
    lease = queue.claim("w1")
    queue.write_effects(lease, [("row", 1)], "w1")
    queue.write_effects(lease, [("row", 1)], "w1")  # a re-run without the commit boundary
    queue.complete(lease, "w1")
    queue.store.close()
    code, result = _cli(capsys, "check", "--db", db, "--json")
    assert code == 0 and result["duplicate_effects"] == 1 and result["violations"]["INV_001"] == 1


def _refuses(capsys, *argv) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("failfirst: error: ")
    return err


@pytest.mark.parametrize("command", ["resume", "check"])
def test_resume_and_check_refuse_bad_input_untouched(tmp_path, capsys, command):
    assert "no such database" in _refuses(capsys, command, "--db", str(tmp_path / "absent.db"))
    assert os.listdir(tmp_path) == []
    foreign = tmp_path / "other#1.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    before = foreign.read_bytes(), sorted(os.listdir(tmp_path))
    assert "not a failfirst database" in _refuses(capsys, command, "--db", str(foreign))
    assert (foreign.read_bytes(), sorted(os.listdir(tmp_path))) == before
    assert "not a regular file" in _refuses(capsys, command, "--db", "/dev/null")
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert "not a failfirst database" in _refuses(capsys, command, "--db", str(empty))
    assert empty.read_bytes() == b""


@pytest.mark.parametrize("argv", [["--workers", "0"], ["--workers", "-5"], ["--workers", "65"],
                                  ["--workers", "x"]])
def test_resume_refuses_bad_worker_counts(tmp_path, capsys, argv):
    _refuses(capsys, "resume", "--db", str(tmp_path / "x.db"), *argv)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("argv", [["check", "--db", ""], ["resume", "--db", ""],
                                  ["stress", "--db", "", "--jobs", "1", "--workers", "1"]])
def test_an_empty_path_is_one_line(capsys, argv):
    assert "empty path" in _refuses(capsys, *argv)


# -- check: one snapshot, read-only, whatever names the store -----------------------------


def _filled(path, jobs: int = 20) -> None:
    from failfirst.processor.queue import JobQueue
    from failfirst.realrun.process import HANDLERS, JOB_TYPE
    from failfirst.store import Store
    from failfirst.store.clock import RealClock

    store = Store.open_file(str(path), RealClock())
    JobQueue(store, HANDLERS).enqueue_batch(JOB_TYPE, [{"n": i} for i in range(jobs)])
    store.close()


def test_check_judges_one_snapshot_while_another_process_commits(tmp_path):
    """Another connection claims and completes every job between the judge's reads of the
    history and of the effects and states. Read in one snapshot, they agree: no violation.
    (Read in separate statements, every job was an INV_007: "the store says succeeded,
    the history says pending".)"""
    from failfirst.processor.queue import JobQueue
    from failfirst.realrun import verdict
    from failfirst.realrun.process import HANDLERS
    from failfirst.store import Store
    from failfirst.store.clock import RealClock

    db = tmp_path / "live.db"
    _filled(db)
    writer = JobQueue(Store.open_file(str(db), RealClock()), HANDLERS)
    written = []

    class ReadInterleaved(Store):
        def effects(self, job_id=None):
            if not written:  # once: after the judge read the history, before it reads the rest
                leases = writer.claim_batch("w1", 20)
                written.append(writer.commit_batch([(le, [("row", le.payload["n"])]) for le in leases],
                                                   "w1"))
            return super().effects(job_id)

    judged = ReadInterleaved.open_file(str(db), RealClock(), create=False, read_only=True)
    try:
        result = verdict.judge(judged)
    finally:
        judged.close()
        writer.store.close()
    assert written == [20], "the other process committed in the middle of the judgement"
    assert result["violations"] == {}, result["violation_examples"][:3]
    assert result["enqueued"] == 20 and result["succeeded"] == 0  # the instant before the commit
    assert verdict.judge(Store.open_file(str(db), RealClock(), create=False, read_only=True))[
        "succeeded"] == 20


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_check_of_a_live_run_says_in_progress_and_no_violation(tmp_path, capsys):
    db = tmp_path / "live.db"
    proc = _start_stress(db, jobs=40_000, batch=1)  # a minute or more of work: live throughout
    try:
        _progress(proc, db)
        # A look while the workers commit; then the run is paused (SIGSTOP to its whole
        # process group: still live, its lock and leases held), so that the next looks are
        # of a live run however slowly a loaded machine makes them.
        looks = []
        for paused in (False, True):
            if proc.poll() is not None:
                pytest.fail(f"setup: the stress run ended (exit {proc.returncode}) before the look")
            if paused:
                os.killpg(proc.pid, signal.SIGSTOP)
            code, result = _cli(capsys, "check", "--db", str(db), "--json")
            assert code == 0 and result["run"] == "live", result
            assert result["violations"] == {}, result["violation_examples"][:3]
            assert result["lost"] == 0 and result["unfinished"] == 0
            looks.append(result["in_progress"])
        assert looks[-1] > 0
        code = main(["check", "--db", str(db)])
        out = capsys.readouterr().out
        assert "a live run holds it" in out and "in progress" in out and "lost" in out
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGCONT)
        _stop(proc)


def _version_1(path) -> None:
    _filled(path, jobs=3)
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX outbox_unpublished")
    conn.execute("DROP TABLE outbox")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("naming", ["--db", "--store sqlite:"])
def test_check_never_migrates_an_older_file(tmp_path, capsys, naming):
    """Schema version 1 is judged as it is, whatever names the file: it stays version 1,
    byte for byte (check --store sqlite:PATH once migrated it)."""
    path = tmp_path / "v1.db"
    _version_1(path)
    before = path.read_bytes(), sorted(os.listdir(tmp_path))
    flag, prefix = (naming.split() + [""])[:2]
    code, result = _cli(capsys, "check", flag, prefix + str(path), "--json")
    assert code == 0 and result["enqueued"] == 3 and result["violations"] == {}
    assert (path.read_bytes(), sorted(os.listdir(tmp_path))) == before
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()


# -- resume: never over a live run; one crash per dead worker -----------------------------


def test_resume_refuses_a_store_a_live_run_holds(tmp_path, capsys):
    db = tmp_path / "live.db"
    proc = _start_stress(db, jobs=40_000, batch=1)
    try:
        _progress(proc, db)
        err = _refuses(capsys, "resume", "--db", str(db))
        assert "a live run holds it" in err and "pid" in err
        assert _count(db, "SELECT count(*) FROM events WHERE kind IN ('crash', 'resume')") == 0
    finally:
        _stop(proc)


def test_resume_after_a_crash_records_one_crash_per_dead_worker(tmp_path, capsys):
    db = _interrupted_run(tmp_path)
    owners = _read(db, "SELECT count(DISTINCT lease_owner) FROM jobs WHERE state = 'leased'")
    leased = _read(db, "SELECT count(*) FROM jobs WHERE state = 'leased'")
    assert 1 <= owners <= 2 and leased > owners, (owners, leased)  # batches: many leases each
    code, done = _cli(capsys, "resume", "--db", db, "--json")
    assert code == 0 and done["lost"] == 0 and done["violations"] == {}
    crashes = _read(db, "SELECT count(*) FROM events WHERE kind = 'crash'")
    assert crashes == owners == done["kills"], (crashes, owners, leased)


_AT_ONCE = """
import os, sys, time
from failfirst.cli import main
ready, go, db = sys.argv[1:4]
open(ready, "w").close()
deadline = time.monotonic() + 120
while not os.path.exists(go):  # the barrier: both processes call stress at the same instant
    if time.monotonic() > deadline:
        sys.exit(99)
    time.sleep(0.0005)
sys.exit(main(["stress", "--store", db, "--jobs", "3000", "--workers", "1", "--json"]))
"""


def _two_at_once(tmp_path, store: str) -> list[subprocess.CompletedProcess]:
    """Two ``failfirst stress`` processes released by one barrier onto one new store."""
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _AT_ONCE, str(tmp_path / f"ready{i}"), str(go), store],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    deadline = time.monotonic() + 120  # real-time: bounded wait for both to be ready
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)  # real-time
    go.touch()
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=600), *p.communicate()) for p in procs]


def test_two_stress_runs_at_the_same_instant_one_is_accepted(tmp_path):
    db = tmp_path / "new.db"
    done = _two_at_once(tmp_path, f"sqlite:{db}")
    codes = sorted(d.returncode for d in done)
    assert codes == [0, 2], "\n".join(f"exit {d.returncode}: {d.stderr}" for d in done)
    loser = next(d for d in done if d.returncode == 2)
    assert loser.stdout == "" and loser.stderr.count("\n") == 1, loser.stderr
    # Refused as a store that holds a run, or one another process has locked right now.
    assert any(why in loser.stderr for why in ("already holds", "live run", "locked by another")), \
        loser.stderr
    winner = json.loads(next(d for d in done if d.returncode == 0).stdout)
    assert winner["enqueued"] == winner["succeeded"] == 3000 and winner["violations"] == {}
    assert _count(db, "SELECT count(*) FROM jobs") == 3000
    assert _count(db, "SELECT count(*) FROM events WHERE kind = 'start'") == 1


# -- an interrupted enqueue leaves nothing, and an older one is accounted for -------------


def test_a_stress_interrupted_while_enqueueing_leaves_no_part_of_its_run(tmp_path, capsys):
    db = tmp_path / "big.db"
    proc = subprocess.Popen([sys.executable, "-m", "failfirst.cli", "stress", "--db", str(db),
                             "--jobs", "1000000", "--workers", "1"], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300  # real-time: bounded wait for the enqueue to be under way
        wal = tmp_path / "big.db-wal"
        while not (wal.exists() and wal.stat().st_size > 8_000_000):  # the claim's pages spill
            if proc.poll() is not None:
                pytest.fail(f"setup: the run ended (exit {proc.returncode}) before it was interrupted")
            assert time.monotonic() < deadline, "the enqueue never got under way"
            time.sleep(0.02)  # real-time: polling a real process
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 130 and out == "" and err.count("\n") == 1, err
    assert "nothing was enqueued" in err and "Traceback" not in err
    code, result = _cli(capsys, "check", "--db", str(db), "--json")
    assert code == 0 and result["enqueued"] == 0 and result["run"] == "none", result
    assert result["never_enqueued"] == 0 and result["lost"] == 0


def test_check_counts_jobs_an_older_run_never_enqueued(tmp_path, capsys):
    """A store an older failfirst left mid-enqueue (batches committed one by one): its start
    event planned 100 jobs, 60 are there. check says 40 were never enqueued."""
    from failfirst.store import Store
    from failfirst.store.clock import RealClock

    db = tmp_path / "old.db"
    store = Store.open_file(str(db), RealClock())
    with store.transaction():
        store.append_event(actor="stress", job=None, kind="start", jobs=100, workers=2)
    store.close()
    _filled(db, jobs=60)
    code, result = _cli(capsys, "check", "--db", str(db), "--json")
    assert code == 0 and result["never_enqueued"] == 40 and result["enqueued"] == 60
    assert result["run"] == "interrupted" and result["unfinished"] == 60 and result["lost"] == 0
    main(["check", "--db", str(db)])
    assert "never enqueued: 40" in capsys.readouterr().out


# -- a malformed lease: a finding at once ---------------------------------------------------


@pytest.mark.parametrize(("expiry", "why"), [("NULL", "NULL"), ("1e12", "from now")])
def test_resume_refuses_a_malformed_lease_at_once(tmp_path, capsys, expiry, why):
    from failfirst.processor.queue import JobQueue
    from failfirst.realrun.process import HANDLERS, JOB_TYPE
    from failfirst.store import Store
    from failfirst.store.clock import RealClock

    db = tmp_path / "odd.db"
    queue = JobQueue(Store.open_file(str(db), RealClock()), HANDLERS)
    queue.enqueue_batch(JOB_TYPE, [{"n": i} for i in range(3)])
    assert queue.claim("w1") is not None
    queue.store.close()
    conn = sqlite3.connect(db)
    conn.execute(f"UPDATE jobs SET lease_expires_s = {expiry} WHERE state = 'leased'")
    conn.commit()
    conn.close()
    events = _count(db, "SELECT count(*) FROM events")
    code = main(["resume", "--db", str(db)])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert "resume of" in err and "malformed lease" in err and why in err and "job 1" in err
    assert _count(db, "SELECT count(*) FROM events") == events  # nothing was written
    code, result = _cli(capsys, "check", "--db", str(db), "--json")
    assert result["malformed_leases"] == 1 and result["malformed_lease_examples"][0]["job"] == 1


def test_a_resume_that_times_out_says_resume(tmp_path):
    from failfirst.realrun import driver

    db = _interrupted_run(tmp_path)
    with pytest.raises(driver.RunBroken, match=r"^resume timed out .* failfirst resume --db "):
        driver.resume(db, workers=1, timeout_s=0.05)
