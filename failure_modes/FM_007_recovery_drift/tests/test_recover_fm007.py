"""FM_007 recovered: when drift already happened, the operator audits the history with
the refinement check (which names every job the drifted recovery left in a state no
normal schedule reaches, and the step that did it), replaces the recovery with the
one that calls the transition table, runs it (a no-op where nothing is left to do,
and idempotent), and lets the queue finish through the normal path; what the audit
found is reported, never silently rewritten."""

from __future__ import annotations

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import JobQueue
from failfirst.processor.recovery import recover
from failfirst.proofs import checkers
from failfirst.proofs.explorer import every_schedule, with_bounds
from failure_modes.FM_007_recovery_drift.scenario import LEASE, SCENARIO


def test_after_drift_the_audit_names_the_jobs_and_the_fixed_recovery_changes_nothing_more():
    audit = SCENARIO.checks[0]
    drifted = 0
    # Two faults: the drift needs none (a live lease at the restart is enough); the proof
    # itself runs at the scenario's bound.
    for run in every_schedule(with_bounds(SCENARIO, 2), False):
        found = audit(run.events, run.store)
        if not found:
            continue
        drifted += 1
        by_seq = {e["seq"]: e for e in run.events}
        assert all(by_seq[v.events[0]]["actor"] == "recovery" for v in found), run.schedule
        # The commit path held: whatever recovery did, no effect stands twice.
        assert [v for v in checkers.check(run.events, run.store)
                if v.invariant in ("INV_001", "INV_003")] == [], run.schedule
        queue = JobQueue(run.store, SCENARIO.handlers, guardrails=Guardrails(), config=LEASE)
        before = run.store.image()
        report = recover(queue)  # the fixed recovery: the run ended, nothing is left to do
        assert (report.expired, report.reconciled, report.repaired) == (0, (), ())
        assert run.store.image() == before, run.schedule
        assert {j.state for j in run.store.jobs()} <= {"succeeded", "dead"}, run.schedule
    assert drifted > 0
