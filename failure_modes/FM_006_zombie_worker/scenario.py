"""FM_006 — zombie worker: a lease holder that paused, or whose clock ran slow, writes
after its lease moved on to another worker.

Two workers, two publish jobs, a reaper. Each job renders a document and, at the
end of its work, writes it to a downstream documents store with its lease's fencing
token; then it commits. Each job's first attempt fails at that write (a timeout), so
a lease holder's handled failure can arrive late too. A worker can pause past its
lease, or its own clock can start running slow (a quarter of true speed): it then
waits four times too long between heartbeats while believing it keeps its lease.
Either way the store's clock decides: the lease expires and the reaper hands the
job to the other worker. Without fencing the zombie's late writes land — a stale
heartbeat, complete, retry or dead over the new holder, and a stale document over
the newer one (a lost update). With fencing, the queue and the documents store
both refuse a token older than the newest they have seen.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import HandlerContext, QueueConfig
from failfirst.processor.worker import WorkerConfig
from failfirst.proofs.explorer import depth_first
from failfirst.proofs.run import RunResult, simulate
from failfirst.sim.choices import ReplayChoices
from failfirst.sim.scenario import FaultPlan, JobSpec, Scenario, Sometimes
from failfirst.sim.services import VersionedResource
from failfirst.store import Store
from failfirst.store.clock import SimClock

LEASE = QueueConfig(lease_s=5.0, heartbeat_s=2.0, backoff_base_s=1.0, backoff_cap_s=2.0)
WORK = WorkerConfig(work_s=3.0)


class UploadTimeout(Exception):
    """The documents store did not answer in time: a handled failure, retried by the queue."""


def publish(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """Render a document from the source as of now (the worker's own clock), and write
    it at the end of the work, carrying the lease's token. The effect the queue commits
    is the publication record."""
    documents: VersionedResource = ctx.services["documents"]
    body = {"text": payload["text"], "as_of_s": ctx.now_s(), "attempt": ctx.attempt}

    def upload() -> None:
        if ctx.attempt <= payload.get("fail_attempts", 0):
            raise UploadTimeout(f"attempt {ctx.attempt}: the upload of {payload['doc']!r} timed out")
        documents.write(ctx, payload["doc"], body)

    ctx.at_end(upload)
    return [("published", 1)]


def documents(store: Store, guard: Guardrails) -> dict[str, Any]:
    """The run's downstream documents store, fenced when the queue is."""
    return {"documents": VersionedResource(store, "documents", fencing=guard.fencing)}


def zombie_wrote(events: list[dict[str, Any]]) -> bool:
    """A worker made a write (heartbeat, downstream write, complete, retry or dead, or a
    refusal of one) with a lease token older than the job's newest: the zombie acted."""
    newest: dict[int, int] = {}
    for e in events:
        if e["kind"] == "claim":
            newest[e["job"]] = e["token"]
        elif (e["kind"] in ("heartbeat", "write", "complete", "retry", "dead", "refused")
              and e["job"] in newest and e["token"] is not None and e["token"] < newest[e["job"]]):
            return True
    return False


def zombie_refused_by_the_queue(events: list[dict[str, Any]]) -> bool:
    """The queue's fence refused a zombie's late heartbeat, completion, retry or dead letter
    (a refusal by the queue is the worker's own event; the documents store logs its own)."""
    return any(e["kind"] == "refused" and e["actor"] != "documents" for e in events)


def zombie_refused_downstream(events: list[dict[str, Any]]) -> bool:
    """The documents store's fence refused a zombie's stale write (no lost update)."""
    return any(e["kind"] == "refused" and e.get("attempted") == "write" for e in events)


SCENARIO = Scenario(
    id="FM_006",
    title="Zombie worker",
    guardrail="fencing",
    invariants=("INV_003", "INV_001"),
    handlers={"publish": publish},
    jobs=(JobSpec("publish", {"doc": "a", "text": "pricing v2", "fail_attempts": 1}),
          JobSpec("publish", {"doc": "b", "text": "terms v7", "fail_attempts": 1},
                  max_attempts=2)),
    workers=2,
    faults=FaultPlan(
        # After the claim, while working, and between the downstream write and the commit.
        points={"claimed": ("pause", "skew"), "working": ("pause",), "called": ("pause",)},
        max_faults=3,
        pause_s=7.0,  # longer than the lease: the reaper takes the job back meanwhile
        skew_rate=0.25,
    ),
    queue=LEASE,
    worker=WORK,
    progress_bound_s=60.0,
    max_steps=300,
    services=documents,
    reached=zombie_wrote,
    sometimes=(Sometimes("a zombie's write refused by the queue", zombie_refused_by_the_queue),
               Sometimes("a zombie's write refused downstream", zombie_refused_downstream)),
    description=__doc__ or "",
)


def stale_writes(run: RunResult) -> set[str]:
    """The kinds of the stale writes a run's INV_003 violations name: ``heartbeat``,
    ``write`` (downstream: a lost update), ``effect``, ``complete``, ``retry``, ``dead``."""
    by_seq = {e["seq"]: e for e in run.events}
    return {by_seq[seq]["kind"] for v in run.violations if v.invariant == "INV_003"
            for seq in v.events}


#: The kinds of stale write a lease holder can make, each found and shrunk on its own.
STALE_KINDS = ("heartbeat", "write", "complete", "retry", "dead")


#: One fault makes a zombie of each kind: the stale writes are looked for at this bound.
ONE_FAULT = replace(SCENARIO, faults=replace(SCENARIO.faults, max_faults=1))


def first_of_each_kind(limit: int = 100_000) -> dict[str, RunResult]:
    """One depth-first pass over the schedules without fencing, at one fault: for each
    kind of stale write, the first schedule that lands it, re-run on a store of its own."""
    shared = Store.memory(SimClock())
    first: dict[str, list[int]] = {}
    for run in depth_first(lambda source: simulate(ONE_FAULT, False, source, store=shared), limit):
        for kind in stale_writes(run) & set(STALE_KINDS):
            first.setdefault(kind, list(run.choices))
        if len(first) == len(STALE_KINDS):
            break
    return {kind: simulate(ONE_FAULT, False, ReplayChoices(first[kind]))
            for kind in STALE_KINDS if kind in first}
