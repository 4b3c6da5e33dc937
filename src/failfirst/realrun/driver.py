"""Real runs: a fleet of worker processes on a real store, faults struck at it, and the
verdict on what it left. One driver for every store and every fault: ``failfirst
stress`` and ``failfirst resume``, ``make stress``, ``make stress-pg``, the
benchmarks and the PostgreSQL chapter all run it.

The simulator proves the design; this shows that the same code holds with real
processes, a real store and real crashes. A run

1. **claims the store**, in one transaction: it must hold no run yet; the run's
   ``start`` event (with its owner, see :mod:`failfirst.realrun.ownership`) and every
   job it enqueues commit together, so two runs started at the same instant on one
   new store cannot both be accepted, and an interrupted enqueue leaves nothing
   behind. On PostgreSQL the run also holds an advisory lock for its whole life;
2. starts its worker processes (:mod:`failfirst.realrun.fleet`: the one place that
   starts them), each driving the simulator's own worker loop with the store's clock,
   and drives the reaper's loop itself between its looks at the store (a process of
   its own would only compete with the workers for the CPU);
3. strikes a fault (:mod:`failfirst.realrun.faults`: SIGKILL, a terminated
   connection, a server crash, a partition, a pause), either ``faults`` times at
   seeded points of the run's progress (after so many jobs were claimed: the same
   count on a fast machine and a slow one, which is what a gate needs) or at
   ``fault_rate_per_s`` per second at most (two strikes without a job finished
   between them are then at least a lease apart, so on a machine too slow for the
   rate the rate drops and the run still ends). A worker that dies, or loses its
   connection to a fault that breaks connections, is recorded as crashed in the
   history and started again as a new incarnation;
4. when every job is terminal (and a lasting fault has healed, with two leases left
   for the zombie to act), stops everything, closes the run with its ``end`` event and
   judges the store (:mod:`failfirst.realrun.verdict`): every invariant checker over
   the history and the tables, read in one snapshot.

``resume`` is a run too: it takes over a store whose run was interrupted, records
one crash per dead worker, works off what is left with every guardrail on, and judges.

The randomness of a run (which worker, when) comes from ``random.Random(seed)``; the
operating system's scheduling does not, so a seed names a fault schedule, not an exact
history. Every wait is bounded: an overall timeout, bounds on strikes and restarts,
and a deadline every child enforces on itself. A run that breaks (a timeout, a child
that exits on its own, a store that stops answering) raises :class:`RunBroken`, whose
message says how to finish it.
"""

from __future__ import annotations

import math
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from failfirst.processor.queue import JobQueue
from failfirst.processor.transitions import TERMINAL_STATES
from failfirst.processor.worker import ActorLoop, Point, reaper_loop
from failfirst.realrun import faults as faults_mod
from failfirst.realrun import ownership, verdict, where
from failfirst.realrun.faults import Fault, Strike
from failfirst.realrun.fleet import Fleet, FleetError
from failfirst.realrun.process import JOB_TYPE, RealConfig, open_queue, queue_on
from failfirst.store import StoreError, StoreUnavailable, parse_store_url
from failfirst.store.clock import RealClock

MAX_JOBS = 1_000_000
MAX_WORKERS = 64
MAX_KILL_RATE = 100.0
#: ``--kills``: planned strikes, each at its own point of progress.
MAX_PLANNED_KILLS = 1_000
#: Jobs per claim and per commit transaction in real runs (see failfirst.processor.queue).
DEFAULT_BATCH = 256
#: How often the parent looks at the store, its children and the fault schedule.
POLL_S = 0.01
FIRST_KILL_POLL_S = 0.002
#: How long a due strike waits for its best target (a worker holding a lease) before
#: it takes any (``insist``).
KILL_PATIENCE_S = 0.05
#: Strikes or restarts beyond these bounds mean the run is broken, not slow.
MAX_KILLS = 10_000
MAX_RESTARTS = 20_000
#: Planned strikes land while this share of the jobs is claimed: late enough that
#: workers run, early enough that the run cannot end before the last one.
KILL_POINTS_SHARE = (0.02, 0.8)
#: A worker that lost its connection is started again after this long (the server may
#: be down), and the parent tries to reconnect for at most this long.
RESTART_DELAY_S = 0.5
RECONNECT_S = 120.0
#: After a lasting fault heals, the run goes on until the struck worker has acted (its
#: late write): the driver looks at the history for it this often.
SETTLE_POLL_S = 0.1


class RunBroken(RuntimeError):
    """The run itself broke (a timeout, a child that exited on its own, a store that
    stopped answering): exit 1, with a message that says how to finish the run."""


class RunInputError(ValueError):
    """Bad input to a real run (a number out of range, a fault the store cannot take):
    refused before anything is written."""


@dataclass
class RunStatus:
    """What a caller needs to word an interruption: whether the run got as far as
    claiming the store (its jobs are there, and ``resume`` finishes them)."""

    command: str = "stress"
    claimed: bool = False


def default_timeout_s(jobs: int) -> float:
    """Generous: 2 minutes plus 10 ms a job. A run that needs more is broken, not slow."""
    return 120.0 + jobs * 0.01


def _validate(jobs: int, workers: int, rate: float, batch: int, timeout_s: float | None,
              planned: int = 0) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise RunInputError(f"--jobs: must be an integer in 1..{MAX_JOBS}, got {jobs!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise RunInputError(f"--workers: must be an integer in 1..{MAX_WORKERS}, got {workers!r}")
    if not isinstance(rate, int | float) or not 0 <= rate <= MAX_KILL_RATE:
        raise RunInputError(f"--kill-rate: must be a number in 0..{MAX_KILL_RATE:g}, got {rate!r}")
    if isinstance(planned, bool) or not isinstance(planned, int) or not 0 <= planned <= MAX_PLANNED_KILLS:
        raise RunInputError(f"--kills: must be an integer in 0..{MAX_PLANNED_KILLS}, got {planned!r}")
    if planned and rate:
        raise RunInputError("--kills and --kill-rate: choose one (a kill count or a rate)")
    if planned > jobs:
        raise RunInputError(f"--kills: at most one kill per job ({jobs}), got {planned}")
    if not isinstance(batch, int) or not 1 <= batch <= 1000:
        raise RunInputError(f"batch: must be an integer in 1..1000, got {batch!r}")
    if timeout_s is not None and not 0 < timeout_s < math.inf:
        raise RunInputError(f"timeout_s: must be a finite number > 0, got {timeout_s!r}")


# -- the schedule: when the next strike is due ----------------------------------------


class _Schedule:
    """Planned strikes at seeded points of progress, or strikes at a rate per second of
    the run (of its "exposed" time: a restarted worker holds nothing at first)."""

    def __init__(self, rng: random.Random, jobs: int, planned: int, rate_per_s: float,
                 lease_s: float) -> None:
        low, high = KILL_POINTS_SHARE
        self.points = sorted(rng.uniform(low, high) * jobs for _ in range(planned))
        # At a rate, the first strike lands at a seeded point within the first half of the
        # work (so even a run shorter than 1/rate seconds sees one that matters).
        self.first_claimed = rng.uniform(0.05, 0.5) * jobs
        self.next_s = rng.expovariate(rate_per_s) if rate_per_s > 0 else math.inf
        self.planned, self.rate_per_s, self.lease_s = planned, rate_per_s, lease_s
        self.struck = 0
        self.exposed_s, self._exposed_since = 0.0, None
        # No two strikes at a rate without progress between them, unless a lease apart:
        # at a rate the machine cannot sustain every batch would be struck before its
        # commit; this way the rate drops to what the machine allows and the run ends.
        self.terminal_at_last = -1
        self.last_mono = -math.inf
        self.due_since: float | None = None

    @property
    def active(self) -> bool:
        return self.planned > 0 or self.rate_per_s > 0

    @property
    def owed(self) -> int:
        """Planned strikes not struck yet."""
        return max(0, self.planned - self.struck)

    def hurry(self) -> bool:
        """Until the first strike at a rate, or while planned ones remain, look often: a
        short run must not slip between two looks."""
        return (self.rate_per_s > 0 and self.struck == 0) or self.struck < self.planned

    def tick(self, now: float) -> None:
        if not self.active:
            return
        if self._exposed_since is not None:
            self.exposed_s += now - self._exposed_since
        self._exposed_since = now

    def due(self, claimed: int) -> bool:
        first_due = self.rate_per_s > 0 and self.struck == 0 and claimed >= self.first_claimed
        return (self.exposed_s >= self.next_s or first_due
                or (self.struck < self.planned and claimed >= self.points[self.struck]))

    def stalled(self, now: float, finished: int) -> bool:
        return (self.rate_per_s > 0 and self.struck > 0 and finished <= self.terminal_at_last
                and now - self.last_mono < self.lease_s)

    def insist(self, now: float) -> bool:
        self.due_since = now if self.due_since is None else self.due_since
        return now - self.due_since >= KILL_PATIENCE_S

    def record(self, now: float, finished: int, rng: random.Random) -> None:
        self.struck += 1
        self.terminal_at_last, self.last_mono, self.due_since = finished, now, None
        if self.rate_per_s > 0:
            self.next_s = max(self.next_s, self.exposed_s) + rng.expovariate(self.rate_per_s)
        self._exposed_since = None  # a restarted worker holds nothing yet


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


# -- the run: the parent's side, and the target of faults ----------------------------


@dataclass
class _Run:
    """One run's parent: its store connection, its fleet, its reaper; what faults strike
    through (it is their :class:`failfirst.realrun.faults.Target`)."""

    db: str
    command: str
    guard: bool
    config: RealConfig
    fleet: Fleet
    fault: Fault | None
    server: Any = None
    fault_s: float = 3.0
    store: Any = None
    queue: JobQueue | None = None
    reaper: _Stepper | None = None
    #: A worker whose connection broke is started again (the run's fault breaks them).
    restart_on_loss: bool = False
    #: slot -> when its process was first seen ended (connection lost: a delay first).
    _ended_at: dict[str, float] = field(default_factory=dict)

    # -- Target ---------------------------------------------------------------------

    @property
    def url(self) -> str | None:
        return self.db if where.is_store_url(self.db) and self.kind == "postgresql" else None

    @property
    def kind(self) -> str:
        return parse_store_url(self.db).kind if where.is_store_url(self.db) else "sqlite"

    @property
    def lease_s(self) -> float:
        return self.config.lease_s

    def holders(self) -> list[str]:
        return [slot for slot, w in sorted(self.fleet.workers.items())
                if w.proc.poll() is None and self.store.job_leased_by(w.name) is not None]

    def job_leased_by(self, worker: str) -> int | None:
        return self.store.job_leased_by(worker)

    def log(self, actor: str, kind: str, job: int | None = None, **data: Any) -> None:
        with self.store.transaction():
            self.store.append_event(actor=actor, job=job, kind=kind, **data)

    def acted_after_heal(self, worker: str) -> bool:
        seen_heal = False
        for event in self.store.events():
            if event["actor"] != worker:
                continue
            if event["kind"] == "heal":
                seen_heal = True
            elif seen_heal:
                return True
        return False

    def effects_written(self, job: int) -> bool:
        return bool(self.store.effects(job))

    def replace(self, slot: str, point: str, job: int | None = None) -> None:
        dead = self.fleet.workers[slot]
        if self.fleet.restarts >= MAX_RESTARTS:
            raise RunBroken(f"more than {MAX_RESTARTS} restarts: the run does not finish")
        self.log(dead.name, "crash", job, point=point, pid=dead.proc.pid)
        reborn = self.fleet.restart(slot)
        self.log(reborn.name, "restart", replaces=dead.name)

    # -- the parent's own connection ---------------------------------------------------

    def connect(self, *, create: bool = False) -> None:
        self.queue = open_queue(self.db, self.guard, self.config, create=create)
        self.store = self.queue.store
        self.reaper = _Stepper(reaper_loop("reaper", self.queue), self.config.idle_poll_s)

    def reconnect(self, exc: StoreUnavailable) -> None:
        """The parent's connection broke: while the run's faults break connections (a
        server crash), connect again, as long as the server comes back in time; else
        the run is broken."""
        if not self.restart_on_loss:
            raise self.broken(str(exc))
        try:
            self.store.close()
        except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is gone
            pass
        deadline = time.monotonic() + RECONNECT_S  # real-time: bounded
        for _ in range(int(RECONNECT_S / RESTART_DELAY_S) + 1):
            try:
                self.connect()
                if self.store.hold_run_lock() is False:
                    raise self.broken("another process took the store's run lock while the "
                                      "server was restarting")
                return
            except StoreError as again:
                if time.monotonic() > deadline:  # real-time: a real run's clock
                    raise self.broken(f"the store did not come back within {RECONNECT_S:g} s: "
                                      f"{again}") from None
                time.sleep(RESTART_DELAY_S)  # real-time: the server is restarting
        raise self.broken("the store did not come back")

    def broken(self, why: str) -> RunBroken:
        """A RunBroken whose first line says how to finish the run."""
        first, _, rest = why.partition("\n")
        return RunBroken(f"{self.command} on {where.shown(self.db)} broke: {first}; the store keeps "
                         f"its jobs: {where.resume_command(self.db)} finishes them"
                         + (f"\n{rest}" if rest else ""))

    # -- the fleet's exits ----------------------------------------------------------------

    def tend(self, now: float) -> None:
        """Every worker process that ended on its own: started again when the run's fault
        explains it (its connection broke); anything else breaks the run."""
        for worker, code in self.fleet.exited():
            restartable = self.restart_on_loss and (Fleet.lost_connection(code) or code == -signal.SIGKILL)
            if not restartable:
                raise self.broken(str(self.fleet.exit_problem(worker, code)))
            first_seen = self._ended_at.setdefault(worker.slot, now)
            if Fleet.lost_connection(code) and now - first_seen < RESTART_DELAY_S:
                continue  # the server may be down: give it a moment
            point = "connection_lost" if Fleet.lost_connection(code) else "sigkill"
            self.replace(worker.slot, point, self.store.job_leased_by(worker.name))
            del self._ended_at[worker.slot]


# -- driving a fleet until every job is terminal --------------------------------------


@dataclass
class _Drive:
    elapsed_s: float = 0.0
    strikes: list[Strike] = field(default_factory=list)
    last_strike_t: float | None = None


def _drive(run: _Run, rng: random.Random, schedule: _Schedule, timeout_s: float) -> _Drive:
    """Start the fleet's workers and drive the reaper and the faults until every job in the
    store is terminal."""
    out = _Drive()
    started = time.monotonic()  # real-time: the run's own stopwatch
    deadline = started + timeout_s
    counts: dict[str, int] = {}
    lasting: tuple[Strike, float] | None = None  # a fault that lasts, and when it heals
    settling: Strike | None = None  # healed; the run waits until its worker has acted
    looked_at = -math.inf
    assert run.fault is not None or not schedule.active
    for _ in range(math.ceil(timeout_s / FIRST_KILL_POLL_S) + 1):  # bounded by the timeout
        now = time.monotonic()  # real-time: the run's own stopwatch
        try:
            run.tend(now)
            if lasting is not None and now >= lasting[1]:
                assert run.fault is not None
                run.fault.heal(run, lasting[0])
                lasting, settling = None, lasting[0]
            if settling is not None and now - looked_at >= SETTLE_POLL_S:
                looked_at = now
                assert run.fault is not None
                if run.fault.settled(run, settling):
                    settling = None
            store = run.store
            # Two O(log n) look-ups each poll; a full count only to confirm the end (terminal
            # states are final, so the confirmation is exact) and while strikes are due.
            maybe_done = store.next_run_at_s() is None and store.next_lease_expiry_s() is None
            if maybe_done or schedule.hurry():
                counts = store.counts_by_state()
            open_jobs = counts.get("pending", 0) + counts.get("leased", 0)
            # A loaded machine can starve the parent until the work is done: a kill it
            # still owes lands before the end (on an idle worker; the result counts
            # the strikes that found a job held), so --kills N gives N kills.
            owed = schedule.owed if run.fault is not None and run.fault.strikes_idle else 0
            if maybe_done and open_jobs == 0 and lasting is None and settling is None and not owed:
                out.elapsed_s = now - started
                return out
            if now > deadline:
                raise RunBroken(
                    f"{run.command} timed out after {timeout_s:g} s with {open_jobs} jobs not terminal "
                    f"({counts}); {len(out.strikes)} faults struck; the store {where.shown(run.db)} is "
                    f"left as it is: {where.resume_command(run.db)} finishes it")
            run.reaper.step(RealClock().now_s())
            terminal = sum(n for s, n in counts.items() if s in TERMINAL_STATES)
            schedule.tick(now)
            quiet = lasting is None and settling is None
            if quiet and schedule.active and schedule.due(terminal + counts.get("leased", 0)):
                if len(out.strikes) >= MAX_KILLS:
                    raise RunBroken(f"more than {MAX_KILLS} faults: the run does not finish")
                finished = sum(n for state, n in store.counts_by_state().items()
                               if state in TERMINAL_STATES)
                if schedule.stalled(now, finished):
                    time.sleep(FIRST_KILL_POLL_S)  # real-time: wait for progress
                    continue
                assert run.fault is not None
                strike = run.fault.strike(run, rng, insist=schedule.insist(now))
                if strike is None:  # no target yet: look again soon
                    time.sleep(FIRST_KILL_POLL_S)  # real-time: a real run's clock
                    continue
                schedule.record(now, finished, rng)
                out.strikes.append(strike)
                out.last_strike_t = RealClock().now_s()
                if strike.lasts_s is not None:
                    lasting = (strike, now + strike.lasts_s)
        except StoreUnavailable as exc:
            run.reconnect(exc)
        except FleetError as exc:
            raise run.broken(str(exc)) from None
        time.sleep(FIRST_KILL_POLL_S if schedule.hurry() else POLL_S)  # real-time: the parent polls
    raise RunBroken(f"{run.command} did not finish within {timeout_s:g} s")


# -- stress: claim a new store, drive, judge ---------------------------------------------


def _claim(run: _Run, jobs: int, start: dict[str, Any]) -> None:
    """One transaction: the store must hold no run; the start event and every job commit
    together (or nothing does)."""
    store, shown = run.store, where.shown(run.db)
    if store.hold_run_lock() is False:
        raise StoreError(f"{shown}: a live run holds it (its run lock is taken); stress needs a new "
                         "or empty database")
    with store.transaction():
        held = sum(store.counts_by_state().values())
        if held:
            hint = "" if where.is_store_url(run.db) else " (remove the file first)"
            raise StoreError(f"{shown}: already holds {held} jobs; stress needs a new or empty "
                             f"database{hint}")
        if store.events():
            raise StoreError(f"{shown}: already holds a run's history; stress needs a new or "
                             "empty database")
        store.append_event(actor=run.command, job=None, kind="start", owner=ownership.me(), **start)
        run.queue.enqueue_all_in_transaction(JOB_TYPE, [{"n": i} for i in range(jobs)], actor="client")


def run(
    db: str,
    jobs: int,
    workers: int,
    *,
    fault: str | Fault = "sigkill",
    faults: int = 0,
    fault_rate_per_s: float = 0.0,
    guard: bool = True,
    seed: int = 0,
    batch: int = DEFAULT_BATCH,
    lease_s: float = 2.0,
    heartbeat_s: float = 0.5,
    work_s: float = 0.0,
    timeout_s: float | None = None,
    server: Any = None,
    fault_s: float | None = None,
    status: RunStatus | None = None,
) -> dict[str, Any]:
    """A real run on the store ``db`` names (a SQLite path, ``sqlite:PATH`` or
    ``postgresql://...``); returns the result (the stress JSON).

    ``fault`` (see :data:`failfirst.realrun.faults.FAULTS`) strikes ``faults`` times at
    seeded points of progress, or at ``fault_rate_per_s`` at most (one of them, or
    neither: no faults). ``server``: the run's private server
    (:class:`failfirst.store.pgtools.PrivateServer`), which ``server_crash`` crashes and
    ``partition`` opens one address of; ``fault_s``: how long a lasting fault lasts
    (default three leases); ``work_s``: the handler's time per job.

    Bad input (numbers out of range, a fault the store cannot take, a path that cannot
    hold a database, a foreign or newer database, one that already holds a run) raises
    :class:`RunInputError` or :class:`failfirst.store.interface.StoreError` before anything is
    written; a run that breaks raises :class:`RunBroken`.
    """
    status = status or RunStatus()
    _validate(jobs, workers, fault_rate_per_s, batch, timeout_s, faults)
    try:
        fault_obj = faults_mod.make(fault)
    except ValueError as exc:
        raise RunInputError(str(exc)) from None
    db = where.resolved(db)
    kind = parse_store_url(db).kind if where.is_store_url(db) else "sqlite"
    striking = bool(faults or fault_rate_per_s)
    fault = fault_obj.name
    if striking and kind not in fault_obj.stores:
        raise RunInputError(f"fault {fault}: needs a {' or '.join(sorted(fault_obj.stores))} store")
    if striking and fault_obj.needs_server and server is None:
        raise RunInputError(f"fault {fault}: needs the run's own private server, never a shared one")
    timeout_s = default_timeout_s(jobs) if timeout_s is None else timeout_s
    config = RealConfig(lease_s=lease_s, heartbeat_s=heartbeat_s, batch=batch,
                        max_runtime_s=timeout_s + 60.0, work_s=work_s)
    fleet = Fleet(db, where.is_store_url(db), guard, config)
    target = _Run(db, status.command, guard, config, fleet, fault_obj if striking else None,
                  server=server, fault_s=3 * lease_s if fault_s is None else fault_s,
                  restart_on_loss=striking and fault_obj.breaks_connections)
    rng = random.Random(seed)
    schedule = _Schedule(rng, jobs, faults, fault_rate_per_s, lease_s)
    prepared = False
    try:
        if target.fault is not None:
            target.fault.prepare(target)  # before the store opens: it may restart the server
            prepared = True
        target.connect(create=True)  # refuses foreign or newer databases
        _claim(target, jobs, {
            "jobs": jobs, "workers": workers, "fault": fault if striking else None,
            "kill_rate": fault_rate_per_s, "planned_kills": faults, "seed": seed, "batch": batch,
            "lease_s": lease_s, "guardrails_off": target.queue.guard.off(), "progress_bound_s": timeout_s})
        status.claimed = True
        drove = _work_off(target, [f"w{i + 1}" for i in range(workers)], rng, schedule, timeout_s)
        result = verdict.judge(target.store, live=False)
    except faults_mod.FaultError as exc:
        raise RunInputError(str(exc)) from None
    except StoreUnavailable as exc:
        raise _lost_store(target, status, exc) from None
    finally:
        fleet.stop()
        if prepared:
            target.fault.close(target)
        if target.store is not None:
            target.store.close()
    by_kind = Counter(s.kind for s in drove.strikes)
    return {
        **result,
        "kills": sum(1 for s in drove.strikes if s.sigkilled),
        "restarts": fleet.restarts,
        "faults": len(drove.strikes),
        "hits": sum(1 for s in drove.strikes if s.hit),
        # Strikes whose worker held a job then (an overdue one may take an idle worker).
        "struck_holding_job": sum(1 for s in drove.strikes if s.job is not None),
        "faults_by_kind": dict(sorted(by_kind.items())),
        "fault": fault,
        "elapsed_s": round(drove.elapsed_s, 3),
        "jobs_per_s": (round((result["enqueued"] - result["lost"]) / drove.elapsed_s, 1)
                       if drove.elapsed_s > 0 else None),
        "db": where.shown(db),
        "guard": "on" if guard else "off",
        "seed": seed,
        "workers": workers,
        # A rate of faults, or null: planned faults have none (they follow progress).
        "kill_rate": fault_rate_per_s if fault_rate_per_s else None,
        "fault_rate_per_s": fault_rate_per_s,
        "planned_faults": faults,
        "planned_kills": faults if fault == "sigkill" else 0,
        "batch": batch,
        "lease_s": lease_s,
    }


def _work_off(run: _Run, names: list[str], rng: random.Random, schedule: _Schedule,
              timeout_s: float) -> _Drive:
    """Start the workers ``names``, drive them until every job is terminal, stop them and
    close the run in its history."""
    run.fleet.start(names)
    drove = _drive(run, rng, schedule, timeout_s)
    run.fleet.stop()
    _close_run(run, drove)
    return drove


def _lost_store(run: _Run, status: RunStatus, exc: StoreUnavailable) -> Exception:
    """Before the run claimed the store, a store that stops answering is the caller's
    error as it is; after, the run is broken (one line that names the resume command)."""
    return run.broken(str(exc)) if status.claimed else exc


def _close_run(run: _Run, drove: _Drive) -> None:
    """The run's ``end`` event: it closes the run (see failfirst.realrun.ownership)."""
    for _ in range(int(RECONNECT_S / RESTART_DELAY_S) + 1):
        try:
            run.log(run.command, "end", reason="every job terminal", last_fault_s=drove.last_strike_t,
                    faults=len(drove.strikes))
            return
        except StoreUnavailable as exc:
            run.reconnect(exc)


def stress(
    db: str,
    jobs: int,
    workers: int,
    kill_rate: float = 0.0,
    guard: bool = True,
    seed: int = 0,
    *,
    kills: int = 0,
    batch: int = DEFAULT_BATCH,
    lease_s: float = 2.0,
    heartbeat_s: float = 0.5,
    timeout_s: float | None = None,
    status: RunStatus | None = None,
) -> dict[str, Any]:
    """``failfirst stress``: a run whose fault is SIGKILL, ``kills`` times at seeded
    points of progress or at ``kill_rate`` per second at most (see :func:`run`)."""
    return run(db, jobs, workers, fault="sigkill", faults=kills, fault_rate_per_s=kill_rate,
               guard=guard, seed=seed, batch=batch, lease_s=lease_s, heartbeat_s=heartbeat_s,
               timeout_s=timeout_s, status=status)


# -- resume: take over an interrupted run's store ---------------------------------------


def _take_over(run: _Run, workers: int, resumed: Callable[[int], None]) -> list[int]:
    """One transaction: refuse a store a live run holds, or one with a lease no reaper can
    end; record one crash per dead worker and the resume event. Returns the open jobs."""
    store, shown = run.store, where.shown(run.db)
    lock = store.hold_run_lock()
    if lock is False:
        raise StoreError(f"{shown}: a live run holds it (its run lock is taken); resume refuses "
                         "a store whose run is still going")
    with store.transaction():
        events = store.events()
        opened = ownership.open_run(events)
        if lock is None and opened is not None and ownership.lives(opened.get("owner")):
            raise StoreError(f"{shown}: a live run holds it ({ownership.describe(opened.get('owner'))}, "
                             "its jobs in progress); resume refuses a store whose run is still going")
        jobs = store.jobs()
        open_ids = [job.id for job in jobs if job.state not in TERMINAL_STATES]
        if not open_ids:
            return []
        bad = verdict.malformed_leases(jobs, store.clock.now_s(), verdict.run_lease_s(events))
        if bad:
            first = bad[0]
            raise RunBroken(
                f"resume of {shown}: {len(bad)} malformed lease(s), which no reaper can end: job "
                f"{first['job']} is leased to {first['owner']} with {first['why']}; nothing was "
                f"resumed (failfirst check shows them all)")
        # The interrupted run's workers are gone: each one's attempts ended in a crash.
        holders = Counter(job.lease_owner or "?" for job in jobs if job.state == "leased")
        for owner, leases in sorted(holders.items()):
            store.append_event(actor=owner, job=None, kind="crash", point="interrupted", leases=leases)
        store.append_event(actor=run.command, job=None, kind="resume", owner=ownership.me(),
                           open=len(open_ids), workers=workers, lease_s=run.config.lease_s)
    resumed(len(open_ids))
    return open_ids


def resume(db: str, workers: int = 2, *, batch: int = DEFAULT_BATCH, lease_s: float = 2.0,
           heartbeat_s: float = 0.5, timeout_s: float | None = None,
           status: RunStatus | None = None) -> dict[str, Any]:
    """``failfirst resume``: finish an interrupted run. A store a live run holds is
    refused; the dead workers are recorded as crashed (one crash each), the reaper takes
    their leases back when they expire, and ``workers`` new worker processes work off
    every job not yet terminal, with every guardrail on (each effect is keyed by its
    job, so a job already applied is never applied again). Then judges the store as
    :func:`run` does. A store with nothing left to do is judged and left unchanged."""
    status = status or RunStatus(command="resume")
    _validate(1, workers, 0.0, batch, timeout_s)
    db = where.resolved(db)
    store = where.open_existing(db)
    config = RealConfig(lease_s=lease_s, heartbeat_s=heartbeat_s, batch=batch)
    fleet = Fleet(db, where.is_store_url(db), True, config)
    target = _Run(db, "resume", True, config, fleet, None)
    target.queue = queue_on(store, True, config)
    target.store = store
    target.reaper = _Stepper(reaper_loop("reaper", target.queue), config.idle_poll_s)
    drove = _Drive()
    try:
        open_ids = _take_over(target, workers, lambda n: setattr(status, "claimed", True))
        if open_ids:
            # Enough for the work and for the longest lease the dead workers left.
            limit_s = (default_timeout_s(len(open_ids)) + verdict.ABSURD_SLACK_S
                       if timeout_s is None else timeout_s)
            fleet.config = replace(config, max_runtime_s=limit_s + 60.0)
            drove = _work_off(target, [f"r{i + 1}" for i in range(workers)], random.Random(0),
                              _Schedule(random.Random(0), 1, 0, 0.0, lease_s), limit_s)
        result = verdict.judge(target.store, live=False)
    except StoreUnavailable as exc:
        raise _lost_store(target, status, exc) from None
    finally:
        fleet.stop()
        target.store.close()
    return {**result, "resumed": len(open_ids), "workers": workers,
            "elapsed_s": round(drove.elapsed_s, 3), "db": where.shown(db),
            "resume": where.resume_command(db)}
