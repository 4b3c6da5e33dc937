"""arq on Redis (asyncio): the in-progress key, ``job_timeout`` and ``max_tries``.

``arq WorkerSettings`` runs one asyncio worker process; the harness restarts a killed
one, as a supervisor does. How arq runs a job (arq 0.2x, ``arq/worker.py``): the job
stays in the queue (a sorted set) while it runs; the worker that takes it sets the
key ``arq:in-progress:<id>`` with a time to live of the longest ``job_timeout`` plus
10 s, and every other worker skips a job with that key. When the job ends the worker
removes the job from the queue and the key. A worker killed mid-job removes neither:
the job waits in the queue until the key expires, then another worker runs it again
(``arq:retry:<id>`` counts the tries; past ``max_tries`` arq records the job failed,
"max N retries exceeded"). A job longer than ``job_timeout`` is cancelled and recorded
failed (``TimeoutError``); on SIGTERM the worker cancels its running jobs, which stay
in the queue and run again at once ("cancelled, will be run again").

The task body is a coroutine, as arq's tasks are: its work is an ``await``, which a
cancellation interrupts. Isolation: a queue name and job ids of the run's own, in Redis
database ``services.REDIS_DB``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from failfirst.peers import ledger, services
from failfirst.peers.harness import Adapter, RunContext
from failfirst.peers.judge import REPORTED_FAILED, REPORTED_HELD

ENV = "FAILFIRST_PEERS_ARQ"
#: The experiment's job timeout (arq's default is 300 s); the in-progress key lives 10 s longer.
JOB_TIMEOUT_S = 2.0
#: arq's own margin: ``in_progress_timeout_s = max(job_timeout) + 10`` (worker.py).
IN_PROGRESS_EXTRA_S = 10.0
#: arq's default ``max_tries``.
DEFAULT_MAX_TRIES = 5


async def work(ctx: dict[str, Any], job: str) -> None:
    """The workload as a coroutine: ``started``, an awaited work time, ``finished``. A job
    targeted at a point (``ledger.targets``) holds there on its first attempt, awaiting too:
    the event loop goes on (a SIGTERM's handler runs, ``job_timeout`` can cancel the hold)."""
    path = os.environ[ledger.ENV_LEDGER]
    point = ledger.targets().get(job)
    # Its first attempt at the point (the ledger's own rule for a targeted job).
    first = point in (ledger.STARTED, ledger.FINISHED) and ledger._first_at(path, job, point)
    ledger.append(path, job, ledger.STARTED)
    if first and point == ledger.STARTED:
        await asyncio.sleep(ledger.hold_s())
    await asyncio.sleep(ledger.work_s())
    ledger.append(path, job, ledger.FINISHED)
    if first and point == ledger.FINISHED:
        await asyncio.sleep(ledger.hold_s())


def worker_settings_for(settings: dict[str, Any]) -> type:
    """The ``WorkerSettings`` class ``arq`` takes, for one run."""
    from arq import func
    from arq.connections import RedisSettings

    class WorkerSettings:
        functions = [func(work, name="work", max_tries=settings["max_tries"])]
        redis_settings = RedisSettings(host=settings["host"], port=settings["port"],
                                       database=services.REDIS_DB, conn_timeout=5)
        queue_name = settings["queue"]
        job_timeout = settings["job_timeout_s"]
        max_jobs = 1  # one job at a time per worker process, as every peer here
        poll_delay = 0.1
        keep_result = 3600

    return WorkerSettings


def __getattr__(name: str) -> Any:
    """``arq failfirst.peers.sys_arq.WorkerSettings``: the run's settings from the environment."""
    if name == "WorkerSettings":
        return worker_settings_for(json.loads(os.environ[ENV]))
    raise AttributeError(name)


class Arq(Adapter):
    system = "arq"
    package = "arq"
    broker = "Redis"
    max_tries = DEFAULT_MAX_TRIES
    config = (f"default max_tries {DEFAULT_MAX_TRIES}, job_timeout {JOB_TIMEOUT_S:g} s "
              f"(in-progress key {JOB_TIMEOUT_S + IN_PROGRESS_EXTRA_S:g} s)")
    #: A killed job runs again once its in-progress key has expired.
    recovery_s = JOB_TIMEOUT_S + IN_PROGRESS_EXTRA_S
    services = ("redis",)
    note = ("A killed worker's job stays in the queue; it runs again once its in-progress key "
            "expires (job_timeout + 10 s), counted against max_tries.")

    def settings(self, run: RunContext) -> dict[str, Any]:
        return {"host": services.redis_host(), "port": services.redis_port(),
                "queue": self.queue(run), "job_timeout_s": JOB_TIMEOUT_S, "max_tries": self.max_tries}

    def queue(self, run: RunContext) -> str:
        return f"{run.run_id}-arq"

    def job_id(self, run: RunContext, job: str) -> str:
        return f"{run.run_id}-{job}"

    def worker_env(self, run: RunContext) -> dict[str, str]:
        return {ENV: json.dumps(self.settings(run))}

    async def _pool(self) -> Any:
        from arq import create_pool
        from arq.connections import RedisSettings

        return await create_pool(RedisSettings(host=services.redis_host(), port=services.redis_port(),
                                               database=services.REDIS_DB, conn_timeout=5))

    def enqueue(self, run: RunContext, job_ids: list[str]) -> None:
        async def enqueue() -> None:
            pool = await self._pool()
            try:
                for job in job_ids:
                    done = await pool.enqueue_job("work", job, _job_id=self.job_id(run, job),
                                                  _queue_name=self.queue(run))
                    assert done is not None, f"arq refused job {job}: its id exists already"
            finally:
                await pool.aclose()

        asyncio.run(enqueue())

    def worker_commands(self, run: RunContext) -> list[list[str]]:
        return [[sys.executable, "-m", "arq", "failfirst.peers.sys_arq.WorkerSettings"]
                for _ in range(run.settings.workers)]

    def public_state(self, run: RunContext, job_ids: list[str]) -> dict[str, str]:
        """Failed: a result that says so (an exception, max tries exceeded, the timeout).
        Held: still in the queue (waiting for its in-progress key to expire, or queued)."""
        from arq.constants import result_key_prefix
        from arq.jobs import deserialize_result

        client = services.redis_client()
        try:
            queued = {m.decode() for m in client.zrange(self.queue(run), 0, -1)}
            report = {}
            for job in job_ids:
                raw = client.get(result_key_prefix + self.job_id(run, job))
                if raw is not None and not deserialize_result(raw).success:
                    report[job] = REPORTED_FAILED
                elif self.job_id(run, job) in queued:
                    report[job] = REPORTED_HELD
            return report
        finally:
            client.close()

    def teardown(self, run: RunContext) -> None:
        client = services.redis_client()
        try:
            client.delete(self.queue(run), self.queue(run) + ":health-check")
            keys = list(client.scan_iter(match=f"arq:*{run.run_id}-*", count=500))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i:i + 500])
        finally:
            client.close()


class ArqOneTry(Arq):
    max_tries = 1
    config = (f"max_tries 1, job_timeout {JOB_TIMEOUT_S:g} s "
              f"(in-progress key {JOB_TIMEOUT_S + IN_PROGRESS_EXTRA_S:g} s)")
    note = ("With max_tries 1 ('use 1 to prevent retrying') a killed worker's job is recorded "
            "failed when its in-progress key expires: max 1 retries exceeded.")


ADAPTERS = [Arq, ArqOneTry]
