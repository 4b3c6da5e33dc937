"""FM_002 recovered (INV_006): for data torn before the guardrail existed,
reconciliation finds the torn effect from the attempt log and the effects, rolls
it back (each removed part recorded as a ``repair`` event), and the re-run writes
the transfer whole. Over every guard-off schedule with one fault, recovery leaves
each transfer applied exactly once and the ledger balanced; twice equals once."""

from __future__ import annotations

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import JobQueue
from failfirst.processor.recovery import recover
from failfirst.proofs import checkers
from failfirst.proofs.explorer import depth_first, with_bounds
from failfirst.proofs.run import simulate
from failure_modes.FM_002_partial_write.scenario import SCENARIO, drain, ledger, torn_transfer


def test_recovery_rolls_back_the_torn_debit_and_the_rerun_writes_the_transfer_whole():
    clock, queue, job = torn_transfer()
    store = queue.store
    assert [part for _, part, _, _ in store.effects(job)] == ["debit"]
    assert sum(ledger(store).values()) != 0, "torn: the ledger does not balance"
    report = recover(queue)
    assert report.expired == 1 and report.repaired == ((job, "debit", 1),)
    repairs = [e for e in store.events() if e["kind"] == "repair"]
    assert len(repairs) == 1 and repairs[0]["reason"].startswith("torn")
    drain(queue, clock)
    assert store.job(job).state == "succeeded"
    assert sorted(part for _, part, _, _ in store.effects(job)) == ["credit", "debit"]
    assert sum(ledger(store).values()) == 0
    events = store.events()
    assert checkers.check_inv006_recovered(events, store) == []
    assert checkers.check_inv007_records_agree(events, store) == []


def test_running_recovery_twice_equals_running_it_once():
    _, queue, _ = torn_transfer()
    recover(queue)
    image, events = queue.store.image(), queue.store.events()
    second = recover(queue)
    assert second.expired == 0 and second.repaired == () and second.reconciled == ()
    assert queue.store.image() == image and queue.store.events() == events


def test_without_reconciliation_the_torn_debit_stays():
    _, queue, job = torn_transfer(Guardrails().without("reconciliation"))
    recover(queue)
    found = checkers.check_inv006_recovered(queue.store.events(), queue.store)
    assert [v.invariant for v in found] == ["INV_006"] and "still torn" in found[0].detail


def test_recovery_restores_every_guard_off_schedule_with_one_fault():
    """Exhaustive over the guard-off schedules with at most one fault: whatever the
    run left (a torn transfer, a debit applied twice, a zombie's late credit),
    recovery and a worker with every guardrail on leave each transfer once."""
    scenario = with_bounds(SCENARIO, max_faults=1)
    runs = torn = 0
    for run in depth_first(lambda source: simulate(scenario, False, source), limit=10_000):
        runs += 1
        torn += any("1 of 2" in v.detail for v in run.violations if v.invariant == "INV_002")
        store, clock = run.store, run.store.clock
        clock.advance_to(clock.now_s() + SCENARIO.queue.lease_s)
        queue = JobQueue(store, SCENARIO.handlers, config=SCENARIO.queue)
        recover(queue)
        image = store.image()
        again = recover(queue)
        assert again.repaired == () and again.reconciled == () and store.image() == image
        drain(queue, clock)
        events = store.events()
        assert checkers.check_inv006_recovered(events, store) == [], run.schedule
        assert checkers.check_inv007_records_agree(events, store) == [], run.schedule
        assert {job.state for job in store.jobs()} == {"succeeded"}, run.schedule
        assert sum(ledger(store).values()) == 0, run.schedule
    assert runs > 100 and torn > 0
