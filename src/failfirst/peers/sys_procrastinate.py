"""procrastinate on PostgreSQL, with and without retrying stalled jobs.

``procrastinate worker`` processes (one job at a time each). A killed worker leaves
its job in status ``doing``; procrastinate does not take it back by itself. Its
documentation's answer is a periodic task that asks for stalled jobs (those whose
worker has sent no heartbeat lately) and retries them: the second configuration
runs that task every second, with a 0.5 s heartbeat and a 3 s threshold (the
defaults are 10 s and 30 s). The harness restarts a killed worker command.
Isolation: a database of the run's own.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from failfirst.peers import ledger, services
from failfirst.peers.harness import Adapter, RunContext
from failfirst.peers.judge import REPORTED_FAILED, REPORTED_HELD

ENV = "FAILFIRST_PEERS_PROCRASTINATE"
STALLED_S = 3.0
HEARTBEAT_S = 0.5


def make_app(settings: dict[str, Any]):  # noqa: ANN201 - procrastinate is an optional group
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=settings["dsn"]),
        worker_defaults={"update_heartbeat_interval": HEARTBEAT_S,
                         "stalled_worker_timeout": STALLED_S},
    )

    @app.task(name="work")
    def work(job: str) -> None:
        ledger.run_job(job)

    if settings["retry_stalled"]:
        @app.periodic(cron="* * * * * *")  # every second (the sixth field is seconds)
        @app.task(name="retry_stalled", queueing_lock="retry_stalled", pass_context=True)
        async def retry_stalled(context: Any, timestamp: int) -> None:
            stalled = await context.app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_S)
            for job in stalled:
                await context.app.job_manager.retry_job(job)

    app.peers_work = work
    return app


def __getattr__(name: str) -> Any:
    """``procrastinate --app failfirst.peers.sys_procrastinate.worker_app``."""
    if name == "worker_app":
        return make_app(json.loads(os.environ[ENV]))
    raise AttributeError(name)


class Procrastinate(Adapter):
    system = "procrastinate"
    package = "procrastinate"
    broker = "PostgreSQL"
    config = "default (stalled jobs not retried)"
    retry_stalled = False
    services = ("postgresql",)
    no_backoff = "no retry strategy configured (a task retries only with retry=...)"
    no_prefetch = "a worker with concurrency 1 fetches one job when it is free"
    note = ("A job whose worker died stays 'doing'; procrastinate leaves retrying stalled jobs "
            "to the application.")

    def __init__(self) -> None:
        self._db: Any = None
        self._dsn = ""

    def settings(self) -> dict[str, Any]:
        return {"dsn": self._dsn, "retry_stalled": self.retry_stalled}

    def setup(self, run: RunContext) -> None:
        self._db = services.pg_database(run.run_id.lower())
        self._dsn = self._db.__enter__()
        app = make_app(self.settings())
        with app.open():
            app.schema_manager.apply_schema()

    def worker_env(self, run: RunContext) -> dict[str, str]:
        return {ENV: json.dumps(self.settings())}

    def enqueue(self, run: RunContext, job_ids: list[str]) -> None:
        app = make_app(self.settings())
        with app.open():
            for job in job_ids:
                app.peers_work.defer(job=job)

    def worker_commands(self, run: RunContext) -> list[list[str]]:
        return [[sys.executable, "-m", "procrastinate", "--app",
                 "failfirst.peers.sys_procrastinate.worker_app", "worker", "--concurrency", "1"]
                for _ in range(run.settings.workers)]

    def public_state(self, run: RunContext, job_ids: list[str]) -> dict[str, str]:
        import psycopg

        with psycopg.connect(self._dsn, connect_timeout=5) as conn:
            rows = conn.execute("SELECT args->>'job', status FROM procrastinate_jobs "
                                "WHERE task_name = 'work'").fetchall()
        report = {}
        for job, status in rows:
            if status in ("todo", "doing"):
                report[job] = REPORTED_HELD
            elif status in ("failed", "aborted", "cancelled"):
                report[job] = REPORTED_FAILED
        return report

    def teardown(self, run: RunContext) -> None:
        if self._db is not None:
            self._db.__exit__(None, None, None)
            self._db = None


class ProcrastinateStalled(Procrastinate):
    config = f"stalled jobs retried (heartbeat {HEARTBEAT_S:g} s, stalled after {STALLED_S:g} s)"
    retry_stalled = True
    recovery_s = STALLED_S + 1.0
    note = ("A periodic task retries the jobs of workers whose heartbeat stopped, as the "
            "documentation's how-to on stalled jobs shows.")


ADAPTERS = [Procrastinate, ProcrastinateStalled]
