"""huey, on Redis and on SQLite: the consumer with worker processes.

``huey_consumer -k process -w N`` runs N worker processes; the harness kills the one
executing the job, and the consumer's health check starts a new one (every 10 s by
default). huey dequeues a task before it runs it and keeps no record of the task
while it runs. Isolation: a huey name of the run's own (its Redis keys carry it), or
a SQLite file of the run's own.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Any

from failfirst.peers import ledger, services
from failfirst.peers.harness import Adapter, RunContext
from failfirst.peers.judge import REPORTED_HELD

ENV = "FAILFIRST_PEERS_HUEY"
#: The consumer's default health-check interval: a dead worker process is replaced within it.
HEALTH_CHECK_S = 10.0


def make_huey(settings: dict[str, Any]):  # noqa: ANN201 - huey is an optional group
    from huey import RedisHuey, SqliteHuey

    if settings["storage"] == "redis":
        huey = RedisHuey(settings["name"], host=services.redis_host(), port=services.redis_port(),
                         db=services.REDIS_DB)
    else:
        huey = SqliteHuey(settings["name"], filename=settings["path"])

    @huey.task(name="work")
    def work(job: str) -> None:
        ledger.run_job(job)

    huey.peers_work = work  # the task wrapper, for the enqueuing side
    return huey


def __getattr__(name: str) -> Any:
    """``huey_consumer failfirst.peers.sys_huey.worker_huey``: the run's huey."""
    if name == "worker_huey":
        return make_huey(json.loads(os.environ[ENV]))
    raise AttributeError(name)


class HueyRedis(Adapter):
    system = "huey"
    package = "huey"
    broker = "Redis"
    storage = "redis"
    config = "process workers (default settings)"
    restart = "its own parent (consumer health check)"
    recovery_s = HEALTH_CHECK_S
    services: tuple[str, ...] = ("redis",)
    no_backoff = "no retries configured (a huey task retries only with retries=N)"
    no_prefetch = "a worker process dequeues one task when it is free: nothing is reserved ahead"
    note = ("huey removes a task from the queue when a worker takes it; a worker killed "
            "mid-task leaves no trace of it.")

    def settings(self, run: RunContext) -> dict[str, Any]:
        return {"storage": self.storage, "name": f"{run.run_id}-huey",
                "path": os.path.join(run.folder, "huey.db")}

    def worker_env(self, run: RunContext) -> dict[str, str]:
        return {ENV: json.dumps(self.settings(run))}

    def enqueue(self, run: RunContext, job_ids: list[str]) -> None:
        huey = make_huey(self.settings(run))
        for job in job_ids:
            huey.enqueue(huey.peers_work.s(job))

    def worker_commands(self, run: RunContext) -> list[list[str]]:
        consumer = shutil.which("huey_consumer", path=os.path.dirname(sys.executable)) or "huey_consumer"
        return [[consumer, "failfirst.peers.sys_huey.worker_huey", "-k", "process",
                 "-w", str(run.settings.workers), "-m", "1", "-q"]]

    def public_state(self, run: RunContext, job_ids: list[str]) -> dict[str, str]:
        huey = make_huey(self.settings(run))
        report = {}
        for task in [*huey.pending(), *huey.scheduled()]:
            report[str(task.args[0])] = REPORTED_HELD
        return report

    def teardown(self, run: RunContext) -> None:
        if self.storage == "redis":
            make_huey(self.settings(run)).storage.flush_all()  # only this huey's own keys


class HueySqlite(HueyRedis):
    broker = "SQLite"
    storage = "sqlite"
    services = ()


ADAPTERS = [HueyRedis, HueySqlite]
