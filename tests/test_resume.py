"""``failfirst resume`` finishes an interrupted stress run exactly once, and
``failfirst check`` judges any failfirst file read-only; both refuse bad input as
``stress`` does (one line, exit 2, the file untouched)."""

from __future__ import annotations

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


def _interrupted_run(tmp_path) -> str:
    """A stress run SIGKILLed (parent and all) while its workers hold leases."""
    db = tmp_path / "run.db"
    proc = subprocess.Popen([sys.executable, "-m", "failfirst.cli", "stress", "--db", str(db),
                             "--jobs", "5000", "--workers", "2"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120  # real-time: bounded wait for real progress
        while _count(db, "SELECT count(*) FROM jobs WHERE state = 'succeeded'") == 0:
            assert time.monotonic() < deadline and proc.poll() is None, "the run made no progress"
            time.sleep(0.05)  # real-time: polling a real run
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
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
    assert done["succeeded"] + done["dead"] == done["enqueued"] == 5000
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
