"""FM_007 reproduced: a recovery that re-implements the lease take-back instead of
calling the reaper's code and the transition table requeues jobs by its own rule.
Every step it logs is a legal transition; the refinement check names the state it
left, which no normal schedule reaches, and the schedule that led to it."""

from __future__ import annotations

from dataclasses import replace

from failfirst.proofs import checkers
from failfirst.proofs.prove import reproduce
from failfirst.proofs.run import replay
from failure_modes.FM_007_recovery_drift.scenario import SCENARIO


def test_exploration_finds_the_drift_and_its_minimal_counterexample_replays():
    cx = reproduce(SCENARIO)  # shrunk, and replayed to the same digest and violations
    drift = [v for v in cx.violations if v["invariant"] == "INV_006"]
    assert drift and "no normal schedule" in drift[0]["detail"]
    assert cx.faults == 0, "no fault at all: the drift is in the code, not in the schedule"


def test_the_drift_is_a_legal_transition_to_a_state_normal_processing_never_reaches():
    cx = reproduce(SCENARIO)
    run = replay(SCENARIO, cx.schedule, guard=False)
    by_seq = {e["seq"]: e for e in run.events}
    drift = next(v for v in run.violations if v.invariant == "INV_006")
    step = by_seq[drift.events[0]]
    assert step["actor"] == "recovery" and step["kind"] == "expire"
    # The history checker sees a legal transition with the current token: no INV_003.
    assert not [v for v in checkers.check(run.events, run.store) if v.invariant == "INV_003"]
    # What went wrong is the state: the job's single attempt was spent, so the reaper
    # (normal processing) would have dead-lettered it; recovery requeued it instead.
    assert SCENARIO.jobs[drift.job - 1].max_attempts == 1 and "pending with 1 attempt" in drift.detail


def test_recovery_took_a_live_workers_lease_whose_commit_the_fence_then_refused():
    cx = reproduce(SCENARIO)
    run = replay(SCENARIO, cx.schedule, guard=False)
    taken = next(e for e in run.events if e["actor"] == "recovery" and e["kind"] == "expire")
    holder = next(e for e in run.events if e["kind"] == "claim" and e["token"] == taken["token"]
                  and e["job"] == taken["job"])
    assert not any(e["kind"] == "crash" and e["actor"] == holder["actor"] for e in run.events)
    refused = [e for e in run.events if e["kind"] == "refused" and e["actor"] == holder["actor"]]
    assert refused, "the live holder's late write was refused by its fencing token"


def test_without_the_refinement_check_the_drift_is_seen_only_later_and_not_as_recovery():
    cx = reproduce(SCENARIO)
    plain = replay(replace(SCENARIO, checks=()), cx.schedule, guard=False)
    named = {v.invariant for v in plain.violations}
    assert "INV_006" not in named, "no other checker blames the recovery"
    assert named <= {"INV_005"}, "at most the budget overrun that followed, on a later claim"
