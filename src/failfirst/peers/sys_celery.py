"""Celery, on RabbitMQ and on Redis, with the acknowledgement settings people argue about.

The worker runs as its documentation says to run it in production: ``celery worker``
with the prefork pool (the harness kills the pool child executing the job; Celery's
parent process replaces it), or with the solo pool (the job runs in the worker
process itself; the harness restarts the command, as systemd would). Results go to
a Redis result backend, where an operator sees a task's FAILURE.

Isolation: a queue name of the run's own (bound in the default ``celery`` exchange
with its own routing key); on Redis a global key prefix of the run's own.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from failfirst.peers import ledger, services
from failfirst.peers.harness import Adapter, RunContext
from failfirst.peers.judge import REPORTED_FAILED, REPORTED_HELD

ENV = "FAILFIRST_PEERS_CELERY"
#: The small visibility timeout of the Redis configurations (Celery's default is one hour).
VISIBILITY_TIMEOUT_S = 3


_apps: dict[str, Any] = {}


def make_app(settings: dict[str, Any]):  # noqa: ANN201 - celery is an optional group
    """One app per settings in a process (Celery's task registry is process-wide)."""
    key = json.dumps(settings, sort_keys=True)
    if key not in _apps:
        _apps[key] = _make_app(settings)
    return _apps[key]


def _make_app(settings: dict[str, Any]):  # noqa: ANN202
    from celery import Celery

    app = Celery("failfirst_peers", broker=settings["broker"], backend=services.redis_url())
    app.conf.update(
        task_default_queue=settings["queue"],
        task_acks_late=settings["acks_late"],
        task_reject_on_worker_lost=settings["reject_on_worker_lost"],
        task_serializer="json", result_serializer="json", accept_content=["json"],
        result_backend_transport_options={"global_keyprefix": settings["prefix"]},
        result_expires=3600,
        worker_enable_remote_control=False, worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    if settings["broker"].startswith("redis"):
        app.conf.broker_transport_options = {
            "visibility_timeout": VISIBILITY_TIMEOUT_S,
            "global_keyprefix": settings["prefix"],
            # Look for abandoned messages every second, not every 100 s (kombu's defaults).
            "unacked_restore_interval": 1, "unacked_restore_throttle": 1,
        }

    # A task name of the run's own: Celery's task registry is process-wide, and a process
    # that builds the apps of several runs must not send one run's jobs with another's app.
    @app.task(name=task_name(settings))
    def work(job: str) -> None:
        ledger.run_job(job)

    return app


def task_name(settings: dict[str, Any]) -> str:
    return f"failfirst_peers.work.{settings['queue']}"


def __getattr__(name: str) -> Any:
    """``celery -A failfirst.peers.sys_celery:worker_app``: the app from the run's settings."""
    if name == "worker_app":
        return make_app(json.loads(os.environ[ENV]))
    raise AttributeError(name)


class CeleryBase(Adapter):
    """What every Celery configuration shares; the subclasses set the broker and acks."""

    system = "Celery"
    package = "celery"
    pool = "prefork"
    acks_late = False
    reject_on_worker_lost = False
    restart = "its own parent (prefork pool)"
    #: Measured: the prefork parent may take seconds to notice a SIGKILLed pool child (and
    #: only then requeue or fail its task); with a shorter wait a requeued task looked done.
    recovery_s = 6.0
    services: tuple[str, ...] = ("redis",)
    no_backoff = "no retries configured (a Celery task retries only when it calls self.retry)"
    #: The worker reserves worker_prefetch_multiplier (4) x concurrency messages ahead.
    no_prefetch = ""

    def settings(self, run: RunContext) -> dict[str, Any]:
        return {"broker": self.broker_url(), "queue": f"{run.run_id}-celery",
                "acks_late": self.acks_late, "reject_on_worker_lost": self.reject_on_worker_lost,
                "prefix": f"{run.run_id}:"}

    def broker_url(self) -> str:
        raise NotImplementedError

    def worker_env(self, run: RunContext) -> dict[str, str]:
        return {ENV: json.dumps(self.settings(run))}

    def enqueue(self, run: RunContext, job_ids: list[str]) -> None:
        app = make_app(self.settings(run))
        work = app.tasks[task_name(self.settings(run))]
        with app.connection_for_write() as conn, app.producer_pool.acquire(block=True) as _:
            for job in job_ids:
                work.apply_async((job,), task_id=f"{run.run_id}-{job}", connection=conn)

    def worker_commands(self, run: RunContext) -> list[list[str]]:
        base = [sys.executable, "-m", "celery", "-A", "failfirst.peers.sys_celery:worker_app",
                "worker", "-Q", self.settings(run)["queue"], "--without-gossip",
                "--without-mingle", "--without-heartbeat", "-l", "WARNING"]
        if self.pool == "solo":
            return [[*base, "--pool", "solo"] for _ in range(run.settings.workers)]
        return [[*base, "--pool", "prefork", "-c", str(run.settings.workers)]]

    def _failed(self, run: RunContext, job_ids: list[str]) -> dict[str, str]:
        from celery.result import AsyncResult

        app = make_app(self.settings(run))
        report = {}
        for job in job_ids:
            if AsyncResult(f"{run.run_id}-{job}", app=app).state == "FAILURE":
                report[job] = REPORTED_FAILED
        return report

    def teardown(self, run: RunContext) -> None:
        services.redis_delete_prefix(f"{run.run_id}:")


class CeleryRabbit(CeleryBase):
    broker = "RabbitMQ"
    services = ("rabbitmq", "redis")
    config = "acks early (default)"
    note = ("With the default early acknowledgement the message is acknowledged before the task "
            "runs: a killed worker's task is not delivered again.")

    def broker_url(self) -> str:
        return services.amqp_url()

    def queued(self, run: RunContext) -> int:
        return services.amqp_ready(self.settings(run)["queue"])

    def public_state(self, run: RunContext, job_ids: list[str]) -> dict[str, str]:
        report = self._failed(run, job_ids)
        # The workers are gone, so every unacknowledged message is back in the queue.
        for headers, _body in services.amqp_drain(self.settings(run)["queue"], 4 * len(job_ids)):
            job = str(headers.get("id", "")).rsplit("-", 1)[-1]
            report.setdefault(job, REPORTED_HELD)
        return report

    def teardown(self, run: RunContext) -> None:
        services.amqp_delete_queues([self.settings(run)["queue"]])
        super().teardown(run)


class CeleryRabbitAcksLate(CeleryRabbit):
    config = "acks_late"
    acks_late = True
    note = ("acks_late alone: when the pool child dies, Celery still acknowledges the message "
            "and records WorkerLostError, so the task is failed, not re-run.")


class CeleryRabbitReject(CeleryRabbit):
    config = "acks_late + task_reject_on_worker_lost"
    acks_late = True
    reject_on_worker_lost = True
    note = ("With task_reject_on_worker_lost the message is rejected and requeued when the child "
            "dies, so the task runs again (the documentation warns of message loops).")


class CeleryRedis(CeleryBase):
    broker = "Redis"
    config = f"acks_late + task_reject_on_worker_lost, visibility_timeout {VISIBILITY_TIMEOUT_S} s"
    acks_late = True
    reject_on_worker_lost = True
    note = ("On Redis an unacknowledged message returns only after the visibility timeout; "
            "with reject on worker lost the parent requeues it at once.")

    def broker_url(self) -> str:
        return services.redis_url()

    def queued(self, run: RunContext) -> int:
        client = services.redis_client()
        try:
            return int(client.llen(f"{run.run_id}:" + self.settings(run)["queue"]))
        finally:
            client.close()

    def public_state(self, run: RunContext, job_ids: list[str]) -> dict[str, str]:
        report = self._failed(run, job_ids)
        prefix, queue = f"{run.run_id}:", self.settings(run)["queue"]
        client = services.redis_client()
        try:
            messages = [json.loads(m) for m in client.lrange(prefix + queue, 0, -1)]
            messages += [json.loads(v)[0] for v in client.hvals(prefix + "unacked")]
        finally:
            client.close()
        for message in messages:
            job = str(message.get("headers", {}).get("id", "")).rsplit("-", 1)[-1]
            report.setdefault(job, REPORTED_HELD)
        return report


class CeleryRedisSolo(CeleryRedis):
    config = f"acks_late, solo pool, visibility_timeout {VISIBILITY_TIMEOUT_S} s"
    pool = "solo"
    reject_on_worker_lost = False
    recovery_s = float(VISIBILITY_TIMEOUT_S)
    restart = "the supervisor (harness)"
    no_prefetch = ("the solo pool runs the task in the worker's only thread, which fetches "
                   "nothing more while a task runs (measured: nothing was reserved)")
    note = ("The whole worker dies with its job unacknowledged; Redis has no acknowledgements, "
            "so the message comes back only once the visibility timeout has passed.")


ADAPTERS = [CeleryRabbit, CeleryRabbitAcksLate, CeleryRabbitReject, CeleryRedis, CeleryRedisSolo]
