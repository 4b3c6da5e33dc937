"""FM_005 reproduced: when a crash does not count as an attempt, a payload that kills
its worker is redelivered forever and the jobs behind it starve; the checker names
INV_005 for the poison jobs and INV_004 for every job, the healthy ones included."""

from __future__ import annotations

from failfirst.proofs.prove import reproduce
from failfirst.proofs.run import run_scenario
from failure_modes.FM_005_poison_message.scenario import MAX_ATTEMPTS, SCENARIO


def test_exploration_finds_inv004_and_inv005_and_its_minimal_counterexample_replays():
    cx = reproduce(SCENARIO)  # shrunk, and replayed to the same digest and violations
    assert {"INV_004", "INV_005"} <= {v["invariant"] for v in cx.violations}
    assert cx.faults == 0, "no injected fault: the payload alone does it"


def test_the_poison_jobs_crash_loop_and_the_healthy_jobs_never_run():
    run = run_scenario(SCENARIO, guard=False, seed=0)
    poison = [e["job"] for e in run.events if e["kind"] == "enqueue"][:2]
    healthy = [e["job"] for e in run.events if e["kind"] == "enqueue"][2:]
    crashes = [e for e in run.events if e["kind"] == "crash" and e["point"] == "handler"]
    assert {e["job"] for e in crashes} == set(poison)
    assert len(crashes) > 2 * MAX_ATTEMPTS, "crashed past any attempt budget"
    assert all(run.store.job(j).attempts == 0 for j in poison), "a crash never counted"
    assert not [e for e in run.events if e["kind"] == "claim" and e["job"] in healthy]
    assert run.store.dead_letters() == []
    inv = {(v.invariant, v.job) for v in run.violations}
    assert {("INV_004", j) for j in poison + healthy} <= inv
    assert {("INV_005", j) for j in poison} <= inv


def test_every_seed_starves_the_queue():
    for seed in range(20):
        assert {"INV_004", "INV_005"} <= set(
            run_scenario(SCENARIO, guard=False, seed=seed).invariants_violated), seed
