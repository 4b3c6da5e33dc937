"""Dramatiq on RabbitMQ: worker processes, messages acknowledged after the actor returns.

``dramatiq MODULE -p N -t 1`` runs N worker processes. The harness kills the one
executing the job; its connection closes, so RabbitMQ puts the unacknowledged
message back in the queue. Dramatiq's main process, seeing a worker process exit
unexpectedly, shuts the others down and exits; the harness restarts the command,
as a process supervisor does. Isolation: queue names of the run's own.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from failfirst.peers import ledger, services
from failfirst.peers.harness import Adapter, RunContext
from failfirst.peers.judge import REPORTED_FAILED, REPORTED_HELD

ENV = "FAILFIRST_PEERS_DRAMATIQ"
#: The Retries middleware's backoff (the defaults are 15 s and 7 days): a first retry
#: waits 1 to 2 s.
MIN_BACKOFF_MS = 1000
MAX_BACKOFF_MS = 4000


def make_actor(queue: str):  # noqa: ANN201 - dramatiq is an optional group
    import dramatiq
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = RabbitmqBroker(url=services.amqp_url().rstrip("/") + "/%2F")
    dramatiq.set_broker(broker)

    @dramatiq.actor(queue_name=queue, actor_name="work", min_backoff=MIN_BACKOFF_MS,
                    max_backoff=MAX_BACKOFF_MS)
    def work(job: str) -> None:
        ledger.run_job(job)

    return work


if ENV in os.environ:  # imported by `dramatiq failfirst.peers.sys_dramatiq` in a worker
    work = make_actor(json.loads(os.environ[ENV])["queue"])


class DramatiqRabbit(Adapter):
    system = "Dramatiq"
    package = "dramatiq"
    broker = "RabbitMQ"
    config = f"process workers, retries with min_backoff {MIN_BACKOFF_MS / 1000:g} s"
    services = ("rabbitmq",)
    #: The first retry's longest wait: the killed backoff runs once it has passed.
    recovery_s = 2 * MIN_BACKOFF_MS / 1000
    no_backoff = ""
    #: Each worker thread's consumer prefetches (2 x threads messages by default).
    no_prefetch = ""
    note = ("Dramatiq acknowledges a message only after the actor finished; a message whose "
            "worker died unacknowledged is delivered again.")

    def queue(self, run: RunContext) -> str:
        return f"{run.run_id}-dramatiq"

    def worker_env(self, run: RunContext) -> dict[str, str]:
        return {ENV: json.dumps({"queue": self.queue(run)})}

    def enqueue(self, run: RunContext, job_ids: list[str]) -> None:
        work = make_actor(self.queue(run))
        for job in job_ids:
            work.send(job)
        work.broker.close()

    def worker_commands(self, run: RunContext) -> list[list[str]]:
        return [[sys.executable, "-m", "dramatiq", "failfirst.peers.sys_dramatiq",
                 "-p", str(run.settings.workers), "-t", "1"]]

    def queued(self, run: RunContext) -> int:
        return services.amqp_ready(self.queue(run))

    def public_state(self, run: RunContext, job_ids: list[str]) -> dict[str, str]:
        report: dict[str, str] = {}
        bound = 4 * len(job_ids)
        for suffix, verdict in ((".XQ", REPORTED_FAILED), ("", REPORTED_HELD), (".DQ", REPORTED_HELD)):
            for _headers, body in services.amqp_drain(self.queue(run) + suffix, bound):
                message: dict[str, Any] = json.loads(body)
                report.setdefault(str(message["args"][0]), verdict)
        return report

    def teardown(self, run: RunContext) -> None:
        q = self.queue(run)
        services.amqp_delete_queues([q, q + ".DQ", q + ".XQ"])


ADAPTERS = [DramatiqRabbit]
