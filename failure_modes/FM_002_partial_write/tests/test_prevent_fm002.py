"""FM_002 prevented: with atomic_effect both parts and the completion are one
transaction, so no schedule within the bounds leaves a partial effect — and the
same exploration with the guardrail off finds one, so the proof is not vacuous."""

from __future__ import annotations

from failfirst.proofs.prove import prove
from failfirst.proofs.run import run_scenario
from failure_modes.FM_002_partial_write.scenario import SCENARIO, ledger


def test_exhaustive_proof_at_default_bounds(check_pinned):
    result = prove(SCENARIO)
    proof, control = result.proof, result.control
    check_pinned(proof)
    assert "INV_002" in control.counterexample.result.invariants_violated


def test_300_seeds_guard_on_clean_and_balanced_guard_off_violating():
    violating_off = reached_on = 0
    for seed in range(300):
        on = run_scenario(SCENARIO, guard=True, seed=seed)
        off = run_scenario(SCENARIO, guard=False, seed=seed)
        assert on.violations == [], f"seed {seed}: {on.violations}"
        assert sum(ledger(on.store).values()) == 0, f"seed {seed}: the ledger does not balance"
        reached_on += on.reached
        violating_off += "INV_002" in off.invariants_violated
    assert reached_on > 50, "the seeds crash workers inside the effect's transaction"
    assert violating_off == 300


def test_a_crash_inside_the_one_transaction_leaves_nothing_behind():
    for seed in range(300):
        run = run_scenario(SCENARIO, guard=True, seed=seed)
        crashes = [e for e in run.events if (e["kind"], e.get("point")) == ("crash", "commit")]
        if crashes:
            break
    else:
        raise AssertionError("no seed crashed a worker inside the commit")
    crash = crashes[0]
    job = crash["job"]
    crashed_token = max(e["token"] for e in run.events
                        if e["kind"] == "claim" and e["job"] == job and e["seq"] < crash["seq"])
    assert all(token != crashed_token for _, _, token, _ in run.store.effects(job))
    assert sorted(part for _, part, _, _ in run.store.effects(job)) == ["credit", "debit"]
    assert run.store.job(job).state == "succeeded"
