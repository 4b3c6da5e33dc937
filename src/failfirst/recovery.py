"""Recovery: restore every invariant after a crash, idempotently.

Recovery is two passes through the ordinary machinery (never a second set of
transitions — see FM_007): the reaper takes back every expired lease, then
reconciliation reads the attempt log and the effects and completes each job
whose effect is already whole, so that it is not run (and applied) again.
Running recovery twice equals running it once.
"""

from __future__ import annotations

from dataclasses import dataclass

from failfirst import transitions
from failfirst.processor import JobQueue


@dataclass(frozen=True)
class RecoveryReport:
    expired: int
    reconciled: tuple[int, ...]


def recover(queue: JobQueue, actor: str = "recovery") -> RecoveryReport:
    """Reap expired leases, then (with the reconciliation guardrail) complete jobs whose
    effect a crashed attempt already applied in full."""
    expired = 0
    for _ in range(1 + len(queue.store.jobs()) // queue.config.reap_batch):  # bounded
        reaped = queue.reap(actor)
        expired += reaped
        if reaped < queue.config.reap_batch:
            break
    reconciled: list[int] = []
    if queue.guard.reconciliation:
        with queue.store.transaction():
            for job in queue.store.jobs():
                if job.state != "pending":
                    continue
                parts = effect_parts_by_token(queue, job.id)
                whole = [token for token, (have, need) in parts.items() if have >= need > 0]
                if whole:
                    transitions.apply(queue.store, job.id, "reconcile", actor=actor, token=None,
                                      effect_token=whole[0])
                    queue.store.end_attempt(job.id, whole[0], "reconciled")
                    reconciled.append(job.id)
    return RecoveryReport(expired, tuple(reconciled))


def effect_parts_by_token(queue: JobQueue, job_id: int) -> dict[int, tuple[int, int]]:
    """For each lease token of a job: (distinct effect parts applied, parts expected)."""
    applied: dict[int, set[str]] = {}
    for _job, part, token, _amount in queue.store.effects(job_id):
        applied.setdefault(token, set()).add(part)
    expected = queue.store.effect_parts_expected(job_id)
    return {token: (len(parts), expected.get(token, len(parts))) for token, parts in applied.items()}
