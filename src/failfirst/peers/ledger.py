"""The independent ledger and the workload every system runs.

The ledger is a plain SQLite table in WAL mode, outside every queue under test,
with no uniqueness: a second execution of a job is a second row, never an error.
A handler appends ``started`` (job id, its own pid), works ``FAILFIRST_PEERS_WORK_S``
seconds, appends ``finished`` (its effect). The pid is the process that executes the
job (for prefork pools the pool child), so the ledger also says which process to kill.

Named points (:mod:`failfirst.peers.faults`): the harness names a few *targeted* jobs
in ``FAILFIRST_PEERS_HOLD`` (job id -> ledger kind). On its first attempt only, a
targeted job announces the point with its row and then HOLDS there (a bounded wait,
:data:`HOLD_S`) so that the harness's SIGKILL lands exactly at that point:

- ``started``: claimed, before the effect;
- ``finished``: the effect is written, the task has not returned, so the system has
  not acknowledged it;
- ``committing``: failfirst's handler has returned its effect, which the processor
  commits with the job's completion (failfirst has no moment between an effect and
  its acknowledgement: this is the nearest one);
- ``retry``: the job fails its first attempt (it raises :class:`RetryRequested`
  after the row) so that the system waits out a retry's backoff; it does not hold.

Non-targeted jobs never hold and write only ``started`` and ``finished``.

Workers of every system import this module; the ledger's path and the work time
come from the environment the harness gives each worker command.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass

ENV_LEDGER = "FAILFIRST_PEERS_LEDGER"
ENV_WORK_S = "FAILFIRST_PEERS_WORK_S"
ENV_HOLD = "FAILFIRST_PEERS_HOLD"
#: How long a targeted job holds, when a fault wants it to go on afterwards (failfirst.peers.deploy).
ENV_HOLD_S = "FAILFIRST_PEERS_HOLD_S"
STARTED = "started"
FINISHED = "finished"
COMMITTING = "committing"
RETRY = "retry"
KINDS = (STARTED, FINISHED, COMMITTING, RETRY)
#: A targeted job waits at most this long at its point for the harness's SIGKILL.
HOLD_S = 30.0
#: A writer waits this long for the file's write lock (many workers append at once).
BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    job  TEXT    NOT NULL,
    kind TEXT    NOT NULL CHECK (kind IN ('started', 'finished', 'committing', 'retry')),
    pid  INTEGER NOT NULL,
    t_s  REAL    NOT NULL
)
"""


@dataclass(frozen=True)
class Row:
    seq: int
    job: str
    kind: str
    pid: int
    t_s: float


_connections: dict[tuple[int, int, str], sqlite3.Connection] = {}


def _connect(path: str) -> sqlite3.Connection:
    # One connection per process, thread and file: a prefork child must not reuse its
    # parent's, and a handler run in a thread pool must not share another thread's.
    key = (os.getpid(), threading.get_ident(), path)
    conn = _connections.get(key)
    if conn is None:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _connections[key] = conn
    return conn


def create(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(SCHEMA)
    finally:
        conn.close()


def append(path: str, job: str, kind: str, pid: int | None = None) -> None:
    """One row, committed before this returns (autocommit): a SIGKILL after it keeps it."""
    assert kind in KINDS
    _connect(path).execute("INSERT INTO ledger (job, kind, pid, t_s) VALUES (?, ?, ?, ?)",
                           (job, kind, os.getpid() if pid is None else pid,
                            time.time()))  # real-time: wall clock, comparable across processes


def read(path: str, after_seq: int = 0) -> list[Row]:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        return [Row(*r) for r in conn.execute(
            "SELECT seq, job, kind, pid, t_s FROM ledger WHERE seq > ? ORDER BY seq", (after_seq,))]
    finally:
        conn.close()


def work_s() -> float:
    return float(os.environ.get(ENV_WORK_S, "0.2"))


class RetryRequested(RuntimeError):
    """Raised by a job targeted at the ``retry`` point on its first attempt."""


def targets() -> dict[str, str]:
    """The targeted jobs of this run: job id -> the ledger kind where it holds."""
    return json.loads(os.environ.get(ENV_HOLD, "{}"))


def _first_at(path: str, job: str, kind: str) -> bool:
    """Whether ``job`` has no ``kind`` row yet: its first attempt at that point."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        return conn.execute("SELECT count(*) FROM ledger WHERE job = ? AND kind = ?",
                            (job, kind)).fetchone()[0] == 0
    finally:
        conn.close()


def hold_s() -> float:
    """How long a targeted job holds: :data:`HOLD_S`, or the run's own (a deploy fault's job
    holds a moment and then goes on: a long task, a job whose broker restarts meanwhile)."""
    return float(os.environ.get(ENV_HOLD_S, HOLD_S))


def hold() -> None:
    """Wait for the harness's SIGKILL (bounded: a miss ends the wait, and the run fails)."""
    time.sleep(hold_s())  # real-time: the harness kills this process well within it


def begin(job: str) -> None:
    """A job's first steps: the ``retry`` failure when targeted there (first attempt), then
    ``started``, held there when targeted at it."""
    path = os.environ[ENV_LEDGER]
    aim = targets().get(job)
    if aim == RETRY and _first_at(path, job, RETRY):
        append(path, job, RETRY)
        raise RetryRequested(f"{job}: its first attempt fails, to wait out a retry's backoff")
    first = aim == STARTED and _first_at(path, job, STARTED)
    append(path, job, STARTED)
    if first:
        hold()


def effect(job: str, kind: str = FINISHED) -> None:
    """The effect's row (``finished``), or failfirst's ``committing`` announcement (written
    only for a targeted job); held there when the job is targeted at it."""
    assert kind in (FINISHED, COMMITTING)
    path = os.environ[ENV_LEDGER]
    here = targets().get(job) == kind and _first_at(path, job, kind)
    if kind == FINISHED or here:
        append(path, job, kind)
    if here:
        hold()


def run_job(job: str) -> None:
    """The workload's handler: ``started``, a fixed short work time, ``finished``; a job
    targeted at a point holds there on its first attempt (see the module's docstring)."""
    begin(job)
    time.sleep(work_s())  # real-time: the job's fixed work
    effect(job)
