"""The happy path: several workers, many jobs, no faults."""

from __future__ import annotations

from typing import Any

from failfirst.processor.queue import HandlerContext
from failfirst.sim.scenario import FaultPlan, JobSpec, Scenario


def deliver(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """Deliver one message: a single effect part carrying the payload's amount."""
    return [("delivered", int(payload["amount"]))]


def happy_scenario(jobs: int, workers: int) -> Scenario:
    if not 1 <= jobs <= 10_000 or not 1 <= workers <= 64:
        raise ValueError("jobs must be in 1..10000 and workers in 1..64")
    return Scenario(
        id="HAPPY",
        title="Happy path",
        guardrail="idempotent_commit",
        invariants=("INV_001", "INV_002", "INV_003", "INV_004", "INV_005"),
        handlers={"deliver": deliver},
        jobs=tuple(JobSpec("deliver", {"amount": i + 1}) for i in range(jobs)),
        workers=workers,
        faults=FaultPlan(max_faults=0),
        max_steps=20 * jobs + 100,
    )
