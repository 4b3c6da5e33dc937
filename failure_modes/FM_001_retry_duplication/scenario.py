"""FM_001 — retry duplication: a redelivered job applies its effect twice.

Two workers, four payment jobs, a reaper. A worker can crash or pause after it
claimed a job or after it wrote the effect, and the completion's acknowledgement
can be lost. Without the idempotent commit boundary the effect commits on its
own, so any redelivery after it re-applies it. With the boundary, effect and
completion are one transaction keyed by the job and fenced by the lease token.
"""

from __future__ import annotations

from typing import Any

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import HandlerContext, JobQueue, QueueConfig
from failfirst.processor.worker import Point, WorkerConfig, worker_loop
from failfirst.sim.drain import drain as sim_drain
from failfirst.sim.scenario import FaultPlan, JobSpec, Scenario, Sometimes, redelivered
from failfirst.sim.sometimes import REDELIVERED_AFTER_A_LOST_ACK
from failfirst.store import Store
from failfirst.store.clock import SimClock


def charge(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """Charge a customer: one effect part, the amount in cents."""
    return [("charge", int(payload["amount_cents"]))]


def stale_commit_refused(events: list[dict[str, Any]]) -> bool:
    """A worker whose lease had moved on tried to complete the job, and the fence refused it."""
    return any(e["kind"] == "refused" and e.get("attempted") == "complete" for e in events)


SCENARIO = Scenario(
    id="FM_001",
    title="Retry duplication",
    guardrail="idempotent_commit",
    invariants=("INV_001",),
    handlers={"charge": charge},
    jobs=(JobSpec("charge", {"order": "A-1", "amount_cents": 1250}),
          JobSpec("charge", {"order": "A-2", "amount_cents": 990}),
          JobSpec("charge", {"order": "A-3", "amount_cents": 4500}),
          JobSpec("charge", {"order": "A-4", "amount_cents": 300})),
    workers=2,
    faults=FaultPlan(
        points={
            "claimed": ("crash", "pause"),
            "effect_written": ("crash", "pause"),
            "commit": ("crash", "lost_ack"),
        },
        max_faults=3,
        pause_s=15.0,
        restart_s=1.0,
    ),
    queue=QueueConfig(lease_s=10.0, heartbeat_s=4.0),
    worker=WorkerConfig(work_s=2.0),
    progress_bound_s=60.0,
    max_steps=200,
    reached=redelivered,
    sometimes=(REDELIVERED_AFTER_A_LOST_ACK,
               Sometimes("a stale commit refused", stale_commit_refused)),
    description=__doc__ or "",
)


def crash_after_effect(guardrails: Guardrails) -> tuple[SimClock, JobQueue, int]:
    """The recovery setting: one job; its worker wrote the effect and died before it
    completed the job (possible only without the idempotent commit boundary). The
    clock is left past the lease, as a restarted system finds it. Returns
    (clock, queue, job id)."""
    clock = SimClock()
    queue = JobQueue(Store.memory(clock), SCENARIO.handlers, guardrails=guardrails,
                     config=SCENARIO.queue)
    job = queue.enqueue("charge", {"order": "A-1", "amount_cents": 1250})
    loop = worker_loop("w1", queue, WorkerConfig(work_s=1.0))
    for _ in range(10):  # claim, work, write the effect: a handful of steps
        step = next(loop)
        if isinstance(step, Point) and step.name == "effect_written":
            break
        clock.advance_to(clock.now_s() + step.wait_s)
    else:
        raise AssertionError("the worker never wrote its effect")
    loop.close()  # the process dies here: effect committed, completion never sent
    queue.store.append_event(actor="w1", job=job, kind="crash", point="effect_written")
    clock.advance_to(clock.now_s() + SCENARIO.queue.lease_s)
    return clock, queue, job


def drain(queue: JobQueue, clock: SimClock, worker: str = "w2", max_steps: int = 50) -> None:
    """A worker comes back and runs whatever is claimable until it idles."""
    sim_drain(queue, clock, worker, WorkerConfig(work_s=1.0), max_steps=max_steps)
