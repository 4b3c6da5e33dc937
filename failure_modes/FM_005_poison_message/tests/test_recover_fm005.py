"""FM_005 recovered: after the handler is fixed, redriving the dead letters completes
each poison job exactly once; redriving before the fix only dead-letters it again,
within its attempt budget; and a job that is not dead cannot be redriven."""

from __future__ import annotations

import pytest

from failfirst.processor.queue import JobQueue, WorkerCrash
from failfirst.processor.transitions import IllegalTransition
from failfirst.proofs import checkers
from failfirst.proofs.run import simulate
from failfirst.sim.choices import RandomChoices
from failure_modes.FM_005_poison_message.scenario import MAX_ATTEMPTS, SCENARIO, drain, fixed_queue


def _dead_lettered():
    run = simulate(SCENARIO, True, RandomChoices(0, fault_rate=0.0))  # the payload's faults only
    assert [job.state for job in run.store.jobs()] == ["dead", "dead", "succeeded", "succeeded"]
    return run.store


def test_redrive_after_the_fix_completes_each_poison_job_exactly_once():
    store = _dead_lettered()
    queue = fixed_queue(store)
    for job, _reason, _t in store.dead_letters():
        queue.redrive(job)
    assert store.dead_letters() == []
    drain(queue, store.clock)
    assert {job.state for job in store.jobs()} == {"succeeded"}
    assert all(len(store.effects(job.id)) == 1 for job in store.jobs())
    events = store.events()
    redrives = [e for e in events if e["kind"] == "redrive"]
    assert [e["job"] for e in redrives] == [1, 2]
    assert [v for v in checkers.check(events, store) if v.invariant != "INV_004"] == []


def test_redrive_before_the_fix_dead_letters_it_again_within_its_budget():
    store = _dead_lettered()
    queue = JobQueue(store, SCENARIO.handlers, config=SCENARIO.queue)  # still the bad handler
    queue.redrive(1)
    claims_before = sum(1 for e in store.events() if e["kind"] == "claim" and e["job"] == 1)
    for _ in range(MAX_ATTEMPTS + 2):
        try:
            drain(queue, store.clock, worker="w9")
            break
        except WorkerCrash:  # the bad handler kills this worker too; the supervisor restarts it
            store.clock.advance_to(store.clock.now_s() + SCENARIO.faults.restart_s)
    claims = sum(1 for e in store.events() if e["kind"] == "claim" and e["job"] == 1)
    assert store.job(1).state == "dead" and claims - claims_before == MAX_ATTEMPTS
    assert [v for v in checkers.check(store.events(), store) if v.invariant != "INV_004"] == []


def test_only_a_dead_job_can_be_redriven():
    store = _dead_lettered()
    with pytest.raises(IllegalTransition):
        fixed_queue(store).redrive(3)
