"""FM_003 prevented: retry at one layer, a token-bucket retry budget and jittered
backoff keep every job within one request per attempt and the run within its
declared total, in every schedule within the bounds; the same exploration with
three retrying layers does not. Each part of the guardrail does its own work."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import JobQueue
from failfirst.proofs import checkers
from failfirst.proofs.explorer import every_schedule
from failfirst.proofs.prove import prove
from failfirst.proofs.run import run_scenario
from failfirst.sim.choices import RandomChoices
from failfirst.sim.scheduler import Simulation
from failfirst.store import Store
from failfirst.store.clock import SimClock
from failure_modes.FM_003_retry_amplification.scenario import (
    MAX_ATTEMPTS,
    SCENARIO,
    figure_scenario,
)


def _run(scenario, guardrails, seed=0):
    sim = Simulation(scenario, guardrails, RandomChoices(seed, fault_rate=0.0))
    outcome = sim.run()
    events = outcome.store.events()
    return events, checkers.check(events, outcome.store), outcome.store


def test_exhaustive_proof_at_default_bounds(check_pinned):
    result = prove(SCENARIO)
    proof, control = result.proof, result.control
    check_pinned(proof)
    assert "INV_005" in control.counterexample.result.invariants_violated


def test_calls_per_job_and_in_total_stay_within_the_declared_bounds_everywhere():
    worst_job = worst_total = 0
    for run in every_schedule(SCENARIO, True):
        calls = Counter(e["job"] for e in run.events if e["kind"] == "call")
        worst_job = max(worst_job, max(calls.values()))
        worst_total = max(worst_total, sum(calls.values()))
    assert worst_job <= SCENARIO.max_calls_per_job == MAX_ATTEMPTS
    assert worst_total <= SCENARIO.max_calls_total
    assert worst_total == SCENARIO.max_calls_total, "the bound is tight: the budget is spent"


def test_one_layer_bounds_each_job_but_only_the_budget_bounds_the_total():
    one_layer = Guardrails().without("retry_budget")
    events, violations, _ = _run(SCENARIO, one_layer)
    calls = Counter(e["job"] for e in events if e["kind"] == "call")
    assert max(calls.values()) == MAX_ATTEMPTS, "one request per attempt"
    assert [v.job for v in violations if v.invariant == "INV_005"] == [None]
    events, violations, _ = _run(SCENARIO, Guardrails())
    refused = [e for e in events if e["kind"] == "refused" and e["attempted"] == "call"]
    assert violations == [] and refused, "the budget refused retries instead"


def test_jitter_spreads_the_retries_of_jobs_that_failed_together():
    def delays(guardrails):
        queue = JobQueue(Store.memory(SimClock()), {}, guardrails=guardrails, config=SCENARIO.queue)
        return [queue.backoff_s(2) for _ in range(20)]

    plain = delays(Guardrails().without("backoff_jitter"))
    jittered = delays(Guardrails())
    assert len(set(plain)) == 1, "without jitter every job retries at the same moment"
    assert len(set(jittered)) == 20 and max(jittered) <= plain[0]


def test_a_short_outage_with_a_stream_of_jobs():
    for seed in range(5):
        run = run_scenario(replace(figure_scenario(), faults=SCENARIO.faults), True, seed)
        assert run.violations == [], (seed, run.violations)
