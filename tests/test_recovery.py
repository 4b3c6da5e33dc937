"""Recovery's passes, each through the ordinary machinery: bounding leases taken
without a deadline, reaping, repairing torn effects and reconciling whole ones."""

from __future__ import annotations

import pytest

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import Hooks, JobQueue, QueueConfig, WorkerCrash
from failfirst.processor.recovery import recover
from failfirst.processor.worker import Point, WorkerConfig, worker_loop
from failfirst.proofs import checkers
from failfirst.store import Store
from failfirst.store.clock import SimClock

CONFIG = QueueConfig(lease_s=10.0, heartbeat_s=4.0)


def transfer(payload, ctx):
    return [("debit", -payload["cents"]), ("credit", payload["cents"])]


class CrashOnSecondPart(Hooks):
    def __init__(self) -> None:
        self.seen = 0

    def in_transaction(self, actor: str, point: str) -> None:
        if point == "effect":
            self.seen += 1
            if self.seen == 2:
                raise WorkerCrash("killed between the two parts")


def _run(queue: JobQueue, clock: SimClock, name: str, steps: int = 20) -> None:
    loop = worker_loop(name, queue, WorkerConfig(work_s=1.0))
    for _ in range(steps):
        step = next(loop)
        if not isinstance(step, Point):
            return
        clock.advance_to(clock.now_s() + step.wait_s)


def _torn():
    clock = SimClock()
    store = Store.memory(clock)
    off = Guardrails().without("atomic_effect")
    queue = JobQueue(store, {"transfer": transfer}, guardrails=off, config=CONFIG,
                     hooks=CrashOnSecondPart())
    job = queue.enqueue("transfer", {"cents": 500})
    with pytest.raises(WorkerCrash):
        _run(queue, clock, "w1")
    store.append_event(actor="w1", job=job, kind="crash", point="effect")
    clock.advance_to(clock.now_s() + CONFIG.lease_s)
    return clock, store, job


def test_without_atomic_effect_the_parts_commit_apart_and_a_crash_tears_them():
    _, store, job = _torn()
    assert [(p, a) for _, p, _, a in store.effects(job)] == [("debit", -500)]
    inv002 = [v for v in checkers.check(store.events(), store) if v.invariant == "INV_002"]
    assert len(inv002) == 1 and "1 of 2" in inv002[0].detail


def test_recovery_removes_the_torn_part_records_it_and_the_rerun_is_whole():
    clock, store, job = _torn()
    queue = JobQueue(store, {"transfer": transfer}, config=CONFIG)  # the guardrail deployed
    report = recover(queue)
    assert report.expired == 1 and report.repaired == ((job, "debit", 1),)
    assert store.effects(job) == []
    repairs = [e for e in store.events() if e["kind"] == "repair"]
    assert [(e["job"], e["part"], e["token"]) for e in repairs] == [(job, "debit", 1)]
    _run(queue, clock, "w2")
    assert store.job(job).state == "succeeded"
    assert sorted(p for _, p, _, _ in store.effects(job)) == ["credit", "debit"]
    events = store.events()
    assert checkers.check_inv006_recovered(events, store) == []
    assert checkers.check_inv007_records_agree(events, store) == []


def test_recovery_twice_equals_once():
    _, store, _ = _torn()
    queue = JobQueue(store, {"transfer": transfer}, config=CONFIG)
    recover(queue)
    image, events = store.image(), store.events()
    again = recover(queue)
    assert again.expired == 0 and again.repaired == () and again.reconciled == ()
    assert store.image() == image and store.events() == events


def test_without_reconciliation_the_torn_effect_stays_and_inv006_says_so():
    clock, store, job = _torn()
    queue = JobQueue(store, {"transfer": transfer}, config=CONFIG,
                     guardrails=Guardrails().without("reconciliation"))
    assert recover(queue).repaired == ()
    found = checkers.check_inv006_recovered(store.events(), store)
    assert [v.invariant for v in found] == ["INV_006"] and "still torn" in found[0].detail


def test_a_lease_taken_without_expiry_gets_a_deadline_then_is_reaped():
    clock = SimClock()
    store = Store.memory(clock)
    old = JobQueue(store, {"transfer": transfer}, config=CONFIG,
                   guardrails=Guardrails().without("lease_expiry"))
    job = old.enqueue("transfer", {"cents": 1})
    old.claim("w1")  # w1 dies holding it: with no deadline, nothing ever takes it back
    clock.advance_to(1000.0)
    queue = JobQueue(store, {"transfer": transfer}, config=CONFIG)
    first = recover(queue)
    assert first.bounded == (job,) and first.expired == 0
    assert store.job(job).lease_expires_s == 1000.0 + CONFIG.lease_s
    image = store.image()
    assert recover(queue).bounded == () and store.image() == image
    clock.advance_to(1000.0 + CONFIG.lease_s)
    assert recover(queue).expired == 1
    _run(queue, clock, "w2")
    assert store.job(job).state == "succeeded"


def test_a_live_lease_is_never_repaired():
    clock = SimClock()
    store = Store.memory(clock)
    queue = JobQueue(store, {"transfer": transfer}, config=CONFIG,
                     guardrails=Guardrails().without("atomic_effect"))
    job = queue.enqueue("transfer", {"cents": 1})
    lease = queue.claim("w1")
    queue.write_effects(lease, [("debit", -1)], "w1", parts=2)  # mid-way, still leased
    assert recover(queue).repaired == ()
    assert len(store.effects(job)) == 1


def test_a_part_written_twice_keeps_the_copy_of_the_attempt_that_succeeded():
    clock = SimClock()
    store = Store.memory(clock)
    queue = JobQueue(store, {"transfer": transfer}, config=CONFIG,
                     guardrails=Guardrails().without("idempotent_commit"))
    job = queue.enqueue("transfer", {"cents": 7})
    first = queue.claim("w1")
    queue.write_effects(first, transfer({"cents": 7}, None), "w1")  # then w1 dies
    clock.advance_to(CONFIG.lease_s)
    queue.reap()
    second = queue.claim("w2")
    queue.write_effects(second, transfer({"cents": 7}, None), "w2")
    assert queue.complete(second, "w2")
    report = recover(queue)
    assert sorted(report.repaired) == [(job, "credit", 1), (job, "debit", 1)]
    assert {token for _, _, token, _ in store.effects(job)} == {second.token}
    assert checkers.check_inv006_recovered(store.events(), store) == []
