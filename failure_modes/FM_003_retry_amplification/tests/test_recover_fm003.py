"""FM_003 recovered: the jobs the guardrail shed during the outage wait in the
dead-letter queue with their reason; once the dependency is back, redriving them
completes each exactly once, with one request each."""

from __future__ import annotations

from collections import Counter

import pytest

from failfirst.processor.queue import JobQueue
from failfirst.processor.transitions import IllegalTransition
from failfirst.proofs import checkers
from failfirst.proofs.run import simulate
from failfirst.sim.choices import RandomChoices
from failfirst.sim.drain import drain
from failure_modes.FM_003_retry_amplification.scenario import figure_scenario

SCENARIO = figure_scenario()


def _after_the_outage():
    run = simulate(SCENARIO, True, RandomChoices(0, fault_rate=0.0))
    store = run.store
    assert run.violations == [] and store.clock.now_s() >= 20.0
    services = SCENARIO.services(store, SCENARIO.guardrails(True))
    return store, JobQueue(store, SCENARIO.handlers, config=SCENARIO.queue, services=services)



def test_shed_jobs_wait_with_their_reason():
    store, _ = _after_the_outage()
    letters = store.dead_letters()
    assert letters, "the budget shed load during the outage"
    assert all("RetryBudgetExhausted" in reason or "503" in reason for _, reason, _ in letters)


def test_redrive_after_the_outage_completes_each_job_exactly_once():
    store, queue = _after_the_outage()
    calls_before = sum(1 for e in store.events() if e["kind"] == "call")
    dead = [job for job, _, _ in store.dead_letters()]
    for job in dead:
        queue.redrive(job)
    drain(queue, store.clock, "w9", SCENARIO.worker, max_steps=500, follow_wakes=True)
    assert {job.state for job in store.jobs()} == {"succeeded"}
    assert all(len(store.effects(job.id)) == 1 for job in store.jobs())
    events = store.events()
    after = [e for e in events if e["kind"] == "call"][calls_before:]
    assert Counter(e["job"] for e in after) == dict.fromkeys(dead, 1), "one request each"
    assert all(e["ok"] and not e["retry"] for e in after)
    # The run's declared total covered the run; a redrive is an operator sending more
    # work, so only the per-job bounds (counted afresh after a redrive) apply to it.
    left = [v for v in checkers.check(events, store)
            if v.invariant != "INV_004" and not (v.invariant == "INV_005" and v.job is None)]
    assert left == []


def test_a_job_is_redriven_once():
    store, queue = _after_the_outage()
    job = store.dead_letters()[0][0]
    queue.redrive(job)
    with pytest.raises(IllegalTransition):
        queue.redrive(job)
