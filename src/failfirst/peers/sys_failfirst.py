"""failfirst on a SQLite file and on PostgreSQL: leases with heartbeats, a reaper, the
idempotent commit.

The handler appends its ``started`` row to the ledger and returns its effect; the
processor commits that effect (one row in ``effects``, the job's ``finished`` row)
in the same transaction as the job's completion, fenced by the lease's token. A
killed worker's lease expires after ``lease_s``; the reaper hands the job back.
Workers and the reaper are plain processes that the harness restarts when they die.
On PostgreSQL every lease decision uses the server's clock; the run has a database of
its own.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from typing import Any

from failfirst.peers import ledger, services
from failfirst.peers.harness import Adapter, RunContext
from failfirst.peers.judge import REPORTED_FAILED, REPORTED_HELD
from failfirst.peers.ledger import FINISHED, Row
from failfirst.processor import backoff
from failfirst.processor.queue import HandlerContext, JobQueue, QueueConfig
from failfirst.processor.worker import WorkerConfig, reaper_loop, worker_loop
from failfirst.realrun.process import drive
from failfirst.store import open_store

JOB_TYPE = "peer"
LEASE_S = 2.0
HEARTBEAT_S = 0.5
#: A failed attempt waits 1 to 2 s before the next (equal jitter around a 2 s ceiling).
BACKOFF_BASE_S = 2.0
IDLE_POLL_S = 0.05
MAX_RUNTIME_S = 900.0


def peer_handler(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """``started`` in the ledger; the work time; the ``finished`` row is the effect.

    A job targeted at the effect point announces ``committing`` and holds: its effect is
    ready and not committed (failfirst commits it with the completion, in one transaction).
    """
    ledger.begin(payload["job"])
    ctx.sleep(ledger.work_s())  # the worker waits this long (heartbeating) before its commit
    ledger.effect(payload["job"], ledger.COMMITTING)
    return [("row", int(payload["job"][1:]))]


def _queue(store_url: str, create: bool = False) -> JobQueue:
    return JobQueue(open_store(store_url, create=create), {JOB_TYPE: peer_handler},
                    config=QueueConfig(lease_s=LEASE_S, heartbeat_s=HEARTBEAT_S,
                                       backoff_base_s=BACKOFF_BASE_S, backoff=backoff.EQUAL_JITTER),
                    jitter_seed=f"jitter:{os.getpid()}")


#: One ``finished`` row per committed effect: the job, the lease owner, the commit's time.
_FINISHED_SQL = (
    "SELECT f.id, {job}, a.worker,"
    " (SELECT max(v.t) FROM events v WHERE v.job = f.job_id AND v.token = f.token)"
    " FROM effects f JOIN jobs j ON j.id = f.job_id"
    " JOIN attempts a ON a.job_id = f.job_id AND a.token = f.token ORDER BY f.id")
_STATES_SQL = "SELECT {job}, state FROM jobs j"


class FailfirstSqlite(Adapter):
    system = "failfirst"
    package = "failfirst"
    broker = "SQLite"
    config = f"lease {LEASE_S:g} s, heartbeat, reaper, idempotent commit"
    recovery_s = LEASE_S
    effect_kind = ledger.COMMITTING
    no_backoff = ""
    no_prefetch = "a worker claims one job at a time, under a lease"
    note = ("A killed worker's lease expires and the reaper hands the job back; the effect "
            "commits with the completion, so a re-run can never write it twice.")

    def store_url(self, run: RunContext) -> str:
        return "sqlite:" + os.path.join(run.folder, "failfirst.db")

    def _query(self, run: RunContext, sql: str) -> list[tuple]:
        conn = sqlite3.connect(self.store_url(run).removeprefix("sqlite:"), timeout=10)
        try:
            return conn.execute(sql.format(job="json_extract(j.payload, '$.job')")).fetchall()
        finally:
            conn.close()

    def setup(self, run: RunContext) -> None:
        _queue(self.store_url(run), create=True).store.close()

    def enqueue(self, run: RunContext, job_ids: list[str]) -> None:
        queue = _queue(self.store_url(run))
        try:
            queue.enqueue_many([{"type": JOB_TYPE, "payload": {"job": j}} for j in job_ids])
        finally:
            queue.store.close()

    def worker_commands(self, run: RunContext) -> list[list[str]]:
        base = [sys.executable, "-m", "failfirst.peers.sys_failfirst", "--store", self.store_url(run)]
        return [[*base, "worker"] for _ in range(run.settings.workers)] + [[*base, "reaper"]]

    def finished_rows(self, run: RunContext) -> list[Row]:
        return [Row(-seq, job, FINISHED, int(worker.removeprefix("w")), t_s)
                for seq, job, worker, t_s in self._query(run, _FINISHED_SQL)]

    def public_state(self, run: RunContext, job_ids: list[str]) -> dict[str, str]:
        report = {"dead": REPORTED_FAILED, "pending": REPORTED_HELD, "leased": REPORTED_HELD}
        return {job: report[state] for job, state in self._query(run, _STATES_SQL)
                if state in report}


class FailfirstPostgres(FailfirstSqlite):
    broker = "PostgreSQL"
    services = ("postgresql",)

    def __init__(self) -> None:
        self._db: Any = None
        self._dsn = ""

    def store_url(self, run: RunContext) -> str:
        return self._dsn

    def _query(self, run: RunContext, sql: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(self._dsn, connect_timeout=5) as conn:
            conn.execute("SET search_path TO failfirst")
            return conn.execute(sql.format(job="j.payload::json->>'job'")).fetchall()

    def setup(self, run: RunContext) -> None:
        self._db = services.pg_database(run.run_id.lower())
        self._dsn = self._db.__enter__()
        super().setup(run)

    def teardown(self, run: RunContext) -> None:
        if self._db is not None:
            self._db.__exit__(None, None, None)
            self._db = None


ADAPTERS = [FailfirstSqlite, FailfirstPostgres]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m failfirst.peers.sys_failfirst")
    parser.add_argument("--store", required=True, metavar="URL")
    parser.add_argument("role", choices=("worker", "reaper"))
    args = parser.parse_args(argv)
    queue = _queue(args.store)
    name = f"w{os.getpid()}"  # the ledger's pid is recoverable from the lease owner
    loop = (worker_loop(name, queue, WorkerConfig(work_s=0.0)) if args.role == "worker"
            else reaper_loop(name, queue))
    drive(loop, idle_poll_s=IDLE_POLL_S, deadline_s=queue.store.clock.now_s() + MAX_RUNTIME_S)
    return 0


if __name__ == "__main__":
    sys.exit(main())
