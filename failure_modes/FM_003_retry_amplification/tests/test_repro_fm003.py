"""FM_003 reproduced: with retries at three layers (client library, handler, queue),
one job sends 4 x 4 x 4 = 64 requests to a dependency that is down, and the checker
names INV_005 per job and for the run's total load."""

from __future__ import annotations

from collections import Counter

from failfirst.proofs.prove import reproduce
from failfirst.proofs.run import run_scenario, simulate
from failfirst.sim.choices import RandomChoices
from failure_modes.FM_003_retry_amplification.scenario import (
    CLIENT_RETRIES,
    HANDLER_RETRIES,
    MAX_ATTEMPTS,
    SCENARIO,
    figure_scenario,
    make_scenario,
)


def test_exploration_finds_inv005_and_its_minimal_counterexample_replays():
    cx = reproduce(SCENARIO)  # shrunk, and replayed to the same digest and violations
    assert "INV_005" in {v["invariant"] for v in cx.violations}


def test_one_job_makes_64_calls_during_an_outage():
    run = simulate(make_scenario(1), False, RandomChoices(0, fault_rate=0.0))
    calls = [e for e in run.events if e["kind"] == "call"]
    per_layer = (1 + CLIENT_RETRIES) * (1 + HANDLER_RETRIES)
    assert len(calls) == per_layer * MAX_ATTEMPTS == 4**3 == 64
    assert Counter(e["attempt"] for e in calls) == {a: per_layer for a in range(1, MAX_ATTEMPTS + 1)}
    assert not any(e["ok"] for e in calls) and sum(not e["retry"] for e in calls) == 1
    assert run.store.job(1).state == "dead"
    [v] = [v for v in run.violations if v.invariant == "INV_005" and v.job == 1]
    assert "64 downstream calls; the bound is 4" in v.detail


def test_the_default_run_names_every_job_and_the_total():
    run = run_scenario(SCENARIO, guard=False, seed=0)
    inv005 = [v for v in run.violations if v.invariant == "INV_005"]
    assert sorted(v.job for v in inv005 if v.job is not None) == [1, 2, 3]
    assert any(v.job is None and "192 downstream calls in all" in v.detail for v in inv005)


def test_during_a_short_outage_the_load_multiplies():
    run = simulate(figure_scenario(), False, RandomChoices(0, fault_rate=0.0))
    per_second = Counter(int(e["at_s"]) for e in run.events if e["kind"] == "call")
    before = max(per_second[s] for s in range(0, 10))
    during = max(per_second[s] for s in range(10, 20))
    assert during >= 5 * before, (before, during)
