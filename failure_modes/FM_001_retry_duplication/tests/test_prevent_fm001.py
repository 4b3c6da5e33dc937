"""FM_001 prevented: with the idempotent commit boundary, no schedule within the
bounds applies an effect twice — and the same exploration with the guardrail
off does, so the proof is not vacuous."""

from __future__ import annotations

import dataclasses

from failfirst.proofs.explorer import explore, find_run
from failfirst.proofs.prove import prove
from failfirst.proofs.run import run_scenario
from failure_modes.FM_001_retry_duplication.scenario import SCENARIO


def test_exhaustive_proof_at_default_bounds(check_pinned):
    result = prove(SCENARIO)
    proof, control = result.proof, result.control
    check_pinned(proof)
    assert "INV_001" in control.counterexample.result.invariants_violated


def test_the_batched_path_of_real_runs_is_proved_too():
    # `failfirst stress` and `make bench` claim and commit jobs in batches
    # (failfirst.processor.queue); the same exploration covers that path.
    batched = dataclasses.replace(SCENARIO, worker=dataclasses.replace(SCENARIO.worker, batch=2))
    proof = explore(batched, guard=True)
    assert proof.exhaustive and proof.violating == 0 and proof.reached > 0
    control = explore(batched, guard=False, stop_at_first=True, shrink_counterexample=False)
    assert control.violating > 0


def test_500_seeds_guard_on_clean_guard_off_violating():
    violating_off = reached_on = 0
    for seed in range(500):
        on = run_scenario(SCENARIO, guard=True, seed=seed)
        off = run_scenario(SCENARIO, guard=False, seed=seed)
        assert on.violations == [], f"seed {seed}: {on.violations}"
        reached_on += on.reached
        violating_off += "INV_001" in off.invariants_violated
    assert reached_on > 100, "the seeds exercise redelivery with the guardrail on"
    assert violating_off > 100, "the same seeds duplicate effects with the guardrail off"


def test_zombie_commit_is_refused_by_the_fence():
    def refused_complete(run):
        return any(e["kind"] == "refused" and e["attempted"] == "complete" for e in run.events)

    run = find_run(SCENARIO, True, refused_complete, max_faults=1)
    assert run is not None, "no schedule let a paused worker try to commit late"
    assert run.violations == []
    zombie = next(e for e in run.events if e["kind"] == "refused")
    later_claims = [e for e in run.events if e["kind"] == "claim" and e["job"] == zombie["job"]]
    assert zombie["token"] < later_claims[-1]["token"]
    assert len(run.store.effects(zombie["job"])) == 1
