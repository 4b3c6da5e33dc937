"""FM_008 reproduced: jobs that failed together under plain capped exponential backoff
retry together, every wave the whole herd at one instant; the API back from its outage
sheds most of each wave, and the checker names INV_005 (the retry peak)."""

from __future__ import annotations

from collections import Counter

from failfirst.processor.policies import Guardrails
from failfirst.proofs import checkers
from failfirst.proofs.prove import reproduce
from failfirst.proofs.run import simulate
from failfirst.sim.choices import RandomChoices
from failfirst.sim.scheduler import Simulation
from failure_modes.FM_008_thundering_herd.scenario import (
    BACKOFF_BASE_S,
    CAPACITY,
    JOBS,
    OUTAGE,
    SCENARIO,
    WINDOW_S,
)


def test_exploration_finds_inv005_and_its_minimal_counterexample_replays():
    cx = reproduce(SCENARIO)  # shrunk, and replayed to the same digest and violations
    assert "INV_005" in {v["invariant"] for v in cx.violations}


def test_without_jitter_every_wave_is_the_whole_herd_at_one_instant():
    run = simulate(SCENARIO, False, RandomChoices(0, fault_rate=0.0))
    calls = [e for e in run.events if e["kind"] == "call"]
    waves = Counter(e["at_s"] for e in calls)
    # Every job computes the same wait: 2 s, then 4 s more (the ceiling doubles).
    assert sorted(waves) == [0.0, BACKOFF_BASE_S, 3 * BACKOFF_BASE_S], "nothing between the waves"
    assert waves[0.0] == waves[BACKOFF_BASE_S] == JOBS
    assert OUTAGE.end_s <= BACKOFF_BASE_S, "the API is back when the first retries arrive"
    first_back = [e for e in calls if e["at_s"] == BACKOFF_BASE_S]
    assert sum(e["ok"] for e in first_back) == CAPACITY, "it serves what it can"
    assert all(e["overloaded"] for e in first_back if not e["ok"]), "and sheds the rest of the herd"
    assert waves[3 * BACKOFF_BASE_S] == JOBS - CAPACITY
    [peak] = [v for v in run.violations if v.invariant == "INV_005"]
    assert f"{JOBS} retries reached the dependency within {WINDOW_S:g} s" in peak.detail
    assert f"the bound is {CAPACITY}" in peak.detail


def test_a_retry_budget_alone_does_not_spread_the_herd():
    """The budget bounds how many retries go out, not when: without jitter they still
    arrive together."""
    budget_only = Guardrails().without("backoff_jitter")
    out = Simulation(SCENARIO, budget_only, RandomChoices(0, fault_rate=0.0)).run()
    events = out.store.events()
    found = [v for v in checkers.check(events, out.store) if v.invariant == "INV_005"]
    assert found and all("retries reached the dependency" in v.detail for v in found)
