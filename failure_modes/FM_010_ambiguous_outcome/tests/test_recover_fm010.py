"""FM_010 recovered: reconciliation reads the provider's ledger by each job's
reference and brings both records into agreement — a second charge is refunded, a
job that gave up although the provider charged it is recorded as succeeded — and
running it twice equals running it once."""

from __future__ import annotations

import dataclasses

from failfirst.processor.worker import Idle, worker_loop
from failfirst.proofs import checkers
from failfirst.proofs.explorer import find_run
from failfirst.sim.service_recovery import reconcile_charges
from failure_modes.FM_010_ambiguous_outcome.scenario import SCENARIO, run_keeping_provider


def _double_charge():
    run = find_run(SCENARIO, False, lambda r: "INV_001" in r.invariants_violated, max_faults=1)
    assert run is not None
    return run_keeping_provider(SCENARIO, False, run.choices)


#: One attempt only: a job whose response was lost gives up although it was charged.
ONE_ATTEMPT = dataclasses.replace(
    SCENARIO, jobs=tuple(dataclasses.replace(j, max_attempts=1) for j in SCENARIO.jobs))


def _lost_response(guard):
    run = find_run(ONE_ATTEMPT, guard,
                   lambda r: any(e["kind"] == "response_lost" for e in r.events), max_faults=1)
    assert run is not None
    return run_keeping_provider(ONE_ATTEMPT, guard, run.choices)


def _gave_up_although_charged():
    return _lost_response(False)


def _state(store, provider):
    return store.image(), provider.ledger()


def test_a_second_charge_is_refunded_and_recovery_is_idempotent():
    store, provider, queue = _double_charge()
    [job] = {c.job for c in provider.charges if len(provider.charges_for(c.reference)) == 2}
    report = reconcile_charges(queue, provider)
    assert [j for j, _ in report.refunded] == [job] and report.completed == ()
    assert len(provider.charges_for(f"job-{job}")) == 1
    assert checkers.check_inv006_recovered(store.events(), store) == []
    once = _state(store, provider)
    again = reconcile_charges(queue, provider)
    assert again.refunded == () and again.completed == ()
    assert _state(store, provider) == once


def test_a_job_that_gave_up_although_charged_is_recorded_as_succeeded():
    store, provider, queue = _gave_up_although_charged()
    [dead] = [j.id for j in store.jobs() if j.state == "dead"]
    assert len(provider.charges_for(f"job-{dead}")) == 1, "the provider charged it anyway"
    charges_before = len(provider.charges)
    report = reconcile_charges(queue, provider)
    assert report.completed == (dead,) and report.refunded == ()
    assert store.job(dead).state == "succeeded" and store.dead_letters() == []
    assert len(provider.charges) == charges_before, "recorded, never charged again"
    events = store.events()
    assert [v for v in checkers.check(events, store) if v.invariant != "INV_004"] == []
    assert checkers.check_inv006_recovered(events, store) == []
    once = _state(store, provider)
    assert reconcile_charges(queue, provider).completed == ()
    assert _state(store, provider) == once


def test_without_reconciliation_a_redrive_charges_the_customer_again():
    store, provider, queue = _gave_up_although_charged()
    [dead] = [j.id for j in store.jobs() if j.state == "dead"]
    queue.redrive(dead)
    loop = worker_loop("w9", queue, SCENARIO.worker)
    for _ in range(50):  # bounded: one job to run, then idle
        step = next(loop)
        if isinstance(step, Idle):
            break
        store.clock.advance_to(store.clock.now_s() + step.wait_s)
    assert store.job(dead).state == "succeeded"
    assert len(provider.charges_for(f"job-{dead}")) == 2, "charged again"
    assert "INV_001" in {v.invariant for v in checkers.check(store.events(), store)}


def test_with_the_key_the_lost_response_is_resolved_in_the_attempt():
    store, provider, _ = _lost_response(True)
    assert {j.state for j in store.jobs()} == {"succeeded"}
    assert all(len(provider.charges_for(f"job-{j.id}")) == 1 for j in store.jobs())
