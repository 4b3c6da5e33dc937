"""RQ on Redis, with and without ``Retry``.

``rq worker`` forks a work horse for every job; the harness kills the work horse
(the process executing the job) and the worker, its parent, notices and handles
the job as failed: into the FailedJobRegistry, or enqueued again when the job was
enqueued with ``Retry``. Isolation: a queue name, job ids and worker names of the
run's own, in Redis database ``services.REDIS_DB``.
"""

from __future__ import annotations

import sys

from failfirst.peers import services
from failfirst.peers.harness import Adapter, RunContext
from failfirst.peers.judge import REPORTED_FAILED, REPORTED_HELD

RETRIES = 3


class RQ(Adapter):
    system = "RQ"
    package = "rq"
    broker = "Redis"
    config = "no Retry (default)"
    retry = False
    restart = "its own parent (work horse per job)"
    services = ("redis",)
    no_backoff = "no Retry: a failed job goes to the FailedJobRegistry and waits for nothing"
    no_prefetch = "a worker dequeues one job when its work horse is free: nothing is reserved ahead"
    note = ("The work horse dies; the worker moves the job to the FailedJobRegistry "
            "('Work-horse terminated unexpectedly').")

    def _queue(self, run: RunContext):  # noqa: ANN202 - rq is an optional group
        from redis import Redis
        from rq import Queue

        conn = Redis.from_url(services.redis_url(), socket_timeout=10)
        return Queue(f"{run.run_id}-rq", connection=conn)

    def enqueue(self, run: RunContext, job_ids: list[str]) -> None:
        from rq import Retry

        queue = self._queue(run)
        for job in job_ids:
            queue.enqueue("failfirst.peers.ledger.run_job", job, job_id=f"{run.run_id}-{job}",
                          retry=Retry(max=RETRIES) if self.retry else None)

    def worker_commands(self, run: RunContext) -> list[list[str]]:
        # A name per process ($$): a worker SIGKILLed leaves its name registered until its TTL,
        # and RQ refuses to start another worker under that name.
        return [["sh", "-c", f'exec "$0" -m rq.cli worker --url {services.redis_url()} '
                 f'--name {run.run_id}-w{i}-$$ --logging_level WARNING {run.run_id}-rq', sys.executable]
                for i in range(run.settings.workers)]

    def public_state(self, run: RunContext, job_ids: list[str]) -> dict[str, str]:
        from rq.exceptions import NoSuchJobError
        from rq.job import Job

        queue = self._queue(run)
        report = {}
        for job in job_ids:
            try:
                status = Job.fetch(f"{run.run_id}-{job}", connection=queue.connection).get_status()
            except NoSuchJobError:
                continue
            status = getattr(status, "value", status)
            if status in ("failed", "stopped", "canceled"):
                report[job] = REPORTED_FAILED
            elif status in ("queued", "started", "scheduled", "deferred"):
                report[job] = REPORTED_HELD
        return report

    def teardown(self, run: RunContext) -> None:
        client = services.redis_client()
        try:
            workers = [k for k in client.smembers("rq:workers") if f"rq:worker:{run.run_id}-w".encode() in k]
            if workers:
                client.srem("rq:workers", *workers)
            client.srem("rq:queues", f"rq:queue:{run.run_id}-rq")
            keys = list(client.scan_iter(match=f"rq:*{run.run_id}*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


class RQRetry(RQ):
    config = f"Retry(max={RETRIES})"
    retry = True
    no_backoff = "Retry without an interval enqueues the job again at once: nothing waits"
    note = ("With Retry the job killed with its work horse is enqueued again: it runs a second "
            "time.")


ADAPTERS = [RQ, RQRetry]
