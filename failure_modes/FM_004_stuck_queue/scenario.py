"""FM_004 — stuck queue: a worker dies holding a job, and nothing ever takes it back.

Two workers, two render jobs, a reaper. The work takes longer than the lease, so a
live worker must heartbeat to keep it. A worker can crash (or pause) after a claim
or while it works. Without lease expiry a lease has no deadline: the crashed
worker's job stays leased forever, and once the faults stop nothing will move it.
With lease expiry, heartbeats and the reaper, a dead worker's lease runs out and
the job is delivered again.

``SHORT_LEASE`` is the variant behind the warning: a lease shorter than the work
without heartbeats expires under a live worker, the job is delivered a second time
while the first delivery is still running, and (without the idempotent commit
boundary) both apply the effect — FM_001 again. Heartbeats fix both.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import HandlerContext, JobQueue, QueueConfig
from failfirst.processor.worker import Point, WorkerConfig, worker_loop
from failfirst.sim.drain import drain as sim_drain
from failfirst.sim.scenario import FaultPlan, JobSpec, Scenario, Sometimes
from failfirst.store import Store
from failfirst.store.clock import SimClock

LEASE = QueueConfig(lease_s=5.0, heartbeat_s=2.0)
WORK = WorkerConfig(work_s=6.0)  # longer than the lease: only heartbeats keep it


def render(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """Render a thumbnail: one effect part, the image written."""
    return [("thumbnail", int(payload["px"]))]


def crashed_holding_a_job(events: list[dict[str, Any]]) -> bool:
    """A worker died while it held a lease."""
    return any(e["kind"] == "crash" and e.get("point") in ("claimed", "working")
               for e in events)


def taken_back_and_completed(events: list[dict[str, Any]]) -> bool:
    """A worker died holding a job, the reaper took the job back, and it completed."""
    crashed, expired = set(), set()
    for e in events:
        if e["kind"] == "crash" and e["job"] is not None:
            crashed.add(e["job"])
        elif e["kind"] == "expire" and e["job"] in crashed:
            expired.add(e["job"])
        elif e["kind"] == "complete" and e["job"] in expired:
            return True
    return False


def paused_holder_lost_its_lease(events: list[dict[str, Any]]) -> bool:
    """A paused worker came back to find its lease gone: its heartbeat was refused."""
    return any(e["kind"] == "refused" and e.get("reason") == "lease lost" for e in events)


def outlived_its_lease(events: list[dict[str, Any]]) -> bool:
    """Some delivery was still at work (or wrote its effect) more than ``lease_s`` after
    its claim: the work outlasted the lease."""
    claimed = {(e["job"], e["token"]): e["t"] for e in events if e["kind"] == "claim"}
    return any(e["t"] - claimed.get((e["job"], e["token"]), e["t"]) > LEASE.lease_s
               for e in events if e["kind"] in ("effect", "complete", "heartbeat", "refused"))


SCENARIO = Scenario(
    id="FM_004",
    title="Stuck queue",
    guardrail="lease_expiry",
    companions=("heartbeat",),
    invariants=("INV_004",),
    handlers={"render": render},
    jobs=(JobSpec("render", {"image": "a.png", "px": 128}),
          JobSpec("render", {"image": "b.png", "px": 256})),
    workers=2,
    faults=FaultPlan(
        points={"claimed": ("crash", "pause"), "working": ("crash",)},
        max_faults=3,
        pause_s=8.0,
        restart_s=1.0,
    ),
    queue=LEASE,
    worker=WORK,
    progress_bound_s=60.0,
    max_steps=300,
    reached=crashed_holding_a_job,
    sometimes=(Sometimes("a dead worker's job taken back and completed", taken_back_and_completed),
               Sometimes("a paused worker's lease lost", paused_holder_lost_its_lease)),
    description=__doc__ or "",
)

#: The lease shorter than the work, without heartbeats and without the idempotent
#: commit boundary: redelivery while the first delivery still runs doubles the effect.
SHORT_LEASE = replace(
    SCENARIO,
    id="FM_004",
    title="Stuck queue: a lease shorter than the work",
    guardrail="heartbeat",
    companions=(),
    invariants=("INV_001",),
    baseline=Guardrails(idempotent_commit=False),
    faults=FaultPlan(),
    reached=outlived_its_lease,
    sometimes=(),
)


def stuck_job(max_steps: int = 20) -> tuple[SimClock, Store, int]:
    """The recovery setting: a queue run without lease expiry, whose worker died
    holding a job. The job is leased forever; the clock is far past anything a lease
    should have lasted. Returns (clock, store, job id)."""
    clock = SimClock()
    store = Store.memory(clock)
    before = JobQueue(store, SCENARIO.handlers, config=LEASE,
                      guardrails=Guardrails().without("lease_expiry"))
    job = before.enqueue("render", dict(SCENARIO.jobs[0].payload))
    loop = worker_loop("w1", before, WORK)
    step = next(loop)  # claimed: the handler ran, the work has begun
    assert isinstance(step, Point) and step.name == "claimed"
    loop.close()  # the process dies here, holding the lease
    store.append_event(actor="w1", job=job, kind="crash", point="claimed")
    clock.advance_to(3600.0)
    return clock, store, job


def drain(queue: JobQueue, clock: SimClock, worker: str = "w2", max_steps: int = 50) -> None:
    """A worker comes back and runs whatever is claimable until it idles."""
    sim_drain(queue, clock, worker, WORK, max_steps=max_steps)
