"""FM_007 — recovery logic drift: the recovery path and the normal path disagree.

A worker, two render jobs, a reaper, and a restart's recovery that runs beside
them from t = 5 s. The work (6 s) outlasts the lease (5 s), so a live worker
heartbeats; the worker can crash holding a job (it restarts a second later, during
the recovery or before it), and the recovery can crash after any of its steps (it
then starts over). The first job may be attempted once, the second twice. With
the guardrail, recovery takes leases back with the reaper's own code (deadline,
attempt budget, fenced compare-and-set) through the transition table.
Without it, recovery is a hand-written re-implementation that treats every leased
job as an orphan and requeues it: it takes a live worker's lease, and requeues a
job whose attempts are spent. Each step it logs is a legal transition; the
refinement check sees the state it leaves, which no normal schedule reaches.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from failfirst.processor.queue import HandlerContext, JobQueue, QueueConfig
from failfirst.processor.worker import WorkerConfig, worker_loop
from failfirst.proofs.refinement import Refinement
from failfirst.sim.scenario import FaultPlan, JobSpec, Scenario, Sometimes
from failfirst.store import Store
from failfirst.store.clock import SimClock

LEASE = QueueConfig(lease_s=5.0, heartbeat_s=2.0)
WORK = WorkerConfig(work_s=6.0)
RECOVERY_AT_S = 5.0


def render(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """Render a report: one effect part."""
    return [("report", int(payload["pages"]))]


def recovery_moved_a_job(events: list[dict[str, Any]]) -> bool:
    """Recovery changed some job's state (it had work to do)."""
    return any(e["actor"] == "recovery" and e["to"] is not None for e in events)


#: Normal processing: the same workers, jobs, faults and guardrails, no recovery actor.
NORMAL = Scenario(
    id="FM_007",
    title="Recovery logic drift",
    guardrail="recovery_via_transitions",
    invariants=("INV_006",),
    handlers={"render": render},
    jobs=(JobSpec("render", {"report": "q3", "pages": 12}, max_attempts=1),
          JobSpec("render", {"report": "q4", "pages": 9}, max_attempts=2)),
    workers=1,
    faults=FaultPlan(points={"claimed": ("crash",), "working": ("crash",),
                             "recovering": ("crash",)},
                     max_faults=3, restart_s=1.0),
    queue=LEASE,
    worker=WORK,
    progress_bound_s=60.0,
    max_steps=300,
    description=__doc__ or "",
)



def recovery_crashed(events: list[dict[str, Any]]) -> bool:
    """The recovery itself crashed at one of its steps (and ran again from the top)."""
    return any(e["kind"] == "crash" and e["actor"] == "recovery" for e in events)


def worker_restarted_during_recovery(events: list[dict[str, Any]]) -> bool:
    """A worker came back while a recovery pass was under way."""
    running = False
    for e in events:
        if e["actor"] == "recovery" and e["kind"] in ("recovery_start", "recovery_end", "crash"):
            running = e["kind"] == "recovery_start"
        elif running and e["kind"] == "restart":
            return True
    return False


SCENARIO = replace(
    NORMAL,
    recovery_at_s=RECOVERY_AT_S,
    checks=(Refinement(NORMAL),),
    reached=recovery_moved_a_job,
    sometimes=(Sometimes("recovery crashed and ran again", recovery_crashed),
               Sometimes("a worker restarted during recovery", worker_restarted_during_recovery)),
)


def restart_state() -> tuple[SimClock, JobQueue]:
    """The recovery setting, built by hand: at t = 0 a worker claims the first job and
    dies holding it; another claims the second and is still at work. At t = 5 s the
    dead worker's lease has expired and the live worker's has not (it heartbeat at
    t = 2 and t = 4). Returns (clock, queue) at t = 5, before any recovery."""
    clock = SimClock()
    queue = JobQueue(Store.memory(clock), SCENARIO.handlers, config=LEASE)
    for spec in SCENARIO.jobs:
        queue.enqueue(spec.type, dict(spec.payload), max_attempts=spec.max_attempts)
    dead = worker_loop("w1", queue, WORK)
    next(dead)  # claimed the first job
    dead.close()  # and died holding it
    queue.store.append_event(actor="w1", job=1, kind="crash", point="claimed")
    live = worker_loop("w2", queue, WORK)
    for t_s in (0.0, 2.0, 4.0):  # claim, then a heartbeat at t = 2 and t = 4
        clock.advance_to(t_s)
        next(live)
    clock.advance_to(RECOVERY_AT_S)
    return clock, queue
