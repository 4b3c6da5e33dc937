"""FM_004 prevented: with lease expiry, heartbeats and the reaper, every job reaches
succeeded or dead within the progress bound after the last fault, in every schedule
within the bounds; the same exploration without them strands a job. A lease shorter
than the work without heartbeats brings back FM_001; heartbeats fix it."""

from __future__ import annotations

from failfirst.proofs.explorer import explore
from failfirst.proofs.prove import prove
from failfirst.proofs.run import run_scenario
from failure_modes.FM_004_stuck_queue.scenario import LEASE, SCENARIO, SHORT_LEASE, WORK


def test_exhaustive_proof_at_default_bounds(check_pinned):
    result = prove(SCENARIO)
    proof, control = result.proof, result.control
    check_pinned(proof)
    assert "INV_004" in control.counterexample.result.invariants_violated


def test_the_stranded_job_comes_back_within_the_bound():
    for seed in range(200):
        run = run_scenario(SCENARIO, guard=True, seed=seed)
        crashes = [e for e in run.events if e["kind"] == "crash" and e["job"] is not None]
        if crashes:
            break
    else:
        raise AssertionError("no seed crashed a worker holding a job")
    assert run.violations == []
    job = crashes[0]["job"]
    expire = [e for e in run.events if e["kind"] == "expire" and e["job"] == job]
    done = [e for e in run.events if e["kind"] == "complete" and e["job"] == job]
    assert expire and done and done[-1]["t"] - crashes[0]["t"] <= SCENARIO.progress_bound_s


def test_heartbeats_keep_a_lease_shorter_than_the_work():
    assert WORK.work_s > LEASE.lease_s
    run = run_scenario(SCENARIO, guard=True, seed=0)
    beats = [e for e in run.events if e["kind"] == "heartbeat"]
    assert beats and run.violations == []


def test_a_lease_shorter_than_the_work_without_heartbeats_brings_back_fm001():
    off = explore(SHORT_LEASE, guard=False, stop_at_first=True, shrink_counterexample=False)
    assert off.violating > 0
    run = off.counterexample.result
    assert "INV_001" in run.invariants_violated
    assert not any(e["kind"] == "crash" for e in run.events), "no fault at all: only the lease"
    proof = explore(SHORT_LEASE, guard=True)
    assert proof.exhaustive and proof.violating == 0 and proof.reached == proof.schedules
