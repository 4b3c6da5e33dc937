"""FM_001 reproduced: without the idempotent commit boundary, a redelivered job
applies its effect twice, and the checker names the job and both effects."""

from __future__ import annotations

from failfirst.proofs.explorer import depth_first, with_bounds
from failfirst.proofs.prove import reproduce
from failfirst.proofs.run import run_scenario, simulate
from failure_modes.FM_001_retry_duplication.scenario import SCENARIO

ONE_FAULT = with_bounds(SCENARIO, max_faults=1)


def _one_fault_runs():
    """Every schedule with at most one fault, guardrail off, in depth-first order."""
    return depth_first(lambda source: simulate(ONE_FAULT, False, source), limit=10_000)


def _faults(run):
    return [e for e in run.events if e["kind"] in ("crash", "pause", "lost_ack")]


def test_exploration_finds_inv001_and_its_minimal_counterexample_replays():
    cx = reproduce(SCENARIO)  # shrunk, and replayed to the same digest and violations
    assert "INV_001" in {v["invariant"] for v in cx.violations}
    assert cx.faults == 1, "one fault is enough to duplicate an effect"


def test_crash_after_the_effect_reruns_the_job_and_the_checker_names_both_effects():
    for run in _one_fault_runs():
        crashes = [e for e in _faults(run) if (e["kind"], e["point"]) == ("crash", "effect_written")]
        if crashes:
            break
    else:
        raise AssertionError("no schedule crashed a worker between its effect and its completion")
    job = crashes[0]["job"]
    inv001 = [v for v in run.violations if v.invariant == "INV_001" and v.job == job]
    assert len(inv001) == 1
    by_seq = {e["seq"]: e for e in run.events}
    named = [by_seq[s] for s in inv001[0].events]
    assert [e["kind"] for e in named] == ["effect", "effect"]
    assert named[0]["token"] < named[1]["token"], "the second effect came from a new lease"
    assert named[0]["actor"] == crashes[0]["actor"]
    expire = [e for e in run.events if e["kind"] == "expire" and e["job"] == job]
    assert expire and named[0]["seq"] < expire[0]["seq"] < named[1]["seq"]


def test_lost_ack_also_duplicates_the_effect():
    for run in _one_fault_runs():
        faults = _faults(run)
        if [e["kind"] for e in faults] == ["lost_ack"]:
            break
    else:
        raise AssertionError("no schedule lost exactly one acknowledgement")
    assert {v.invariant for v in run.violations} == {"INV_001"}
    assert run.violations[0].job == faults[0]["job"]


def test_default_cli_run_reports_inv001():
    run = run_scenario(SCENARIO, guard=False, seed=0)
    assert "INV_001" in run.invariants_violated
