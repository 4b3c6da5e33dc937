"""FM_002 — partial write: a crash between the parts of a two-part effect.

Two workers, two transfer jobs, a reaper. Each transfer's effect has two parts, a
debit of one account and a credit of another. Without ``atomic_effect`` the parts
commit in separate transactions (and the idempotent commit boundary cannot hold:
there is no one transaction for it to join), so a crash inside the credit's
transaction leaves the debit alone in the ledger — a torn effect — and the retry
debits the account a second time. With the guardrail both parts and the
completion are one transaction: a crash anywhere in it leaves nothing.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import HandlerContext, Hooks, JobQueue, QueueConfig, WorkerCrash
from failfirst.processor.worker import Point, WorkerConfig, worker_loop
from failfirst.sim.drain import drain as sim_drain
from failfirst.sim.scenario import FaultPlan, JobSpec, Scenario, Sometimes
from failfirst.store import Store
from failfirst.store.clock import SimClock

#: Where a crash tears a transfer without the guardrail (between its parts, or inside a
#: part's transaction) or hits the one transaction that writes it whole with it.
EFFECT_POINTS = ("part_written", "effect", "commit")


def transfer(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """Move ``cents`` from one account to another: a debit and a credit, two parts."""
    cents = int(payload["cents"])
    return [("debit", -cents), ("credit", cents)]


def crashed_inside_an_effect(events: list[dict[str, Any]]) -> bool:
    """A worker crashed while writing a transfer: between its parts, or inside a
    transaction that writes (or completes) it."""
    return any(e["kind"] == "crash" and e.get("point") in EFFECT_POINTS for e in events)


def crashed_in_the_commit_then_completed(events: list[dict[str, Any]]) -> bool:
    """A crash inside the one transaction that writes a transfer whole, and the transfer
    completed afterwards: the rollback left nothing behind for the retry to double."""
    crashed: set[int] = set()
    for e in events:
        if e["kind"] == "crash" and e.get("point") in ("commit", "effect") and e["job"] is not None:
            crashed.add(e["job"])
        elif e["kind"] == "complete" and e["job"] in crashed:
            return True
    return False


TRANSFERS = (
    JobSpec("transfer", {"from": "alice", "to": "bob", "cents": 500}),
    JobSpec("transfer", {"from": "carol", "to": "dave", "cents": 120}),
)

SCENARIO = Scenario(
    id="FM_002",
    title="Partial write",
    guardrail="atomic_effect",
    invariants=("INV_002", "INV_006"),
    handlers={"transfer": transfer},
    jobs=TRANSFERS,
    workers=2,
    faults=FaultPlan(
        points={"claimed": ("crash", "pause"), "part_written": ("crash", "pause"),
                "commit": ("crash",)},
        max_faults=3,
        pause_s=15.0,
        restart_s=1.0,
    ),
    queue=QueueConfig(lease_s=10.0, heartbeat_s=4.0),
    worker=WorkerConfig(work_s=2.0),
    progress_bound_s=60.0,
    max_steps=200,
    reached=crashed_inside_an_effect,
    sometimes=(Sometimes("a crash inside the commit, then the transfer completed",
                         crashed_in_the_commit_then_completed),),
    description=__doc__ or "",
)


def ledger(store: Store) -> dict[str, int]:
    """Account balances in cents, from the effects table and the jobs' payloads: what an
    auditor would add up. A whole transfer moves money; it never creates or destroys it."""
    payloads = {job.id: job.payload for job in store.jobs()}
    balances: dict[str, int] = defaultdict(int)
    for job_id, part, _token, amount in store.effects():
        account = payloads[job_id]["from" if part == "debit" else "to"]
        balances[account] += amount
    return dict(sorted(balances.items()))


class _CrashInSecondPart(Hooks):
    """The fault of the recovery setting: the process dies inside the transaction of
    the effect's second part, after the first part committed."""

    def __init__(self) -> None:
        self.parts = 0

    def in_transaction(self, actor: str, point: str) -> None:
        if point == "effect":
            self.parts += 1
            if self.parts == 2:
                raise WorkerCrash(f"{actor} killed between the debit and the credit")


def torn_transfer(guardrails: Guardrails | None = None) -> tuple[SimClock, JobQueue, int]:
    """The recovery setting: data torn before the guardrail existed. One transfer ran
    without ``atomic_effect``; its worker died inside the credit's transaction, so the
    debit stands alone. The clock is left past the lease, as a restarted system finds
    it. Returns (clock, a queue over that store with ``guardrails`` — by default every
    guardrail on, as after the fix is deployed —, the job id)."""
    clock = SimClock()
    store = Store.memory(clock)
    before = JobQueue(store, SCENARIO.handlers, guardrails=Guardrails().without("atomic_effect"),
                      config=SCENARIO.queue, hooks=_CrashInSecondPart())
    job = before.enqueue("transfer", dict(TRANSFERS[0].payload))
    loop = worker_loop("w1", before, WorkerConfig(work_s=1.0))
    try:
        for _ in range(10):  # claim, work, write the parts: a handful of steps
            step = next(loop)
            clock.advance_to(clock.now_s() + (step.wait_s if isinstance(step, Point) else 1.0))
    except WorkerCrash:
        store.append_event(actor="w1", job=job, kind="crash", point="effect")
    else:
        raise AssertionError("the worker never reached the credit's transaction")
    clock.advance_to(clock.now_s() + SCENARIO.queue.lease_s)
    return clock, JobQueue(store, SCENARIO.handlers, guardrails=guardrails or Guardrails(),
                           config=SCENARIO.queue), job


def drain(queue: JobQueue, clock: SimClock, worker: str = "w2", max_steps: int = 50) -> None:
    """A worker comes back and runs whatever is claimable until it idles."""
    sim_drain(queue, clock, worker, WorkerConfig(work_s=1.0), max_steps=max_steps)
