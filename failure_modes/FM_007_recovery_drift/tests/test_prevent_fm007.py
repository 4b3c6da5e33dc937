"""FM_007 prevented: recovery that goes through the transition table and the reaper's
own code produces only states normal processing reaches, in every schedule within the
bounds — recovery crashing at any of its steps and starting over, the worker
restarting during it — and running it twice equals running it once; the same
exploration with the re-implemented recovery drifts."""

from __future__ import annotations

from failfirst.processor.recovery import recover
from failfirst.proofs.explorer import every_schedule
from failfirst.proofs.prove import prove
from failure_modes.FM_007_recovery_drift.scenario import (
    NORMAL,
    SCENARIO,
    recovery_crashed,
    restart_state,
    worker_restarted_during_recovery,
)


def test_exhaustive_proof_at_default_bounds(check_pinned):
    result = prove(SCENARIO)
    proof, control = result.proof, result.control
    check_pinned(proof)
    assert proof.reached > 0
    assert "INV_006" in control.counterexample.result.invariants_violated


def test_the_proof_covers_recovery_crashing_and_a_worker_restarting_during_it():
    crashed = restarted = 0
    for run in every_schedule(SCENARIO, True):
        assert run.violations == [], run.schedule
        crashed += recovery_crashed(run.events)
        restarted += worker_restarted_during_recovery(run.events)
    assert crashed > 0 and restarted > 0


def test_the_oracle_is_enumerated_from_normal_processing():
    refinement = SCENARIO.checks[0]
    oracle = refinement.oracle()
    assert refinement.normal is NORMAL and refinement.schedules() > 0
    # The reaper dead-letters a job whose single attempt expired; it never requeues it.
    assert (1, "dead", 1, 0) in oracle and (1, "pending", 1, 0) not in oracle
    assert (2, "pending", 1, 0) in oracle  # the second job has a second attempt


def test_running_recovery_twice_equals_running_it_once():
    clock, queue = restart_state()
    first = recover(queue)
    image, events = queue.store.image(), queue.store.events()
    assert first.expired == 1  # the dead worker's lease; the live one is left alone
    assert queue.store.job(1).state == "dead" and queue.store.job(2).state == "leased"
    second = recover(queue)
    assert second.expired == 0 and queue.store.image() == image and queue.store.events() == events


def test_the_reimplemented_recovery_takes_the_live_lease_too():
    clock, queue = restart_state()
    drifted = queue.guard.without("recovery_via_transitions")
    queue.guard = drifted
    report = recover(queue)
    assert report.expired == 2, "both leases, the live one included"
    assert queue.store.job(1).state == "pending", "and a spent job requeued, not dead-lettered"
