"""FM_005 — poison message: a job that always crashes its worker is redelivered forever.

Two workers, a reaper and four image jobs; the first two carry a payload that
crashes the decoder — not a handled exception, the process dies (WorkerCrash) — and
the supervisor restarts a crashed worker after a back-off longer than the lease.
Without counting attempts at the claim, only a *handled* failure counts one, so a
crash never does: the poison jobs' leases expire, they go back to the head of the
queue, the restarted workers take them again and die again, forever, and the
healthy jobs behind them never run. With attempts counted at the claim and bounded,
the reaper dead-letters each poison job after ``max_attempts`` deliveries, with the
reason, and the others complete.
"""

from __future__ import annotations

from typing import Any

from failfirst.processor.queue import HandlerContext, JobQueue, QueueConfig, WorkerCrash
from failfirst.processor.worker import Idle, WorkerConfig, worker_loop
from failfirst.sim.scenario import FaultPlan, JobSpec, Scenario, Sometimes
from failfirst.store import Store
from failfirst.store.clock import SimClock

MAX_ATTEMPTS = 3
#: The payload the decoder cannot survive.
POISON = {"image": "scan.tiff", "compression": "lzw", "px": 4096, "bomb": True}


def resize(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """Resize an image. A decompression bomb kills the process outright."""
    if payload.get("bomb"):
        raise WorkerCrash(f"segmentation fault decoding {payload['image']}")
    return [("resized", int(payload["px"]))]


def resize_fixed(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """The handler after the fix: the decoder caps the size and the image goes through."""
    return [("resized", min(int(payload["px"]), 2048))]


def poison_crashed(events: list[dict[str, Any]]) -> bool:
    """A handler killed its worker process (a poison payload, not an injected fault)."""
    return any(e["kind"] == "crash" and e.get("point") == "handler" for e in events)


def poison_dead_lettered(events: list[dict[str, Any]]) -> bool:
    """A poison job was dead-lettered once its attempts ran out."""
    poisoned = {e["job"] for e in events if e["kind"] == "crash" and e.get("point") == "handler"}
    return any(e["kind"] in ("expire_dead", "dead") and e["job"] in poisoned for e in events)


def healthy_done_beside_poison(events: list[dict[str, Any]]) -> bool:
    """A healthy job completed after a poison payload had crashed a worker."""
    crashed = False
    for e in events:
        if e["kind"] == "crash" and e.get("point") == "handler":
            crashed = True
        elif crashed and e["kind"] == "complete":
            return True
    return False


JOBS = (
    JobSpec("resize", dict(POISON, image="scan-1.tiff"), max_attempts=MAX_ATTEMPTS),
    JobSpec("resize", dict(POISON, image="scan-2.tiff"), max_attempts=MAX_ATTEMPTS),
    JobSpec("resize", {"image": "cat.png", "px": 512}, max_attempts=MAX_ATTEMPTS),
    JobSpec("resize", {"image": "dog.png", "px": 256}, max_attempts=MAX_ATTEMPTS),
)

SCENARIO = Scenario(
    id="FM_005",
    title="Poison message",
    guardrail="count_attempts_at_claim",
    invariants=("INV_004", "INV_005"),
    handlers={"resize": resize},
    jobs=JOBS,
    workers=2,
    faults=FaultPlan(
        points={"claimed": ("crash", "pause")},
        max_faults=3,
        pause_s=8.0,
        restart_s=6.0,  # the supervisor's restart back-off, longer than the lease
    ),
    queue=QueueConfig(lease_s=5.0, heartbeat_s=2.0),
    worker=WorkerConfig(work_s=1.0),
    progress_bound_s=60.0,
    max_steps=300,
    reached=poison_crashed,
    sometimes=(Sometimes("a poison job dead-lettered", poison_dead_lettered),
               Sometimes("a healthy job done after a poison crash", healthy_done_beside_poison)),
    description=__doc__ or "",
)


def fixed_queue(store: Store) -> JobQueue:
    """The same store, served by the fixed handler (every guardrail on)."""
    return JobQueue(store, {"resize": resize_fixed}, config=SCENARIO.queue)


def drain(queue: JobQueue, clock: SimClock, worker: str = "w9", max_steps: int = 100) -> None:
    """A worker runs whatever is claimable until it idles (the reaper's work included)."""
    loop = worker_loop(worker, queue, SCENARIO.worker)
    for _ in range(max_steps):
        queue.reap()
        try:
            step = next(loop)
        except WorkerCrash as exc:  # the history records the crash, as the simulator does
            queue.store.append_event(actor=worker, job=queue.store.job_leased_by(worker),
                                     kind="crash", point="handler", reason=str(exc))
            raise
        if isinstance(step, Idle):
            wake = step.wake()
            expiry = queue.store.next_lease_expiry_s()
            if wake is None and expiry is None:
                return
            clock.advance_to(max(clock.now_s(), min(w for w in (wake, expiry) if w is not None)))
            loop = worker_loop(worker, queue, SCENARIO.worker)
            continue
        clock.advance_to(clock.now_s() + step.wait_s)
    raise AssertionError(f"{worker} did not idle within {max_steps} steps")
