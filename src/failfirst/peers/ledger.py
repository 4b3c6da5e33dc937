"""The independent ledger and the workload every system runs.

The ledger is a plain SQLite table in WAL mode, outside every queue under test,
with no uniqueness: a second execution of a job is a second row, never an error.
A handler appends ``started`` (job id, its own pid), works ``FAILFIRST_PEERS_WORK_S``
seconds, appends ``finished``. The pid is the process that executes the job (for
prefork pools the pool child), so the ledger also says which process to kill.

Workers of every system import this module; the ledger's path and the work time
come from the environment the harness gives each worker command.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass

ENV_LEDGER = "FAILFIRST_PEERS_LEDGER"
ENV_WORK_S = "FAILFIRST_PEERS_WORK_S"
STARTED = "started"
FINISHED = "finished"
#: A writer waits this long for the file's write lock (many workers append at once).
BUSY_TIMEOUT_MS = 10_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    job  TEXT    NOT NULL,
    kind TEXT    NOT NULL CHECK (kind IN ('started', 'finished')),
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
    assert kind in (STARTED, FINISHED)
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


def run_job(job: str, *, finished: bool = True) -> None:
    """The workload's handler: ``started``, a fixed short work time, ``finished``.

    ``finished=False`` is failfirst's handler, whose ``finished`` row is its effect,
    committed by the processor with the job's completion (see ``sys_failfirst``).
    """
    path = os.environ[ENV_LEDGER]
    append(path, job, STARTED)
    time.sleep(work_s())  # real-time: the job's fixed work
    if finished:
        append(path, job, FINISHED)
