"""FM_001 recovered: a crash after the effect committed but before the
acknowledgement leaves a job whose effect is whole; recovery (reaper plus
reconciliation) completes it without running it again, and is idempotent."""

from __future__ import annotations

import pytest

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import Hooks, JobQueue, WorkerCrash
from failfirst.processor.recovery import recover
from failfirst.proofs import checkers
from failfirst.store import Store
from failfirst.store.clock import SimClock
from failure_modes.FM_001_retry_duplication.scenario import SCENARIO, crash_after_effect, drain

GUARD_OFF = Guardrails().without("idempotent_commit")


def test_recovery_completes_the_job_with_exactly_one_effect():
    clock, queue, job = crash_after_effect(GUARD_OFF)
    store = queue.store
    assert store.job(job).state == "leased" and len(store.effects(job)) == 1
    report = recover(queue)
    assert report.expired == 1 and report.reconciled == (job,)
    drain(queue, clock)  # a worker comes back: nothing left to run
    assert store.job(job).state == "succeeded"
    assert len(store.effects(job)) == 1
    events = store.events()
    assert [v for v in checkers.check(events, store) if v.invariant != "INV_004"] == []


def test_running_recovery_twice_equals_running_it_once():
    _, queue, _ = crash_after_effect(GUARD_OFF)
    store = queue.store
    recover(queue)
    once = store.image()
    second = recover(queue)
    assert second.expired == 0 and second.reconciled == ()
    assert store.image() == once


def test_without_reconciliation_the_job_runs_again_and_doubles_its_effect():
    clock, queue, job = crash_after_effect(GUARD_OFF.without("reconciliation"))
    store = queue.store
    recover(queue)
    drain(queue, clock)
    assert store.job(job).state == "succeeded"
    assert len(store.effects(job)) == 2
    assert "INV_001" in {v.invariant for v in checkers.check(store.events(), store)}


class _CrashInCommit(Hooks):
    def in_transaction(self, actor, point):
        if point == "commit":
            raise WorkerCrash("killed inside the commit transaction")


@pytest.mark.parametrize("where", ["after claim", "inside the commit"])
def test_with_the_guardrail_a_crash_leaves_nothing_to_reconcile(where):
    clock = SimClock()
    store = Store.memory(clock)
    hooks = _CrashInCommit() if where == "inside the commit" else None
    queue = JobQueue(store, SCENARIO.handlers, config=SCENARIO.queue, hooks=hooks)
    job = queue.enqueue("charge", {"order": "A-1", "amount_cents": 1250})
    lease = queue.claim("w1")
    if hooks is not None:
        with pytest.raises(WorkerCrash):
            queue.commit(lease, [("charge", 1250)], "w1")
    assert store.effects(job) == [], "the one transaction rolled back whole"
    clock.advance_to(clock.now_s() + SCENARIO.queue.lease_s)
    report = recover(queue)
    assert report.expired == 1 and report.reconciled == ()
    queue.hooks = Hooks()
    drain(queue, clock)
    assert store.job(job).state == "succeeded" and len(store.effects(job)) == 1
