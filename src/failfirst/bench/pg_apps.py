"""The peers' side of the PostgreSQL throughput benchmark: procrastinate and pgqueuer
apps whose one task writes one row in ``effects``.

The apps are the crash experiment's (:mod:`failfirst.peers.sys_procrastinate`,
:mod:`failfirst.peers.sys_pgqueuer`) with one more task, ``effect``. Each handler
inserts its row on the worker's own database connection (procrastinate: its
connector's pool; pgqueuer: the connection its driver dequeues on), one statement in
autocommit, so one commit per job at the server's ``synchronous_commit`` (``on``).
The row records the session's ``synchronous_commit`` (a column default, evaluated by
the session that inserts it), so the benchmark can check every effect's durability
from the table afterwards.

Imported by the benchmark (to create the tables and enqueue) and by the worker
processes it starts (``procrastinate --app failfirst.bench.pg_apps.procrastinate_app worker``;
``pgq run failfirst.bench.pg_apps:create_pgqueuer``); the database comes from the environment
variable :data:`DSN_ENV`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from failfirst.peers import sys_pgqueuer, sys_procrastinate

#: The database of one run (a throwaway database of its own).
DSN_ENV = sys_pgqueuer.ENV_DSN
#: The effect table of both peers: one row per executed job, with its session's durability.
EFFECTS_SQL = ("CREATE TABLE effects (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
               "n BIGINT NOT NULL, sync TEXT NOT NULL DEFAULT current_setting('synchronous_commit'))")
TASK = "effect"


# -- procrastinate ----------------------------------------------------------------------


def make_procrastinate(dsn: str) -> Any:
    """The crash experiment's app (stalled-job retry off), plus the ``effect`` task."""
    app = sys_procrastinate.make_app({"dsn": dsn, "retry_stalled": False})

    @app.task(name=TASK, pass_context=True)
    async def effect(context: Any, n: int) -> None:
        await context.app.connector.execute_query_async(
            "INSERT INTO effects (n) VALUES (%(n)s)", n=n)

    app.bench_effect = effect
    return app


def __getattr__(name: str) -> Any:
    """``procrastinate --app failfirst.bench.pg_apps.procrastinate_app``."""
    if name == "procrastinate_app":
        return make_procrastinate(os.environ[DSN_ENV])
    raise AttributeError(name)


def procrastinate_setup(dsn: str, jobs: int) -> None:
    """procrastinate's schema, the effect table, and ``jobs`` deferred jobs (one batch)."""
    import psycopg

    app = make_procrastinate(dsn)
    with app.open():
        app.schema_manager.apply_schema()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(EFFECTS_SQL)
        app.bench_effect.batch_defer(*[{"n": n} for n in range(jobs)])


def procrastinate_command() -> list[str]:
    """procrastinate's own worker command, at its default concurrency (one job at a time)."""
    return [sys.executable, "-m", "procrastinate", "--app", "failfirst.bench.pg_apps.procrastinate_app",
            "worker"]


# -- pgqueuer ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def create_pgqueuer() -> AsyncIterator[Any]:
    """``pgq run failfirst.bench.pg_apps:create_pgqueuer``: the worker's factory."""
    import asyncpg
    from pgqueuer import AsyncpgDriver, PgQueuer

    conn = await asyncpg.connect(os.environ[DSN_ENV])
    driver = AsyncpgDriver(conn)
    pgq = PgQueuer(driver)

    @pgq.entrypoint(TASK)
    async def effect(job: Any) -> None:
        await driver.execute("INSERT INTO effects (n) VALUES ($1)", int(job.payload))

    try:
        yield pgq
    finally:
        await conn.close()


def pgqueuer_setup(dsn: str, jobs: int) -> None:
    """pgqueuer's tables, the effect table, and ``jobs`` enqueued jobs (one statement)."""
    import asyncio

    async def setup(queries: Any, conn: Any) -> None:
        await queries.install()
        await conn.execute(EFFECTS_SQL)
        await queries.enqueue([TASK] * jobs, [str(n).encode() for n in range(jobs)], [0] * jobs)

    asyncio.run(sys_pgqueuer._with_queries(dsn, setup))


def pgqueuer_command() -> list[str]:
    """What ``pgq run`` runs, at its defaults (batches of 10 jobs, no concurrency limit):
    ``pgqueuer.run`` on the factory (this version's ``pgq run`` fails at start on its
    ``--log-level`` default, as the crash experiment notes)."""
    import sys

    return [sys.executable, "-m", "failfirst.bench.pg_apps", "pgqueuer"]


def main(argv: list[str]) -> int:
    if argv != ["pgqueuer"]:
        print("usage: python -m failfirst.bench.pg_apps pgqueuer", file=sys.stderr)
        return 2
    import asyncio

    import pgqueuer

    asyncio.run(pgqueuer.run(create_pgqueuer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
