"""``failfirst stress``: real worker processes on a SQLite file, killed with SIGKILL.

The simulator proves the design; this shows that the same code holds with real
processes, a real file and real crashes. :func:`stress`

1. enqueues ``jobs`` jobs whose handler writes one row in ``effects``;
2. starts ``workers`` worker processes, each driving the simulator's own worker
   loop with the wall clock (:mod:`failfirst.realrun.process`), and drives the reaper's
   loop itself between its looks at the file (a process of its own would only
   compete with the workers for the CPU);
3. kills a random worker with SIGKILL and restarts it, either ``kills`` times at
   seeded points of the run's progress (after so many jobs were claimed: the same
   count on a fast machine and a slow one, which is what a gate needs) or at
   ``kill_rate`` per second at most (two kills without a job finished between them
   are then at least a lease apart, so on a machine too slow for the rate the rate
   drops and the run still ends). The victim is drawn among the workers that hold a
   lease at that moment, or any worker when none is seen holding one for a few
   polls. Its open transaction dies with it; its leases expire and the reaper hands
   the jobs back;
4. when every job is terminal, stops everything and judges the file: every
   invariant checker runs on the history in ``events`` and on the final tables, and
   ``lost`` and ``duplicate_effects`` are counted from the tables themselves.

The randomness of a real run (which worker dies, and when) comes from
``random.Random(seed)``; the operating system's scheduling does not, so a seed
names a kill schedule, not an exact history.

Every wait is bounded: an overall timeout (which raises :class:`StressError`), a
bound on kills and restarts, and a deadline that every child process enforces on
itself, so nothing outlives a broken run. A child also dies with its parent, however
the parent dies (:func:`failfirst.realrun.process.die_with_parent`), and the children's logs
are anonymous files, so a killed run leaves no temporary directory behind.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

from failfirst.processor.transitions import TERMINAL_STATES
from failfirst.processor.worker import ActorLoop, Point, reaper_loop
from failfirst.proofs import checkers
from failfirst.realrun.process import JOB_TYPE, STORE_URL_ENV, RealConfig, open_queue, queue_on
from failfirst.store import Store, StoreError, open_store, parse_store_url
from failfirst.store.clock import RealClock
from failfirst.store.sqlite import shown_path

MAX_JOBS = 1_000_000
MAX_WORKERS = 64
MAX_KILL_RATE = 100.0
#: Jobs per claim and per commit transaction in real runs (see failfirst.processor.queue).
DEFAULT_BATCH = 256
#: How often the parent looks at the file, its children and the kill schedule.
POLL_S = 0.01
FIRST_KILL_POLL_S = 0.002
#: How long a due kill waits for a worker that holds a lease before it takes any worker.
KILL_PATIENCE_S = 0.05
#: A kill or restart beyond these bounds means the run is broken, not slow.
MAX_KILLS = 10_000
#: ``--kills``: planned kills, each at its own point of progress.
MAX_PLANNED_KILLS = 1_000
#: Planned kills land while this share of the jobs is claimed: late enough that workers
#: run, early enough that the run cannot end before the last one.
KILL_POINTS_SHARE = (0.02, 0.8)
#: Violations listed in the result (all are counted).
MAX_LISTED_VIOLATIONS = 20


class StressError(RuntimeError):
    """The run itself broke (timeout, a child that died on its own, too many restarts)."""


class StressInputError(ValueError):
    """Bad input to a real run (a number out of range): refused before anything is written."""


@dataclass
class _Child:
    slot: str
    role: str
    proc: subprocess.Popen[bytes]
    #: An anonymous file (already unlinked): nothing is left on disk however we die.
    log: IO[bytes]
    incarnation: int = 1

    def log_tail(self) -> str:
        self.log.seek(0)
        return self.log.read()[-2000:].decode("utf-8", errors="replace").strip()

    @property
    def name(self) -> str:
        return _actor_name(self.slot, self.incarnation)


def _actor_name(slot: str, incarnation: int) -> str:
    """The actor's name, the lease owner: a restarted worker is a new process with a new
    name (``w1``, then ``w1#2``), so the leases of the dead one are told apart."""
    return slot if incarnation == 1 else f"{slot}#{incarnation}"


@dataclass
class _Run:
    db: str
    guard: bool
    config: RealConfig
    children: dict[str, _Child] = field(default_factory=dict)

    def spawn(self, slot: str, role: str, incarnation: int = 1) -> _Child:
        name = _actor_name(slot, incarnation)
        log = tempfile.TemporaryFile(prefix="failfirst-stress-")  # unlinked at once
        # A store URL goes through the environment: it may hold a password.
        is_url = _is_store_url(self.db)
        env = {**os.environ, STORE_URL_ENV: self.db} if is_url else None
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "failfirst.realrun.process", role, "--db",
                 "env" if is_url else self.db, "--name", name,
                 "--guard", "on" if self.guard else "off", "--parent-pid", str(os.getpid()),
                 *self.config.argv()],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        except BaseException:
            log.close()
            raise
        old = self.children.get(slot)
        if old is not None:
            old.log.close()
        child = _Child(slot, role, proc, log, incarnation)
        self.children[slot] = child
        return child

    def check_alive(self) -> None:
        """A child that exits on its own is a bug in the run: fail loudly with its log."""
        for child in self.children.values():
            code = child.proc.poll()
            if code is not None:
                tail = child.log_tail()
                raise StressError(f"{child.name} ({child.role}) exited on its own with code {code}"
                                  + (f":\n{tail}" if tail else ""))

    def stop_all(self) -> None:
        procs = [c.proc for c in self.children.values()]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 5.0  # real-time: bounded wait for children
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01))  # real-time: bounded
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)  # real-time: SIGKILL cannot be refused; bounded anyway
        for child in self.children.values():
            child.log.close()


class _Stepper:
    """Drives an actor loop one step at a time without blocking: the parent's reaper.
    The same waits as :func:`failfirst.realrun.process.drive`, kept as a ready time."""

    def __init__(self, loop: ActorLoop, idle_poll_s: float) -> None:
        self.loop = loop
        self.idle_poll_s = idle_poll_s
        self.ready_at_s = -math.inf

    def step(self, now_s: float) -> None:
        if now_s < self.ready_at_s:
            return
        step = next(self.loop)
        if isinstance(step, Point):
            self.ready_at_s = now_s + step.wait_s
        else:
            wake_s = step.wake()
            wait_s = self.idle_poll_s if wake_s is None else wake_s - now_s
            self.ready_at_s = now_s + min(max(wait_s, 0.001), self.idle_poll_s)


def _validate(jobs: int, workers: int, kill_rate: float, batch: int, timeout_s: float | None,
              kills: int = 0) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise StressInputError(f"--jobs: must be an integer in 1..{MAX_JOBS}, got {jobs!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise StressInputError(f"--workers: must be an integer in 1..{MAX_WORKERS}, got {workers!r}")
    if not isinstance(kill_rate, int | float) or not 0 <= kill_rate <= MAX_KILL_RATE:
        raise StressInputError(f"--kill-rate: must be a number in 0..{MAX_KILL_RATE:g}, got {kill_rate!r}")
    if isinstance(kills, bool) or not isinstance(kills, int) or not 0 <= kills <= MAX_PLANNED_KILLS:
        raise StressInputError(f"--kills: must be an integer in 0..{MAX_PLANNED_KILLS}, got {kills!r}")
    if kills and kill_rate:
        raise StressInputError("--kills and --kill-rate: choose one (a kill count or a rate)")
    if kills > jobs:
        raise StressInputError(f"--kills: at most one kill per job ({jobs}), got {kills}")
    if not isinstance(batch, int) or not 1 <= batch <= 1000:
        raise StressInputError(f"batch: must be an integer in 1..1000, got {batch!r}")
    if timeout_s is not None and not 0 < timeout_s < math.inf:
        raise StressInputError(f"timeout_s: must be a finite number > 0, got {timeout_s!r}")


def default_timeout_s(jobs: int) -> float:
    """Generous: 2 minutes plus 10 ms a job. A run that needs more is broken, not slow."""
    return 120.0 + jobs * 0.01


def stress(
    db: str,
    jobs: int,
    workers: int,
    kill_rate: float = 0.0,
    guard: bool = True,
    seed: int = 0,
    *,
    batch: int = DEFAULT_BATCH,
    lease_s: float = 2.0,
    heartbeat_s: float = 0.5,
    timeout_s: float | None = None,
    kills: int = 0,
) -> dict[str, Any]:
    """Run the stress experiment on the SQLite file ``db``; return the JSON result.

    ``kills`` asks for exactly that many SIGKILLs at seeded points of progress;
    ``kill_rate`` for SIGKILLs at a rate per second (at most one of them).

    Bad input (numbers out of range, a path that cannot hold a database, a file
    that is not a failfirst database or is of a newer schema, a database that
    already holds jobs) raises StressInputError or StoreError before anything is written.
    """
    _validate(jobs, workers, kill_rate, batch, timeout_s, kills)
    timeout_s = default_timeout_s(jobs) if timeout_s is None else timeout_s
    config = RealConfig(lease_s=lease_s, heartbeat_s=heartbeat_s, batch=batch,
                        max_runtime_s=timeout_s + 30.0)
    if _is_store_url(db):  # sqlite:PATH or postgresql://...: opened (and refused) by the store
        shown = parse_store_url(db).redacted
        probe = open_store(db, None, create=True)  # refuses foreign or newer databases
        held = sum(probe.counts_by_state().values())
        probe.close()
        if held:
            raise StoreError(f"{shown}: already holds {held} jobs; stress needs a new or empty "
                             "database")
    else:
        db = os.path.abspath(db)
        shown = shown_path(db)
        if os.path.exists(db) and os.path.getsize(db) > 0:
            probe = Store.open_file(db, RealClock(), create=False)  # refuses foreign or newer files
            held = sum(probe.counts_by_state().values())
            probe.close()
            if held:
                raise StoreError(f"{shown}: already holds {held} jobs; stress needs a new or empty "
                                 "database (remove the file first)")
    queue = open_queue(db, guard, config, create=True)
    store = queue.store
    rng = random.Random(seed)
    try:
        return _run(queue, store, rng, db=db, shown=shown, jobs=jobs, workers=workers, kill_rate=kill_rate,
                    guard=guard, seed=seed, config=config, timeout_s=timeout_s, planned_kills=kills)
    finally:
        store.close()


def _is_store_url(db: str) -> bool:
    return db.startswith(("sqlite:", "postgresql://", "postgres://"))


def _shown(db: str) -> str:
    """How a store is named in messages: a URL without its password, a path escaped."""
    return parse_store_url(db).redacted if _is_store_url(db) else shown_path(db)


def _run(queue: Any, store: Store, rng: random.Random, *, db: str, shown: str, jobs: int, workers: int,
         kill_rate: float, guard: bool, seed: int, config: RealConfig,
         timeout_s: float, planned_kills: int = 0) -> dict[str, Any]:
    with store.transaction():
        store.append_event(
            actor="stress", job=None, kind="start", jobs=jobs, workers=workers,
            kill_rate=kill_rate, planned_kills=planned_kills, seed=seed, batch=config.batch,
            lease_s=config.lease_s,
            guardrails_off=queue.guard.off(), progress_bound_s=timeout_s,
        )
    enqueued = queue.enqueue_batch(JOB_TYPE, [{"n": i} for i in range(jobs)], actor="client")
    elapsed_s, kills, restarts, last_kill_t = _work_off(
        queue, store, rng, db=db, guard=guard, config=config, names=[f"w{i + 1}" for i in range(workers)],
        kill_rate=kill_rate, jobs=jobs, timeout_s=timeout_s, planned_kills=planned_kills)
    with store.transaction():
        store.append_event(actor="stress", job=None, kind="end", reason="every job terminal",
                           last_fault_s=last_kill_t, faults=kills)
    return _judge(store, enqueued, db=shown, guard=guard, seed=seed, workers=workers,
                  kill_rate=kill_rate, planned_kills=planned_kills, kills=kills, restarts=restarts,
                  elapsed_s=elapsed_s,
                  config=config)


def _work_off(queue: Any, store: Store, rng: random.Random, *, db: str, guard: bool,
              config: RealConfig, names: list[str], kill_rate: float, jobs: int,
              timeout_s: float, planned_kills: int = 0) -> tuple[float, int, int, float | None]:
    """Start a worker process per name and drive the reaper (and the kills) until every job
    in the store is terminal. Returns (elapsed_s, kills, restarts, time of the last kill)."""
    run = _Run(db, guard, config)
    # Planned kills: each at a seeded number of claimed jobs, so their count does not
    # depend on the machine's speed.
    low, high = KILL_POINTS_SHARE
    kill_points = sorted(rng.uniform(low, high) * jobs for _ in range(planned_kills))
    # At a rate: the first kill lands at a seeded point within the first half of the work
    # (so even a run shorter than 1/kill_rate seconds sees a kill that matters); the next
    # follow at kill_rate per second of the run.
    first_kill_claimed = rng.uniform(0.05, 0.5) * jobs
    next_kill_s = rng.expovariate(kill_rate) if kill_rate > 0 else math.inf
    killing = kill_rate > 0 or planned_kills > 0
    kills = restarts = 0
    last_kill_t = None
    started = time.monotonic()  # real-time: the run's own stopwatch
    exposed_s, exposed_since = 0.0, None
    # No two kills without progress between them, unless a lease apart: a kill waits until
    # some job became terminal since the previous one, or one lease passed. At a rate the
    # machine cannot sustain (a batch takes longer than the time between kills), every
    # batch would otherwise be killed before its commit; this way the rate drops to what
    # the machine allows and the run always ends.
    terminal_at_last_kill = -1
    last_kill_mono = -math.inf
    due_since: float | None = None
    deadline = started + timeout_s
    try:
        for name in names:
            run.spawn(name, "worker")
        reaper = _Stepper(reaper_loop("reaper", queue), config.idle_poll_s)
        counts: dict[str, int] = {}
        for _ in range(math.ceil(timeout_s / FIRST_KILL_POLL_S) + 1):  # bounded by the timeout
            now = time.monotonic()  # real-time: the run's own stopwatch
            # Two O(log n) look-ups each poll; a full count only to confirm the end (terminal
            # states are final, so the confirmation is exact) and until the first kill.
            maybe_done = store.next_run_at_s() is None and store.next_lease_expiry_s() is None
            if maybe_done or (kill_rate > 0 and kills == 0) or kills < planned_kills:
                counts = store.counts_by_state()
            open_jobs = counts.get("pending", 0) + counts.get("leased", 0)
            if maybe_done and open_jobs == 0:
                elapsed_s = now - started
                break
            if now > deadline:
                raise StressError(
                    f"stress timed out after {timeout_s:g} s with {open_jobs} jobs not terminal "
                    f"({counts}); {kills} kills; the database {_shown(db)} is left for inspection")
            run.check_alive()
            reaper.step(RealClock().now_s())
            terminal = sum(n for s, n in counts.items() if s in TERMINAL_STATES)
            claimed = terminal + counts.get("leased", 0)
            first_due = kill_rate > 0 and kills == 0 and claimed >= first_kill_claimed
            holders: list[str] = []
            if killing:
                holders = [n for n in names
                           if store.job_leased_by(run.children[n].name) is not None]
                if exposed_since is not None:
                    exposed_s += now - exposed_since
                exposed_since = now
            due = exposed_s >= next_kill_s or first_due or (
                kills < planned_kills and claimed >= kill_points[kills])
            if due:
                if kills >= MAX_KILLS:
                    raise StressError(f"more than {MAX_KILLS} kills: the run does not finish")
                # A kill of a process that holds nothing tests nothing: the victim is drawn
                # among the workers holding a lease now. When none does (a restarted worker
                # still starting, one inside its claim transaction), the kill waits until
                # one does. Killing any worker instead would, at a high rate on a loaded
                # machine, kill every worker before it claims: a run that never ends.
                finished = sum(n for state, n in store.counts_by_state().items()
                               if state in TERMINAL_STATES)
                # ... or one lease: by then the killed worker's jobs are due again, and the
                # survivors, which a kill never waits for, have had a lease's time to commit.
                stalled = kill_rate > 0 and kills > 0 and finished <= terminal_at_last_kill
                if stalled and now - last_kill_mono < config.lease_s:
                    time.sleep(FIRST_KILL_POLL_S)  # real-time: wait for progress
                    continue
                if not holders:  # a batch is claimed and committed between two looks
                    due_since = now if due_since is None else due_since
                    if now - due_since < KILL_PATIENCE_S:
                        time.sleep(FIRST_KILL_POLL_S)  # real-time: look again soon
                        continue
                terminal_at_last_kill, last_kill_mono, due_since = finished, now, None
                victim = run.children[rng.choice(holders or names)]
                victim.proc.send_signal(signal.SIGKILL)
                victim.proc.wait(timeout=10.0)  # real-time: SIGKILL is not refused; bounded
                kills += 1
                last_kill_t = RealClock().now_s()
                held = store.job_leased_by(victim.name)
                with store.transaction():
                    store.append_event(actor=victim.name, job=held, kind="crash", point="sigkill",
                                       pid=victim.proc.pid)
                reborn = run.spawn(victim.slot, "worker", victim.incarnation + 1)
                restarts += 1
                with store.transaction():
                    store.append_event(actor=reborn.name, job=None, kind="restart",
                                       replaces=victim.name)
                if kill_rate > 0:
                    next_kill_s = max(next_kill_s, exposed_s) + rng.expovariate(kill_rate)
                exposed_since = None  # the victim's restart holds nothing yet
            # Until the first kill, look often: a short run must not slip between two looks.
            hurry = (kill_rate > 0 and kills == 0) or kills < planned_kills
            time.sleep(FIRST_KILL_POLL_S if hurry else POLL_S)  # real-time: the parent polls
        else:
            raise StressError(f"stress did not finish within {timeout_s:g} s")
    finally:
        run.stop_all()
    return elapsed_s, kills, restarts, last_kill_t


def _verdict(store: Store, enqueued: list[int]) -> dict[str, Any]:
    """Everything from the file: the tables and the history in it, never our own counters."""
    states = {job.id: job.state for job in store.jobs()}
    lost = sum(1 for job_id in enqueued if states.get(job_id) not in TERMINAL_STATES)
    per_part = Counter((job_id, part) for job_id, part, _token, _amount in store.effects())
    violations = checkers.check(store.events(), store)
    by_invariant = Counter(v.invariant for v in violations)
    return {
        "enqueued": len(enqueued),
        "succeeded": sum(1 for s in states.values() if s == "succeeded"),
        "dead": sum(1 for s in states.values() if s == "dead"),
        "lost": lost,
        "duplicate_effects": sum(n - 1 for n in per_part.values() if n > 1),
        "violations": {inv: by_invariant[inv] for inv in sorted(by_invariant)},
        "violation_examples": [v.to_json() for v in violations[:MAX_LISTED_VIOLATIONS]],
    }


def _judge(store: Store, enqueued: list[int], *, db: str, guard: bool, seed: int, workers: int,
           kill_rate: float, kills: int, restarts: int, elapsed_s: float,
           config: RealConfig, planned_kills: int = 0) -> dict[str, Any]:
    verdict = _verdict(store, enqueued)
    return {
        **verdict,
        "kills": kills,
        "restarts": restarts,
        "elapsed_s": round(elapsed_s, 3),
        "jobs_per_s": (round((len(enqueued) - verdict["lost"]) / elapsed_s, 1)
                       if elapsed_s > 0 else None),
        "db": db,
        "guard": "on" if guard else "off",
        "seed": seed,
        "workers": workers,
        "kill_rate": kill_rate,
        "planned_kills": planned_kills,
        "batch": config.batch,
        "lease_s": config.lease_s,
    }


# -- resume and check: an earlier run's file -----------------------------------------


def open_run_store(db: str, *, read_only: bool = False) -> Store:
    """The store of an earlier run, named by the user: an existing failfirst database,
    refused (StoreError, nothing written) when it is anything else. The one place
    ``resume`` and ``check`` open their store."""
    if _is_store_url(db):  # sqlite:PATH or postgresql://... (PostgreSQL: check only reads)
        return open_store(db, None, create=False)
    return Store.open_file(db, RealClock(), create=False, read_only=read_only)


def resume(db: str, workers: int = 2, *, batch: int = DEFAULT_BATCH, lease_s: float = 2.0,
           heartbeat_s: float = 0.5, timeout_s: float | None = None) -> dict[str, Any]:
    """Finish an interrupted run: the leases its dead workers held are marked as crashed
    in the history, the reaper takes them back when they expire, and ``workers`` new
    worker processes work off every job not yet terminal, with every guardrail on (each
    effect is keyed by its job, so a job already applied is never applied again). Then
    judges the file as :func:`stress` does. A file with nothing left to do is judged
    and left unchanged."""
    _validate(1, workers, 0.0, batch, timeout_s)
    db = db if _is_store_url(db) else os.path.abspath(db)
    store = open_run_store(db)
    try:
        job_ids = [job.id for job in store.jobs()]
        open_ids = [job.id for job in store.jobs() if job.state not in TERMINAL_STATES]
        timeout_s = default_timeout_s(len(open_ids)) if timeout_s is None else timeout_s
        config = RealConfig(lease_s=lease_s, heartbeat_s=heartbeat_s, batch=batch,
                            max_runtime_s=timeout_s + 30.0)
        elapsed_s = 0.0
        if open_ids:
            queue = queue_on(store, True, config)
            with store.transaction():
                # The interrupted run's workers are gone: their attempts ended in a crash.
                for job in store.jobs():
                    if job.state == "leased":
                        store.append_event(actor=job.lease_owner or "?", job=job.id, kind="crash",
                                           point="interrupted")
                store.append_event(actor="resume", job=None, kind="resume", open=len(open_ids),
                                   workers=workers)
            resumed_at = RealClock().now_s()
            elapsed_s, _, _, _ = _work_off(
                queue, store, random.Random(0), db=db, guard=True, config=config,
                names=[f"r{i + 1}" for i in range(workers)], kill_rate=0.0, jobs=len(open_ids),
                timeout_s=timeout_s)
            with store.transaction():
                store.append_event(actor="resume", job=None, kind="end", reason="every job terminal",
                                   last_fault_s=resumed_at, faults=0)
        return {**_verdict(store, job_ids), **_history_counts(store), "resumed": len(open_ids),
                "workers": workers, "elapsed_s": round(elapsed_s, 3), "db": _shown(db)}
    finally:
        store.close()


def check(db: str) -> dict[str, Any]:
    """Judge any failfirst database file, read-only: what :func:`stress` reports (lost,
    duplicate effects, violations), from the tables and the history in the file."""
    db = db if _is_store_url(db) else os.path.abspath(db)
    store = open_run_store(db, read_only=True)
    try:
        return {**_verdict(store, [job.id for job in store.jobs()]), **_history_counts(store),
                "db": _shown(db)}
    finally:
        store.close()


def _history_counts(store: Store) -> dict[str, int]:
    kinds = Counter(e["kind"] for e in store.events() if e["kind"] in ("crash", "restart"))
    return {"kills": kinds["crash"], "restarts": kinds["restart"]}


def describe_check(result: dict[str, Any], what: str = "check") -> str:
    """The human-readable summary of a ``check`` or ``resume`` result."""
    r = result
    head = f"{what} of {shown_path(r['db'])}"
    if what == "resume":
        head += f": {r['resumed']} jobs left to do, {r['workers']} workers, {r['elapsed_s']:g} s"
    lines = [
        head,
        f"  {r['enqueued']} jobs, {r['succeeded']} succeeded, {r['dead']} dead, "
        f"{r['lost']} not terminal (lost)",
        f"  {r['kills']} crashes in the history ({r['restarts']} restarts)",
        f"  duplicate effects: {r['duplicate_effects']}",
    ]
    lines.extend(_violation_lines(r))
    return "\n".join(lines)


def _violation_lines(r: dict[str, Any]) -> list[str]:
    if not r["violations"]:
        return ["  every invariant holds (checked from the file)"]
    counts = ", ".join(f"{inv} x{n}" for inv, n in r["violations"].items())
    return [f"  violations: {counts}", *(f"    {v['invariant']} job {v['job']}: {v['detail']}"
                                         for v in r["violation_examples"][:5])]


def describe(result: dict[str, Any]) -> str:
    """The human-readable summary of a stress result."""
    r = result
    lines = [
        f"stress on {shown_path(r['db'])}: {r['workers']} workers, guard {r['guard']}, seed {r['seed']}, "
        f"kill rate {r['kill_rate']:g}/s, batch {r['batch']}",
        f"  {r['enqueued']} enqueued, {r['succeeded']} succeeded, {r['dead']} dead, "
        f"{r['lost']} lost",
        f"  {r['kills']} SIGKILLs ({r['restarts']} restarts); {r['elapsed_s']:g} s, "
        f"{r['jobs_per_s']} jobs/s",
        f"  duplicate effects: {r['duplicate_effects']}",
    ]
    lines.extend(_violation_lines(r))
    return "\n".join(lines)
