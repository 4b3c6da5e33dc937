"""FM_005 prevented: attempts counted at the claim and bounded, then a dead letter
with its reason. In every schedule within the bounds each poison job is delivered at
most max_attempts times and dead-lettered, and every other job completes; the same
exploration counting only handled failures starves the queue."""

from __future__ import annotations

from failfirst.proofs.prove import prove
from failfirst.proofs.run import run_scenario, simulate
from failfirst.sim.choices import RandomChoices
from failure_modes.FM_005_poison_message.scenario import MAX_ATTEMPTS, SCENARIO


def test_exhaustive_proof_at_default_bounds(check_pinned):
    result = prove(SCENARIO)
    proof, control = result.proof, result.control
    check_pinned(proof)
    assert proof.reached == proof.schedules, "the poison payload crashed a worker in every one"
    assert {"INV_004", "INV_005"} <= set(control.counterexample.result.invariants_violated)


def test_poison_is_dead_lettered_with_its_reason_and_the_rest_complete():
    for seed in range(50):  # no injected faults: only the poison payload
        run = simulate(SCENARIO, True, RandomChoices(seed, fault_rate=0.0))
        assert run.violations == [], (seed, run.violations)
        states = [job.state for job in run.store.jobs()]
        assert states == ["dead", "dead", "succeeded", "succeeded"], (seed, states)
        letters = run.store.dead_letters()
        assert sorted(job for job, _, _ in letters) == [1, 2]
        for _, reason, _ in letters:
            assert f"{MAX_ATTEMPTS} of {MAX_ATTEMPTS} attempts" in reason
        crashes = [e for e in run.events if e["kind"] == "crash" and e["point"] == "handler"]
        assert len(crashes) == 2 * MAX_ATTEMPTS


def test_with_injected_faults_too_every_job_ends_and_poison_dies():
    for seed in range(50):
        run = run_scenario(SCENARIO, guard=True, seed=seed)
        assert run.violations == [], (seed, run.violations)
        assert [job.state for job in run.store.jobs()][:2] == ["dead", "dead"]


def test_bounding_alone_is_not_enough_when_crashes_do_not_count():
    run = run_scenario(SCENARIO, guard=False, seed=0)
    off = SCENARIO.guardrails(False)
    assert off.bounded_attempts and not off.count_attempts_at_claim
    assert run.store.dead_letters() == [] and "INV_005" in run.invariants_violated
