"""FM_001 recovered: a crash after the effect committed but before the
acknowledgement leaves a job whose effect is whole; recovery (reaper plus
reconciliation) completes it without running it again, and is idempotent."""

from __future__ import annotations

import pytest

from failfirst import checkers
from failfirst.clock import SimClock
from failfirst.policies import Guardrails
from failfirst.processor import JobQueue
from failfirst.recovery import recover
from failfirst.store import Store
from failfirst.worker import Point, WorkerConfig, worker_loop
from failure_modes.FM_001_retry_duplication.scenario import SCENARIO


def _crash_after_effect(guardrails: Guardrails):
    clock = SimClock()
    store = Store.memory(clock)
    queue = JobQueue(store, SCENARIO.handlers, guardrails=guardrails, config=SCENARIO.queue)
    job = queue.enqueue("charge", {"order": "A-1", "amount_cents": 1250})
    loop = worker_loop("w1", queue, WorkerConfig(work_s=1.0))
    for _ in range(10):
        step = next(loop)
        if isinstance(step, Point) and step.name == "effect_written":
            break
        clock.advance_to(clock.now_s() + step.wait_s)
    loop.close()  # the worker dies here: effect committed, completion never sent
    store.append_event(actor="w1", job=job, kind="crash", point="effect_written")
    clock.advance_to(clock.now_s() + SCENARIO.queue.lease_s)
    return clock, store, queue, job


def _drain(queue, clock):
    loop = worker_loop("w2", queue, WorkerConfig(work_s=1.0))
    for _ in range(20):
        step = next(loop)
        if not isinstance(step, Point):
            return
        clock.advance_to(clock.now_s() + step.wait_s)


GUARD_OFF = Guardrails().without("idempotent_commit")


def test_recovery_completes_the_job_with_exactly_one_effect():
    clock, store, queue, job = _crash_after_effect(GUARD_OFF)
    assert store.job(job).state == "leased" and len(store.effects(job)) == 1
    report = recover(queue)
    assert report.expired == 1 and report.reconciled == (job,)
    _drain(queue, clock)  # a worker comes back: nothing left to run
    assert store.job(job).state == "succeeded"
    assert len(store.effects(job)) == 1
    events = store.events()
    assert [v for v in checkers.check(events, store) if v.invariant != "INV_004"] == []


def test_running_recovery_twice_equals_running_it_once():
    _, store, queue, _ = _crash_after_effect(GUARD_OFF)
    recover(queue)
    once = store.image()
    second = recover(queue)
    assert second.expired == 0 and second.reconciled == ()
    assert store.image() == once


def test_without_reconciliation_the_job_runs_again_and_doubles_its_effect():
    clock, store, queue, job = _crash_after_effect(GUARD_OFF.without("reconciliation"))
    recover(queue)
    _drain(queue, clock)
    assert store.job(job).state == "succeeded"
    assert len(store.effects(job)) == 2
    assert "INV_001" in {v.invariant for v in checkers.check(store.events(), store)}


@pytest.mark.parametrize("point", ["claimed", "commit"])
def test_with_the_guardrail_a_crash_leaves_nothing_to_reconcile(point):
    clock = SimClock()
    store = Store.memory(clock)
    queue = JobQueue(store, SCENARIO.handlers, config=SCENARIO.queue)
    job = queue.enqueue("charge", {"order": "A-1", "amount_cents": 1250})
    queue.claim("w1")  # the worker dies before its one commit: nothing was written
    clock.advance_to(clock.now_s() + SCENARIO.queue.lease_s)
    report = recover(queue)
    assert report.expired == 1 and report.reconciled == ()
    _drain(queue, clock)
    assert store.job(job).state == "succeeded" and len(store.effects(job)) == 1
