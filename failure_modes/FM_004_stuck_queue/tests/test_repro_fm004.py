"""FM_004 reproduced: without lease expiry, a worker that dies holding a job leaves it
leased forever; once the faults stop nothing moves it, and the checker names INV_004."""

from __future__ import annotations

from failfirst.proofs.explorer import depth_first, with_bounds
from failfirst.proofs.prove import reproduce
from failfirst.proofs.run import run_scenario, simulate
from failure_modes.FM_004_stuck_queue.scenario import SCENARIO

ONE_FAULT = with_bounds(SCENARIO, max_faults=1)


def test_exploration_finds_inv004_and_its_minimal_counterexample_replays():
    cx = reproduce(SCENARIO)  # shrunk, and replayed to the same digest and violations
    assert "INV_004" in {v["invariant"] for v in cx.violations}
    assert cx.faults == 1, "one crash is enough to strand a job"


def test_a_crash_holding_a_job_strands_it_and_the_run_goes_quiet():
    for run in depth_first(lambda source: simulate(ONE_FAULT, False, source), limit=1000):
        crashes = [e for e in run.events if e["kind"] == "crash" and e["job"] is not None]
        if crashes:
            break
    else:
        raise AssertionError("no schedule crashed a worker holding a job")
    job = crashes[0]["job"]
    assert run.end_reason == "quiescent", "every actor idles: nothing will ever move the job"
    stuck = run.store.job(job)
    assert stuck.state == "leased" and stuck.lease_owner == crashes[0]["actor"]
    assert stuck.lease_expires_s == float("inf"), "a lease with no deadline"
    inv004 = [v for v in run.violations if v.invariant == "INV_004"]
    assert [v.job for v in inv004] == [job]
    assert "no actor will ever move it" in inv004[0].detail
    assert not any(e["kind"] in ("expire", "heartbeat") for e in run.events)
    restarted = [e for e in run.events if e["kind"] == "restart"]
    assert restarted, "the worker came back, but the job it held did not"


def test_every_one_fault_crash_holding_a_job_violates():
    crashed = violated = 0
    for run in depth_first(lambda source: simulate(ONE_FAULT, False, source), limit=1000):
        if any(e["kind"] == "crash" and e["job"] is not None for e in run.events):
            crashed += 1
            violated += "INV_004" in run.invariants_violated
    assert crashed > 0 and violated == crashed


def test_default_cli_run_reports_inv004():
    hits = [s for s in range(20) if "INV_004" in run_scenario(SCENARIO, guard=False, seed=s)
            .invariants_violated]
    assert hits, "some of the first seeds strand a job"
