"""Real runs: worker processes on a SQLite file, SIGKILLed; batched claims and commits.

The stress runs here are short (a few hundred to two thousand jobs, a few seconds);
``make stress`` runs the long one. Nothing here asserts a duration: figures come
from ``make bench``.
"""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from failfirst.cli import main
from failfirst.processor.queue import JobQueue, QueueConfig
from failfirst.processor.transitions import StaleToken, apply_many
from failfirst.processor.worker import Idle, Point, WorkerConfig, worker_loop
from failfirst.proofs import checkers
from failfirst.realrun.driver import stress
from failfirst.realrun.process import HANDLERS, JOB_TYPE, drive
from failfirst.store import APPLICATION_ID, SCHEMA_VERSION, Store, StoreError
from failfirst.store.clock import RealClock, SimClock

STRESS_KEYS = {"enqueued", "succeeded", "dead", "lost", "duplicate_effects", "kills",
               "elapsed_s", "jobs_per_s", "db"}


def _effect_rows_per_job(db: str) -> dict[int, int]:
    """Straight from the file with sqlite3: effect rows of every job that has any."""
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT job_id, count(*) FROM effects GROUP BY job_id").fetchall())
    finally:
        conn.close()


def _effect_rows_per_succeeded_job(db: str) -> dict[int, int]:
    """Straight from the file with sqlite3: effect rows of every succeeded job."""
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute(
            "SELECT j.id, (SELECT count(*) FROM effects e WHERE e.job_id = j.id) "
            "FROM jobs j WHERE j.state = 'succeeded'").fetchall())
    finally:
        conn.close()


# -- stress: real processes, real SIGKILLs ---------------------------------------------


def test_short_stress_with_kills_keeps_every_invariant(tmp_path, capsys):
    db = str(tmp_path / "stress.db")
    result = stress(db=db, jobs=400, workers=2, kill_rate=5.0, guard=True, seed=1,
                    batch=16, lease_s=1.0, heartbeat_s=0.25)
    assert STRESS_KEYS <= set(result)
    assert result["kills"] > 0
    assert result["lost"] == 0 and result["duplicate_effects"] == 0
    assert result["violations"] == {}, result["violation_examples"]
    assert result["enqueued"] == 400 and result["succeeded"] + result["dead"] == 400
    rows = _effect_rows_per_succeeded_job(db)
    assert len(rows) == result["succeeded"] and set(rows.values()) == {1}
    conn = sqlite3.connect(db)
    states = dict(conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
    crashes = conn.execute("SELECT count(*) FROM events WHERE kind = 'crash'").fetchone()[0]
    conn.close()
    assert set(states) <= {"succeeded", "dead"} and crashes == result["kills"]


def _crash_events(db: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM events WHERE kind = 'crash'").fetchone()[0]
    finally:
        conn.close()


def test_planned_kills_are_exactly_as_many_as_asked(tmp_path):
    """``kills`` plans SIGKILLs by progress, not by the clock: the count a gate asks for is
    the count it gets on a fast machine and a slow one (a rate gave 8 where 10 were asked
    on a fast CI machine, whose 10,000 jobs took under 3 s)."""
    db = str(tmp_path / "planned.db")
    # Work must remain when a kill is due: batches of 4 make 3,000 jobs last a second or
    # two (600 jobs in batches of 16 were done, on a fast machine, before the second kill).
    result = stress(db=db, jobs=3000, workers=2, kills=6, guard=True, seed=2,
                    batch=4, lease_s=1.0, heartbeat_s=0.25)
    assert result["kills"] == 6 and result["restarts"] == 6 and result["planned_kills"] == 6
    assert 0 <= result["struck_holding_job"] <= 6
    assert result["lost"] == 0 and result["duplicate_effects"] == 0
    assert result["violations"] == {}, result["violation_examples"]
    assert _crash_events(db) == 6


def test_kills_owed_when_the_work_is_done_still_land(tmp_path):
    """A worker that claims every job in one batch finishes before the parent strikes
    again (as a parent starved by a loaded machine sees it): the kills it still owes land
    on idle workers before the run ends, and the result says how many found a job held."""
    db = str(tmp_path / "owed.db")
    result = stress(db=db, jobs=5, workers=1, kills=5, guard=True, seed=1)
    assert result["kills"] == 5 and result["restarts"] == 5
    assert result["struck_holding_job"] < 5  # some kills came after the work was done
    assert result["lost"] == 0 and result["duplicate_effects"] == 0
    assert result["violations"] == {}, result["violation_examples"]
    assert _crash_events(db) == 5


def test_stress_cli_json_contract(tmp_path, capsys):
    db = str(tmp_path / "cli.db")
    code = main(["stress", "--db", db, "--jobs", "50", "--workers", "1", "--json"])
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert code == 0 and err == ""
    assert STRESS_KEYS <= set(result)
    assert result["db"] == os.path.abspath(db) and result["kills"] == 0
    assert result["lost"] == 0 and result["duplicate_effects"] == 0 and result["succeeded"] == 50
    assert main(["stress", "--db", str(tmp_path / "text.db"), "--jobs", "5", "--workers", "1"]) == 0
    assert "every invariant holds" in capsys.readouterr().out


def test_planned_kills_say_what_is_true(tmp_path, capsys):
    """Planned kills have no rate: the text says how many were planned, the JSON's
    ``kill_rate`` is null (it once said "kill rate 0/s" beside "10 SIGKILLs")."""
    db = tmp_path / "planned.db"
    assert main(["stress", "--db", str(db), "--jobs", "3000", "--workers", "2", "--kills", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 SIGKILLs planned by progress" in out and "kill rate" not in out and "0/s" not in out
    assert main(["check", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kills"] == 3
    assert main(["stress", "--db", str(tmp_path / "j.db"), "--jobs", "3000", "--workers", "2",
                 "--kills", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kill_rate"] is None and result["planned_kills"] == 2 and result["kills"] == 2


def test_guard_off_negative_control_duplicates_effects(tmp_path):
    """Without the idempotent commit boundary a kill between a job's effect and its
    completion re-runs the effect. Probabilistic in real mode, made reliable by the
    parameters: ten kills planned at seeded points of the run's progress (never by the
    clock: at 10 kills a second, a fast machine once drained the 2,000 jobs after 2 kills
    and no duplicate), each aimed at a worker that holds leases; with batches of 16 such
    a worker spends most of its time between its first effect commit and its last
    completion. Measured: 55 to 91 duplicate effects in each of 5 runs.

    What the run cannot promise under CPU load is *which* jobs double, or that a doubled
    job succeeds (under many kills one may exhaust its attempts and end dead with two
    rows), so the checker is compared with the table over every job, not only the
    succeeded ones (the old comparison failed 1 run in 6 under load: 65 == 58)."""
    db = str(tmp_path / "off.db")
    # The generous timeout bounds a run on a loaded machine.
    result = stress(db=db, jobs=2000, workers=2, kills=10, guard=False, seed=3,
                    batch=16, lease_s=1.0, heartbeat_s=0.25, timeout_s=480.0)
    if result["kills"] < 10:
        pytest.fail(f"setup: {result['kills']} of 10 kills struck: the control proves nothing")
    assert result["lost"] == 0
    assert result["duplicate_effects"] > 0
    # The checker names each doubled (job, part) once; the table counts every extra row.
    rows = _effect_rows_per_job(db)
    doubled = [e for e in result["violation_examples"]
               if e["invariant"] == "INV_001" and "applied" in e["detail"]]
    assert doubled, result["violation_examples"]
    assert result["violations"].get("INV_001") == sum(1 for n in rows.values() if n > 1)
    assert result["duplicate_effects"] == sum(n - 1 for n in rows.values() if n > 1)


# -- bad input: exit 2, one line, the file untouched -----------------------------------


def _refused(capsys, db: str, *extra: str) -> str:
    code = main(["stress", "--db", db, "--jobs", "10", "--workers", "1", *extra])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("failfirst: error: ") and err.count("\n") == 1
    return err


def _snapshot(path) -> tuple[bytes, list[str]]:
    return path.read_bytes(), sorted(os.listdir(path.parent))


def test_missing_directory_is_refused(tmp_path, capsys):
    err = _refused(capsys, str(tmp_path / "no" / "such" / "x.db"))
    assert "does not exist" in err and os.listdir(tmp_path) == []


def test_unwritable_location_is_refused(capsys):
    # /proc refuses new files even to root, for whom permission bits do not count.
    _refused(capsys, "/proc/failfirst-stress.db")
    assert not os.path.exists("/proc/failfirst-stress.db")


def test_directory_as_database_is_refused(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    _refused(capsys, str(tmp_path / "d"))
    assert os.listdir(tmp_path / "d") == []


def test_foreign_sqlite_file_is_refused_untouched(tmp_path, capsys):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()
    before = _snapshot(path)
    assert "not a failfirst database" in _refused(capsys, str(path))
    assert _snapshot(path) == before


def test_non_sqlite_file_is_refused_untouched(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 100)
    before = _snapshot(path)
    assert "not a SQLite database" in _refused(capsys, str(path))
    assert _snapshot(path) == before


def test_newer_schema_is_refused_untouched(tmp_path, capsys):
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = _snapshot(path)
    assert "newer" in _refused(capsys, str(path))
    assert _snapshot(path) == before


def test_database_with_jobs_is_refused_untouched(tmp_path, capsys):
    db = tmp_path / "used.db"
    stress(db=str(db), jobs=5, workers=1)
    before = _snapshot(db)
    assert "already holds 5 jobs" in _refused(capsys, str(db))
    assert _snapshot(db) == before


@pytest.mark.parametrize("argv", [
    ["--jobs", "0"], ["--jobs", "x"], ["--jobs", "2000000"], ["--workers", "0"],
    ["--workers", "65"], ["--kill-rate", "-1"], ["--kill-rate", "nan"], ["--kill-rate", "1000"],
    ["--seed", "-1"], ["--guard", "maybe"], ["--kills", "-1"], ["--kills", "11"],
    ["--kills", "2", "--kill-rate", "1"],
])
def test_bad_numbers_are_refused_before_any_file_exists(tmp_path, capsys, argv):
    db = tmp_path / "x.db"
    base = {"--jobs": "10", "--workers": "1"}
    args = dict(base, **dict(zip(argv[::2], argv[1::2], strict=True)))
    code = main(["stress", "--db", str(db), *[a for kv in args.items() for a in kv]])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and not db.exists()


# -- a file shared by processes: nothing may be memoised per connection ----------------


def test_a_file_store_sees_other_connections_writes(tmp_path):
    path = str(tmp_path / "shared.db")
    reader = Store.open_file(path, RealClock())
    writer = JobQueue(Store.open_file(path, RealClock()), HANDLERS)
    assert reader.next_run_at_s() is None and reader.next_lease_expiry_s() is None
    writer.enqueue(JOB_TYPE, {"n": 1})
    assert reader.next_run_at_s() is not None
    lease = writer.claim("w1")
    assert lease is not None
    assert reader.next_run_at_s() is None and reader.next_lease_expiry_s() is not None


def test_open_file_without_create_refuses_a_missing_file(tmp_path):
    with pytest.raises(StoreError, match="no such database"):
        Store.open_file(str(tmp_path / "absent.db"), RealClock(), create=False)
    assert os.listdir(tmp_path) == []


# -- batches: the same history as one job at a time ------------------------------------


def _normalised(events: list[dict]) -> list[dict]:
    """Events without what batching legitimately changes: time, sequence, transaction."""
    return [{k: v for k, v in e.items() if k not in ("seq", "t", "tx")} for e in events]


def _queue(cls=JobQueue, config: QueueConfig | None = None) -> JobQueue:
    return cls(Store.memory(SimClock()), HANDLERS, config=config)


def test_batch_claim_and_commit_equal_one_at_a_time():
    single, batched = _queue(), _queue()
    for q in (single, batched):
        q.enqueue_batch(JOB_TYPE, [{"n": n} for n in range(5)])
    leases = [single.claim("w1") for _ in range(5)]
    for lease in leases:
        single.commit(lease, [("row", lease.payload["n"])], "w1")
    claimed = batched.claim_batch("w1", 5)
    assert [(lease.job_id, lease.token) for lease in claimed] == [
        (lease.job_id, lease.token) for lease in leases]
    assert batched.commit_batch([(lease, [("row", lease.payload["n"])]) for lease in claimed],
                                "w1") == 5
    # The same events, job by job; batching only regroups them into two transactions.
    key = lambda e: (e["job"] or 0, e["seq"])  # noqa: E731
    assert sorted(_normalised(single.store.events()), key=lambda e: (e["job"] or 0)) == sorted(
        _normalised(batched.store.events()), key=lambda e: (e["job"] or 0))
    assert [e["kind"] for e in sorted(batched.store.events(), key=key) if e["job"] == 1] == [
        "enqueue", "claim", "effect", "complete"]
    for q in (single, batched):
        assert [j.state for j in q.store.jobs()] == ["succeeded"] * 5
        assert checkers.check(q.store.events(), q.store) == []
    assert single.store.effects() == batched.store.effects()
    assert single.store.attempts() == batched.store.attempts()


def test_batch_commit_with_a_stale_lease_commits_the_live_ones_and_refuses_it():
    queue = _queue(config=QueueConfig(lease_s=2.0, heartbeat_s=0.5))
    queue.enqueue_batch(JOB_TYPE, [{"n": 1}, {"n": 2}])
    first, second = queue.claim_batch("w1", 2)
    # The second lease expires and another worker takes the job over.
    queue.store.clock.advance_to(3.0)
    assert queue.reap("reaper") == 2
    retaken = queue.claim_batch("w2", 2)
    assert [lease.job_id for lease in retaken] == [1, 2]
    assert queue.commit(retaken[0], [("row", 1)], "w2")
    # w1 comes back from its pause: its batch is refused, job by job, and nothing doubles.
    assert queue.commit_batch([(first, [("row", 1)]), (second, [("row", 2)])], "w1") == 0
    assert queue.commit_batch([(retaken[1], [("row", 2)])], "w2") == 1
    refused = [e for e in queue.store.events() if e["kind"] == "refused"]
    assert [(e["actor"], e["job"]) for e in refused] == [("w1", 1), ("w1", 2)]
    assert sorted(job for job, *_ in queue.store.effects()) == [1, 2]
    assert checkers.check(queue.store.events(), queue.store) == []


def test_apply_many_refuses_all_or_nothing():
    queue = _queue()
    queue.enqueue_batch(JOB_TYPE, [{"n": 1}, {"n": 2}])
    before = queue.store.events()
    with pytest.raises(StaleToken), queue.store.transaction():
        apply_many(queue.store, "claim", [(1, 0, (), {}), (2, 7, (), {})], actor="w1")
    assert queue.store.events() == before
    assert [j.state for j in queue.store.jobs()] == ["pending", "pending"]


def test_batched_worker_loop_drains_the_queue_under_a_simple_driver():
    queue = _queue()
    queue.enqueue_batch(JOB_TYPE, [{"n": n} for n in range(50)])
    loop = worker_loop("w1", queue, WorkerConfig(work_s=0.0, batch=8))
    for _ in range(200):
        step = next(loop)
        if isinstance(step, Idle):
            break
        assert isinstance(step, Point)
    assert queue.store.counts_by_state() == {"succeeded": 50}
    assert checkers.check(queue.store.events(), queue.store) == []


def test_enqueue_batch_validates_before_writing():
    queue = _queue()
    with pytest.raises(ValueError, match="^payload:"):
        queue.enqueue_batch(JOB_TYPE, [{"n": 1}, ["not", "an", "object"]])
    assert queue.store.jobs() == []


def test_drive_sleeps_as_asked_and_stops_at_its_deadline():
    slept: list[float] = []
    now = [0.0]

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    def loop():
        yield Point("a", None, 0.5)
        yield Idle(lambda: None)  # nothing to do: poll
        yield Idle(lambda: now[0] + 0.01)  # a wake-up soon
        while True:
            yield Point("b", None, 1.0)

    reason = drive(loop(), idle_poll_s=0.05, deadline_s=3.0, now_s=lambda: now[0], sleep=sleep)
    assert reason == "deadline"
    assert slept[:3] == pytest.approx([0.5, 0.05, 0.01]) and now[0] >= 3.0
