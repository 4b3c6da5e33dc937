"""FM_001 — retry duplication: a redelivered job applies its effect twice.

Two workers, three payment jobs, a reaper. A worker can crash or pause after it
claimed a job or after it wrote the effect, and the completion's acknowledgement
can be lost. Without the idempotent commit boundary the effect commits on its
own, so any redelivery after it re-applies it. With the boundary, effect and
completion are one transaction keyed by the job and fenced by the lease token.
"""

from __future__ import annotations

from typing import Any

from failfirst.processor import HandlerContext, QueueConfig
from failfirst.scenario import FaultPlan, JobSpec, Scenario, redelivered
from failfirst.worker import WorkerConfig


def charge(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """Charge a customer: one effect part, the amount in cents."""
    return [("charge", int(payload["amount_cents"]))]


SCENARIO = Scenario(
    id="FM_001",
    title="Retry duplication",
    guardrail="idempotent_commit",
    invariants=("INV_001",),
    handlers={"charge": charge},
    jobs=(JobSpec("charge", {"order": "A-1", "amount_cents": 1250}),
          JobSpec("charge", {"order": "A-2", "amount_cents": 990}),
          JobSpec("charge", {"order": "A-3", "amount_cents": 4500})),
    workers=2,
    faults=FaultPlan(
        points={
            "claimed": ("crash", "pause"),
            "effect_written": ("crash", "pause"),
            "commit": ("crash", "lost_ack"),
        },
        max_faults=2,
        pause_s=15.0,
        restart_s=1.0,
    ),
    queue=QueueConfig(lease_s=10.0, heartbeat_s=4.0),
    worker=WorkerConfig(work_s=2.0),
    progress_bound_s=60.0,
    max_steps=200,
    reached=redelivered,
    description=__doc__ or "",
)
