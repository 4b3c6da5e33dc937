"""FM_004 recovered: a queue that ran without lease expiry is left with jobs leased
forever by dead workers. With the guardrail deployed, recovery gives every such lease
a deadline; when it passes the reaper takes the job back and it completes exactly
once. Running recovery twice equals running it once."""

from __future__ import annotations

from failfirst.processor.queue import JobQueue
from failfirst.processor.recovery import recover
from failfirst.proofs import checkers
from failfirst.proofs.explorer import depth_first, with_bounds
from failfirst.proofs.run import simulate
from failure_modes.FM_004_stuck_queue.scenario import LEASE, SCENARIO, drain, stuck_job


def test_recovery_bounds_the_lease_and_the_job_completes_once():
    clock, store, job = stuck_job()
    queue = JobQueue(store, SCENARIO.handlers, config=LEASE)
    drain(queue, clock)  # a live worker alone cannot take it: the lease never ends
    assert store.job(job).state == "leased"
    first = recover(queue)
    assert first.bounded == (job,) and first.expired == 0
    clock.advance_to(clock.now_s() + LEASE.lease_s)
    assert recover(queue).expired == 1
    drain(queue, clock)
    assert store.job(job).state == "succeeded" and len(store.effects(job)) == 1
    events = store.events()
    assert [v for v in checkers.check(events, store) if v.invariant != "INV_004"] == []
    assert checkers.check_inv006_recovered(events, store) == []


def test_running_recovery_twice_equals_running_it_once():
    _, store, _ = stuck_job()
    queue = JobQueue(store, SCENARIO.handlers, config=LEASE)
    recover(queue)
    image, events = store.image(), store.events()
    second = recover(queue)
    assert second.bounded == () and second.expired == 0
    assert store.image() == image and store.events() == events


def test_recovery_unsticks_every_stranded_job_of_every_one_fault_schedule():
    scenario = with_bounds(SCENARIO, max_faults=1)
    stranded = 0
    for run in depth_first(lambda source: simulate(scenario, False, source), limit=1000):
        store, clock = run.store, run.store.clock
        stranded += "INV_004" in run.invariants_violated
        queue = JobQueue(store, SCENARIO.handlers, config=LEASE)
        recover(queue)
        clock.advance_to(clock.now_s() + LEASE.lease_s)
        recover(queue)
        drain(queue, clock)
        assert {j.state for j in store.jobs()} == {"succeeded"}, run.schedule
        assert all(len(store.effects(j.id)) == 1 for j in store.jobs()), run.schedule
        assert checkers.check_inv006_recovered(store.events(), store) == [], run.schedule
    assert stranded > 0
