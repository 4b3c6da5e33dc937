"""Recovery of the services a run calls, beside the queue's own recovery
(:mod:`failfirst.processor.recovery`): the provider's charges (FM_010) and a fenced
resource's rows (FM_006). Each reads the service's own record, repairs through its
public operations, and running it twice equals running it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from failfirst.processor import transitions
from failfirst.processor.queue import JobQueue
from failfirst.sim.services import PaymentProvider, VersionedResource, payment_reference


@dataclass(frozen=True)
class ChargeReport:
    #: (job, charge id) of every charge refunded: a second charge for one job.
    refunded: tuple[tuple[int, str], ...]
    #: Jobs recorded as succeeded because the provider holds their charge.
    completed: tuple[int, ...]


def reconcile_charges(queue: JobQueue, provider: PaymentProvider,
                      actor: str = "recovery") -> ChargeReport:
    """FM_010: bring the queue's record and the provider's into agreement, by each job's
    reference (the key derived from the job), reading the provider's ledger:

    - a job the provider charged more than once keeps its first charge; every later one
      is refunded (a ``refund`` event at the provider);
    - a job that is pending or dead although the provider holds its charge is recorded
      as succeeded, through the transition table (``redrive`` for a dead one, then
      ``reconcile``), so it is not charged again and not reported as failed.

    Leased jobs are left alone (their holder may be at work). Running it twice equals
    running it once: the second run finds one live charge per job and the jobs done."""
    refunded: list[tuple[int, str]] = []
    completed: list[int] = []
    for job in queue.store.jobs():
        if job.state == "leased":
            continue
        live = provider.charges_for(payment_reference(job.id))
        for extra in live[1:]:
            provider.refund(extra, actor, f"duplicate: {live[0].id} stands for the job")
            refunded.append((job.id, extra.id))
        if live and job.state != "succeeded":
            with queue.store.transaction():
                if job.state == "dead":
                    transitions.apply(queue.store, job.id, "redrive", actor=actor, token=None,
                                      reason=f"the provider holds charge {live[0].id}")
                    queue.store.delete_dead_letter(job.id)
                transitions.apply(queue.store, job.id, "reconcile", actor=actor, token=None,
                                  charge=live[0].id)
            completed.append(job.id)
    return ChargeReport(tuple(refunded), tuple(completed))


def restore_newest(resource: VersionedResource, actor: str = "recovery") -> tuple[str, ...]:
    """FM_006: find the stale writes in the history of a downstream resource and put back
    the newest value. For every row, the newest write is the one with the highest lease
    token (a later write of that same lease wins a tie); if the row now holds an older
    lease's value — a zombie's write landed after it — the newest value is restored and a
    ``restore`` event recorded. A row already at its newest value is left alone, so
    running this twice equals running it once. Returns the keys restored."""
    newest: dict[str, dict[str, Any]] = {}
    for e in resource.store.events():
        if e["kind"] == "write" and e["actor"] == resource.name:
            best = newest.get(e["key"])
            if best is None or e["token"] >= best["token"]:
                newest[e["key"]] = e
    restored = []
    for key, e in sorted(newest.items()):
        current_token, current_value = resource.rows[key]
        if (current_token, current_value) != (e["token"], e["value"]):
            resource.restore(e["job"], key, e["token"], e["value"], actor)
            restored.append(key)
    return tuple(restored)
