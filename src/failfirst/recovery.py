"""Recovery: restore every invariant after a crash, idempotently.

Recovery runs through the ordinary machinery (never a second set of transitions —
see FM_007), in three passes:

1. with lease expiry on, every lease taken without a deadline (while the
   guardrail was off) gets one, so that a dead holder's job comes back (FM_004);
2. the reaper takes back every expired lease;
3. reconciliation reads the attempt log and the effects: it **repairs** torn
   effects — the parts an attempt wrote before it died without finishing are
   removed, each removal recorded as a ``repair`` event (FM_002) — and it
   completes each pending job whose effect is already whole, so that it is not
   run (and applied) again (FM_001).

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
    #: (job, part, token) of every torn effect part removed.
    repaired: tuple[tuple[int, str, int], ...] = ()
    #: Jobs whose lease had no deadline and was given one.
    bounded: tuple[int, ...] = ()


def recover(queue: JobQueue, actor: str = "recovery") -> RecoveryReport:
    """Bound open-ended leases, reap expired ones, then (with the reconciliation
    guardrail) repair torn effects and complete jobs whose effect is already whole."""
    bounded = bound_leases(queue, actor) if queue.guard.lease_expiry else ()
    expired = 0
    for _ in range(1 + len(queue.store.jobs()) // queue.config.reap_batch):  # bounded
        reaped = queue.reap(actor)
        expired += reaped
        if reaped < queue.config.reap_batch:
            break
    reconciled: list[int] = []
    repaired: list[tuple[int, str, int]] = []
    if queue.guard.reconciliation:
        with queue.store.transaction():
            for job in queue.store.jobs():
                if job.state == "leased":
                    continue  # its holder may still be at work: never touch a live lease
                repaired.extend(repair_torn_effects(queue, job.id, actor))
                if job.state != "pending":
                    continue
                parts = effect_parts_by_token(queue, job.id)
                whole = [token for token, (have, need) in parts.items() if have >= need > 0]
                if whole:
                    transitions.apply(queue.store, job.id, "reconcile", actor=actor, token=None,
                                      effect_token=whole[0])
                    queue.store.end_attempt(job.id, whole[0], "reconciled")
                    reconciled.append(job.id)
    return RecoveryReport(expired, tuple(reconciled), tuple(repaired), bounded)


def bound_leases(queue: JobQueue, actor: str = "recovery") -> tuple[int, ...]:
    """Give every lease that outlives ``now + lease_s`` (one taken with lease expiry
    off: it never ends) the deadline ``now + lease_s``. A live holder extends it with
    its heartbeats; a dead holder's job is taken back by the reaper when it passes."""
    now_s = queue.store.clock.now_s()
    until_s = now_s + queue.config.lease_s
    bounded = []
    with queue.store.transaction():
        for job_id, token in queue.store.leases_ending_after(until_s, queue.config.reap_batch):
            queue.store.extend_lease(job_id, token, until_s)
            queue.store.append_event(actor=actor, job=job_id, kind="lease_bounded", token=token,
                                     until=until_s)
            bounded.append(job_id)
    return tuple(bounded)


def repair_torn_effects(queue: JobQueue, job_id: int, actor: str = "recovery",
                        ) -> list[tuple[int, str, int]]:
    """Inside the caller's transaction: remove the parts of every torn effect of a job —
    an attempt that wrote fewer parts than its effect has and did not succeed — and
    record a ``repair`` event per part. Afterwards the job's effect is all-or-nothing
    again, and a re-run writes it whole. Returns (job, part, token) per part removed."""
    outcomes = {token: outcome for _job, token, _w, _t, outcome in queue.store.attempts(job_id)}
    repaired = []
    for token, (have, need) in sorted(effect_parts_by_token(queue, job_id).items()):
        if have >= need or outcomes.get(token) == "succeeded":
            continue
        rows = [(part, amount) for _job, part, t, amount in queue.store.effects(job_id) if t == token]
        for part in dict.fromkeys(part for part, _ in rows):
            removed = queue.store.delete_effect_part(job_id, part, token)
            for amount in [a for p, a in rows if p == part][:removed]:
                queue.store.append_event(
                    actor=actor, job=job_id, kind="repair", token=token, part=part, amount=amount,
                    reason=f"torn effect: lease {token} wrote {have} of {need} parts "
                           "and never finished",
                )
                repaired.append((job_id, part, token))
    return repaired


def effect_parts_by_token(queue: JobQueue, job_id: int) -> dict[int, tuple[int, int]]:
    """For each lease token of a job: (distinct effect parts applied, parts expected)."""
    applied: dict[int, set[str]] = {}
    for _job, part, token, _amount in queue.store.effects(job_id):
        applied.setdefault(token, set()).add(part)
    expected = queue.store.effect_parts_expected(job_id)
    return {token: (len(parts), expected.get(token, len(parts))) for token, parts in applied.items()}
