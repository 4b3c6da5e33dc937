"""One real worker process: the simulator's worker loop, run with the wall clock.

:func:`failfirst.processor.worker.worker_loop` is a generator that yields at step
boundaries and says how long to wait. The simulator interleaves such loops under a
simulated clock; here one process drives one loop with the store's clock (the wall
clock for a SQLite file, the server's for PostgreSQL) and really sleeps as asked.
Nothing about the processor changes: the same transactions, the same fencing
tokens, the same event log, on a store shared by every process.

``python -m failfirst.realrun.process worker --db PATH --name w1`` runs one worker
until it is killed, its parent dies or its deadline passes.
:mod:`failfirst.realrun.fleet` starts, kills and restarts these processes (and binds
each to its parent before it even starts); :func:`drive` also serves the peers'
failfirst adapter and the benchmark's profile.

A child started by hand is bound too: given its parent's pid (``--parent-pid``), on
Linux it asks the kernel for SIGKILL when the parent dies (``PR_SET_PDEATHSIG``), then
checks that its parent is still the one named, which covers a parent that died
before the request; everywhere, :func:`drive` checks the parent between steps. A
child ignores Ctrl-C: the parent decides when it stops.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import MAX_BATCH, HandlerContext, JobQueue, QueueConfig
from failfirst.processor.worker import ActorLoop, Idle, Point, WorkerConfig, worker_loop
from failfirst.store import Store, StoreError, open_store
from failfirst.store.clock import RealClock

#: The job type of real runs (stress, resume and the benchmarks).
JOB_TYPE = "effect"
#: The one effect part each job writes: one row in ``effects``.
EFFECT_PART = "row"
#: A driven loop stops after this many steps: every loop is bounded.
MAX_DRIVE_STEPS = 50_000_000


def write_one_row(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """The handler of real runs: one effect row, carrying the job's number."""
    return [(EFFECT_PART, int(payload["n"]))]


HANDLERS = {JOB_TYPE: write_one_row}


@dataclass(frozen=True)
class RealConfig:
    """Settings of a real run. Leases are short so a killed worker's jobs come back fast."""

    lease_s: float = 2.0
    heartbeat_s: float = 0.5
    #: Jobs a worker claims in one transaction (and commits in one): 1 = no batching.
    batch: int = 1
    #: An idle actor polls at least this often (new jobs, expired leases).
    idle_poll_s: float = 0.05
    #: Every process exits after this long, whatever happens (orphans cannot linger).
    max_runtime_s: float = 600.0
    #: Simulated handler time per job (slept, heartbeats kept): 0 = the one row is all the work.
    work_s: float = 0.0

    def __post_init__(self) -> None:
        assert 0 < self.heartbeat_s < self.lease_s
        assert 1 <= self.batch <= MAX_BATCH
        assert 0 < self.idle_poll_s <= 1.0 and self.max_runtime_s > 0

    def queue_config(self) -> QueueConfig:
        return QueueConfig(lease_s=self.lease_s, heartbeat_s=self.heartbeat_s)

    def worker_config(self) -> WorkerConfig:
        return WorkerConfig(work_s=self.work_s, batch=self.batch)

    def argv(self) -> list[str]:
        return ["--lease-s", repr(self.lease_s), "--heartbeat-s", repr(self.heartbeat_s),
                "--batch", str(self.batch), "--idle-poll-s", repr(self.idle_poll_s),
                "--max-runtime-s", repr(self.max_runtime_s), "--work-s", repr(self.work_s)]


def guardrails(guard: bool) -> Guardrails:
    """Real runs study one guardrail: ``guard=False`` removes the idempotent commit boundary."""
    return Guardrails() if guard else Guardrails().without("idempotent_commit")


#: A worker whose connection to the store broke exits with this code (EX_TEMPFAIL): what
#: it held is the store's to take back, as after a crash; a supervisor restarts it.
EXIT_CONNECTION_LOST = 75
#: A store URL may carry a password: children read it from here, never from their argv.
STORE_URL_ENV = "FAILFIRST_STORE_URL"


def open_queue(db: str, guard: bool, config: RealConfig, *, create: bool = False) -> JobQueue:
    """``db``: a SQLite path, a store URL, or ``env`` (the URL in $FAILFIRST_STORE_URL).
    The clock is the store's own: the wall clock for a file, the server's for PostgreSQL."""
    if db == "env":
        db = os.environ[STORE_URL_ENV]
    return queue_on(open_store(db, None, create=create), guard, config)


def queue_on(store: Store, guard: bool, config: RealConfig) -> JobQueue:
    """The queue of a real run over an open store."""
    # Jitter only spreads retries: each process draws its own.
    return JobQueue(store, HANDLERS, guardrails=guardrails(guard), config=config.queue_config(),
                      jitter_seed=f"jitter:{os.getpid()}")


def drive(
    loop: ActorLoop,
    *,
    idle_poll_s: float,
    deadline_s: float,
    now_s: Callable[[], float] | None = None,
    sleep: Callable[[float], None] = time.sleep,  # real-time: the driver really waits
    alive: Callable[[], bool] = lambda: True,
) -> str:
    """Run one actor loop to its end, sleeping as each step asks.

    A :class:`~failfirst.processor.worker.Point` waits ``wait_s``; an
    :class:`~failfirst.processor.worker.Idle` waits until its wake time, but never longer than
    ``idle_poll_s`` (other processes make work appear).
    Returns why the loop ended: "done", "deadline" or "orphaned".
    """
    now_s = now_s or RealClock().now_s
    for steps in range(MAX_DRIVE_STEPS):
        try:
            step = next(loop)
        except StopIteration:
            return "done"
        if isinstance(step, Point):
            wait_s = step.wait_s
        else:
            assert isinstance(step, Idle)
            wake_s = step.wake()
            wait_s = idle_poll_s if wake_s is None else min(max(wake_s - now_s(), 0.0), idle_poll_s)
            wait_s = max(wait_s, 0.001)  # an idle actor never spins
        if wait_s > 0 or steps % 64 == 0:
            if now_s() >= deadline_s:
                loop.close()
                return "deadline"
            if not alive():
                loop.close()
                return "orphaned"
        if wait_s > 0:
            sleep(wait_s)
    loop.close()
    return "max_steps"


#: linux/prctl.h: deliver a signal to this process when its parent dies.
PR_SET_PDEATHSIG = 1
#: Exit code of a child whose parent was already gone when it started.
EXIT_ORPHANED = 3


def die_with_parent(parent_pid: int | None) -> bool:
    """Bind this process's life to ``parent_pid``'s: on Linux the kernel sends SIGKILL
    when the parent dies. Returns False when the parent is already gone (the request
    came too late: this process was reparented before it could make it)."""
    if parent_pid is None:
        return True
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    return os.getppid() == parent_pid


def _parent_alive(parent_pid: int | None) -> Callable[[], bool]:
    parent = os.getppid() if parent_pid is None else parent_pid
    return lambda: os.getppid() == parent


def run_worker(db: str, name: str, guard: bool, config: RealConfig,
               parent_pid: int | None = None) -> str:
    queue = open_queue(db, guard, config)

    loop = worker_loop(name, queue, config.worker_config(), seed=name)
    return drive(loop, idle_poll_s=config.idle_poll_s,
                 deadline_s=queue.store.clock.now_s() + config.max_runtime_s,
                 alive=_parent_alive(parent_pid))


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0: {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m failfirst.realrun.process",
                                     description="one real worker process")
    parser.add_argument("role", choices=("worker",))
    parser.add_argument("--db", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--guard", choices=("on", "off"), default="on")
    parser.add_argument("--lease-s", type=_positive_float, default=RealConfig.lease_s)
    parser.add_argument("--heartbeat-s", type=_positive_float, default=RealConfig.heartbeat_s)
    parser.add_argument("--batch", type=int, default=RealConfig.batch)
    parser.add_argument("--idle-poll-s", type=_positive_float, default=RealConfig.idle_poll_s)
    parser.add_argument("--max-runtime-s", type=_positive_float, default=RealConfig.max_runtime_s)
    parser.add_argument("--work-s", type=float, default=RealConfig.work_s)
    parser.add_argument("--parent-pid", type=int, default=None,
                        help="exit when this process is no longer the parent")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    if not die_with_parent(args.parent_pid):
        return EXIT_ORPHANED
    config = RealConfig(lease_s=args.lease_s, heartbeat_s=args.heartbeat_s, batch=args.batch,
                        idle_poll_s=args.idle_poll_s, max_runtime_s=args.max_runtime_s,
                        work_s=args.work_s)
    try:
        run_worker(args.db, args.name, args.guard == "on", config, args.parent_pid)
    except StoreError as exc:  # the server went away (terminated, crashed, unreachable)
        print(f"{args.name}: {exc}", file=sys.stderr)
        return EXIT_CONNECTION_LOST
    return 0


if __name__ == "__main__":
    sys.exit(main())
