"""Recovery: restore every invariant after a crash, idempotently.

Recovery runs through the ordinary machinery (never a second set of transitions —
see FM_007), in three passes:

1. with lease expiry on, every lease taken without a deadline (while the
   guardrail was off) gets one, so that a dead holder's job comes back (FM_004);
2. the reaper takes back every expired lease;
3. reconciliation reads the attempt log and the effects and brings each job's
   effect back to exactly once: a **torn** effect of a job that has not
   succeeded is rolled back, a part written twice keeps one copy — each removal
   recorded as a ``repair`` event (FM_002) — and a pending job whose effect is
   already whole is completed, so that it is not run (and applied) again (FM_001).

Running recovery twice equals running it once.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

from failfirst.processor import transitions
from failfirst.processor.queue import BROKER_SERVICE, JobQueue
from failfirst.processor.worker import Point


@dataclass(frozen=True)
class RecoveryReport:
    expired: int
    reconciled: tuple[int, ...]
    #: (job, part, token) of every effect part removed (torn, or a duplicate).
    repaired: tuple[tuple[int, str, int], ...] = ()
    #: Jobs whose lease had no deadline and was given one.
    bounded: tuple[int, ...] = ()


def recover(queue: JobQueue, actor: str = "recovery") -> RecoveryReport:
    """Bound open-ended leases, reap expired ones, then (with the reconciliation
    guardrail) repair torn or duplicated effects and complete jobs whose effect is
    already whole. Runs :func:`recovery_loop` to its end."""
    loop = recovery_loop(queue, actor)
    for _ in range(MAX_RECOVERY_STEPS):
        try:
            next(loop)
        except StopIteration as done:
            return done.value
    raise AssertionError(f"recovery did not finish within {MAX_RECOVERY_STEPS} steps")


#: Steps one recovery may take: a few per job at most (bounded, like every loop).
MAX_RECOVERY_STEPS = 1_000_000


def recovery_loop(queue: JobQueue, actor: str = "recovery") -> Generator[Point, None, RecoveryReport]:
    """Recovery as an actor: one store transaction per step, a ``recovering`` step
    boundary after each, so that the simulator can run it beside restarting workers and
    crash it at any step (it then starts again from the top: every pass is idempotent).

    With ``recovery_via_transitions`` (FM_007) every state change goes through the
    transition table and the same code the reaper runs; without it, a hand-written
    re-implementation takes leases back (``_drifted_take_back``, FM_007)."""
    bounded = bound_leases(queue, actor) if queue.guard.lease_expiry else ()
    yield Point("recovering")
    expired = 0
    if queue.guard.recovery_via_transitions:
        for _ in range(1 + len(queue.store.jobs()) // queue.config.reap_batch):  # bounded
            reaped = queue.reap(actor)  # the reaper's own code: deadline, budget, token
            expired += reaped
            yield Point("recovering")
            if reaped < queue.config.reap_batch:
                break
    else:
        expired = _drifted_take_back(queue, actor)
        yield Point("recovering")
    reconciled: list[int] = []
    repaired: list[tuple[int, str, int]] = []
    if queue.guard.reconciliation:
        for job_id in [job.id for job in queue.store.jobs()]:  # one transaction per job
            with queue.store.transaction():
                job = queue.store.job(job_id)
                assert job is not None
                if job.state == "leased":
                    continue  # its holder may still be at work: never touch a live lease
                removed, kept = repair_effects(queue, job.id, job.state, actor)
                repaired.extend(removed)
                if job.state == "pending" and kept is not None:
                    transitions.apply(queue.store, job.id, "reconcile", actor=actor, token=None,
                                      effect_token=kept)
                    queue.store.end_attempt(job.id, kept, "reconciled")
                    reconciled.append(job.id)
            yield Point("recovering", job_id)
    return RecoveryReport(expired, tuple(reconciled), tuple(repaired), bounded)


def _drifted_take_back(queue: JobQueue, actor: str) -> int:
    """FM_007's drift, kept to be caught: the kind of "requeue orphaned jobs" script that
    recovery code grows when it re-implements a transition instead of calling it. At a
    restart it assumes every leased job is an orphan and writes it back to ``pending``
    itself: it checks no deadline (a live worker's lease is taken too) and no attempt
    budget (where the reaper would dead-letter, it requeues). It logs an ``expire``, a
    legal transition: only the refinement check sees that the state it leaves is one
    normal processing never reaches."""
    taken = 0
    with queue.store.transaction():
        for job in queue.store.jobs():
            if job.state != "leased":
                continue
            queue.store.compare_and_set_state(
                job.id, "leased", "pending", None, bump_token=False,
                columns={"lease_owner": None, "lease_expires_s": None},
            )
            queue.store.append_event(actor=actor, job=job.id, kind="expire", from_state="leased",
                                     to_state="pending", token=job.token, reason="orphaned at restart")
            taken += 1
    return taken


def bound_leases(queue: JobQueue, actor: str = "recovery") -> tuple[int, ...]:
    """Give every lease that outlives ``now + lease_s`` (one taken with lease expiry
    off: it never ends) the deadline ``now + lease_s``. A live holder extends it with
    its heartbeats; a dead holder's job is taken back by the reaper when it passes."""
    now_s = queue.store.clock.now_s()
    until_s = now_s + queue.config.lease_s
    batch = queue.config.reap_batch
    bounded = []
    with queue.store.transaction():
        # A batch at a time: a bounded lease no longer ends after ``until_s``, so each
        # query finds the next ones; a short batch is the last. (One batch only left
        # the rest without a deadline until the next recovery.)
        for _ in range(MAX_RECOVERY_STEPS):  # bounded: each pass bounds a batch, or ends
            found = queue.store.leases_ending_after(until_s, batch)
            for job_id, token in found:
                queue.store.extend_lease(job_id, token, until_s)
                queue.store.append_event(actor=actor, job=job_id, kind="lease_bounded", token=token,
                                         until=until_s)
                bounded.append(job_id)
            if len(found) < batch:
                break
    return tuple(bounded)


def repair_effects(queue: JobQueue, job_id: int, state: str, actor: str = "recovery",
                   ) -> tuple[list[tuple[int, str, int]], int | None]:
    """Inside the caller's transaction, bring one job's effect back to exactly once,
    reading the effects and the attempt log:

    - every part of a **whole** effect stands once: a copy written by another attempt
      than the one kept (the attempt that succeeded, else the first writer) is removed;
    - a **torn** effect of a job that has not succeeded is rolled back: its parts are
      removed, so that a re-run (or a redrive) writes it whole.

    Each removed part is recorded as a ``repair`` event (job, part, the token that wrote
    it). Returns the parts removed, as (job, part, token), and the token of the kept
    whole effect (None when the job has no whole effect)."""
    rows = queue.store.effects(job_id)
    if not rows:
        return [], None
    succeeded = {token for _job, token, _w, _t, outcome in queue.store.attempts(job_id)
                 if outcome == "succeeded"}
    writers: dict[str, list[tuple[int, int]]] = {}  # part -> [(token, amount)], in write order
    for _job, part, token, amount in rows:
        writers.setdefault(part, []).append((token, amount))
    need = max(queue.store.effect_parts_expected(job_id).values())
    whole = len(writers) >= need
    removed: list[tuple[int, str, int]] = []
    kept_tokens = []
    for part, copies in writers.items():
        if whole or state == "succeeded":
            keep = next((t for t, _ in copies if t in succeeded), copies[0][0])
            kept_tokens.append(keep)
            drop = [(t, a) for t, a in copies if t != keep]
            why = f"duplicate: part {part!r} stands from lease {keep}"
        else:
            drop = copies
            why = f"torn: {len(writers)} of {need} parts stand and the job has not succeeded"
        for token in dict.fromkeys(t for t, _ in drop):
            count = queue.store.delete_effect_part(job_id, part, token)
            for _t, amount in [c for c in drop if c[0] == token][:count]:
                queue.store.append_event(actor=actor, job=job_id, kind="repair", token=token,
                                         part=part, amount=amount, reason=why)
                removed.append((job_id, part, token))
    return removed, (min(kept_tokens) if whole else None)


def republish_outbox(queue: JobQueue, actor: str = "recovery") -> tuple[str, ...]:
    """FM_009: the sweep. Publish every outbox row not marked published, then mark it,
    as the relay does — for a relay that died or was never run. A row that was
    published but not marked (the relay died between its two steps) is published
    again, and the consumer drops the repeat by its message id. Safe to run twice: the
    second run finds every row marked. Returns the ids of the messages it published."""
    broker = queue.services[BROKER_SERVICE]
    sent: list[str] = []
    for _ in range(1 + len(queue.store.outbox())):  # bounded: each pass marks one row
        message = queue.next_outbox_message()
        if message is None:
            break
        broker.publish(actor, message)
        queue.mark_published(message, actor)
        sent.append(message["id"])
    return tuple(sent)


def redrive_spread(queue: JobQueue, per_window: int, window_s: float,
                   actor: str = "recovery") -> tuple[int, ...]:
    """Redrive every dead-lettered job, at most ``per_window`` of them per ``window_s``
    (FM_008): after an outage, the jobs it shed go back no faster than the recovering
    dependency can take them, instead of as one more herd. Returns the jobs redriven,
    in order; running it again finds no dead letter and redrives nothing."""
    assert per_window >= 1 and window_s > 0
    dead = sorted(job_id for job_id, _, _ in queue.store.dead_letters())
    for i, job_id in enumerate(dead):
        queue.redrive(job_id, actor, delay_s=round((i // per_window) * window_s, 6))
    return tuple(dead)
