"""pgqueuer on PostgreSQL: ``pgq run``, with its heartbeat-based re-pick of stalled jobs.

A picked job carries a heartbeat that its worker refreshes; a job whose heartbeat is
older than ``--heartbeat-timeout`` is picked again by another worker. The experiment
sets it to 3 s (the default is 30 s). Each worker takes one job per fetch
(``--batch-size 1``); the harness restarts a killed ``pgq run`` command.
Isolation: a database of the run's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from failfirst.peers import ledger, services
from failfirst.peers.harness import Adapter, RunContext
from failfirst.peers.judge import REPORTED_FAILED, REPORTED_HELD

ENV_DSN = "FAILFIRST_PEERS_PGQUEUER_DSN"
HEARTBEAT_TIMEOUT_S = 3.0


@contextlib.asynccontextmanager
async def create_pgqueuer() -> AsyncIterator[Any]:
    """``pgq run failfirst.peers.sys_pgqueuer:create_pgqueuer``: the worker's factory."""
    import asyncpg
    from pgqueuer import AsyncpgDriver, PgQueuer

    conn = await asyncpg.connect(os.environ[ENV_DSN])
    pgq = PgQueuer(AsyncpgDriver(conn))

    @pgq.entrypoint("work")
    async def work(job: Any) -> None:
        await asyncio.to_thread(ledger.run_job, job.payload.decode())

    try:
        yield pgq
    finally:
        await conn.close()


async def _with_queries(dsn: str, action: Any) -> Any:
    import asyncpg
    from pgqueuer import AsyncpgDriver, Queries

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await action(Queries(AsyncpgDriver(conn)), conn)
    finally:
        await conn.close()


class PgQueuer(Adapter):
    system = "pgqueuer"
    package = "pgqueuer"
    broker = "PostgreSQL"
    config = f"heartbeat_timeout {HEARTBEAT_TIMEOUT_S:g} s"
    recovery_s = HEARTBEAT_TIMEOUT_S
    services = ("postgresql",)
    no_backoff = "no retry executor configured: a job that raises is logged as an exception"
    no_prefetch = "each fetch takes one job (batch_size 1): nothing waits behind a running job"
    note = ("A picked job whose heartbeat is older than the heartbeat timeout is picked again "
            "by another worker.")

    def __init__(self) -> None:
        self._db: Any = None
        self._dsn = ""
        self._jobs: dict[int, str] = {}

    def setup(self, run: RunContext) -> None:
        self._db = services.pg_database(run.run_id.lower())
        self._dsn = self._db.__enter__()

        async def install(queries: Any, _conn: Any) -> None:
            await queries.install()

        asyncio.run(_with_queries(self._dsn, install))

    def worker_env(self, run: RunContext) -> dict[str, str]:
        return {ENV_DSN: self._dsn}

    def enqueue(self, run: RunContext, job_ids: list[str]) -> None:
        async def enqueue(queries: Any, _conn: Any) -> list[int]:
            return await queries.enqueue(["work"] * len(job_ids), [j.encode() for j in job_ids],
                                         [0] * len(job_ids))

        ids = asyncio.run(_with_queries(self._dsn, enqueue))
        self._jobs = {int(i): job for i, job in zip(ids, job_ids, strict=True)}

    def worker_commands(self, run: RunContext) -> list[list[str]]:
        # ``pgqueuer.run``, which is what ``pgq run`` calls (this version's ``pgq run``
        # fails at start on its --log-level default).
        return [[sys.executable, "-m", "failfirst.peers.sys_pgqueuer"]
                for _ in range(run.settings.workers)]

    def public_state(self, run: RunContext, job_ids: list[str]) -> dict[str, str]:
        async def read(_queries: Any, conn: Any) -> list[Any]:
            # The queue table, then the log of jobs that left it (an exception, a cancel).
            held = await conn.fetch("SELECT convert_from(payload, 'UTF8') AS job, status::text AS status "
                                    "FROM pgqueuer")
            gone = await conn.fetch("SELECT job_id, status::text AS status, traceback FROM pgqueuer_log "
                                    "WHERE status::text NOT IN ('queued', 'picked', 'successful')")
            return list(held) + [dict(r) for r in gone]

        report = {}
        for row in asyncio.run(_with_queries(self._dsn, read)):
            job = row["job"] if "job" in row else self._jobs[row["job_id"]]
            if row["status"] in ("queued", "picked"):
                report.setdefault(job, REPORTED_HELD)
            elif row["status"] in ("failed", "exception"):
                report[job] = REPORTED_FAILED
        return report

    def teardown(self, run: RunContext) -> None:
        if self._db is not None:
            self._db.__exit__(None, None, None)
            self._db = None


ADAPTERS = [PgQueuer]


def main() -> int:
    """One worker, as ``pgq run ... --batch-size 1 --heartbeat-timeout 3`` would run it."""
    from datetime import timedelta

    import pgqueuer

    asyncio.run(pgqueuer.run(create_pgqueuer, batch_size=1, max_concurrent_tasks=2,
                             heartbeat_timeout=timedelta(seconds=HEARTBEAT_TIMEOUT_S),
                             dequeue_timeout=timedelta(seconds=1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
