"""FM_008 prevented: capped exponential backoff with full jitter spreads the retries of
jobs that failed together, and the retry budget bounds how many go out. In every
schedule within the bounds (and for sampled jitter seeds), calls per job, calls in all
and retries per window stay within the declared bounds; without jitter they do not."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from failfirst.processor import backoff
from failfirst.processor.policies import Guardrails
from failfirst.proofs import checkers
from failfirst.proofs.checkers import _retry_peak
from failfirst.proofs.explorer import every_schedule
from failfirst.proofs.prove import prove
from failfirst.proofs.run import simulate
from failfirst.sim.choices import RandomChoices
from failfirst.sim.scheduler import Simulation
from failure_modes.FM_008_thundering_herd.scenario import (
    CAPACITY,
    JOBS,
    MAX_ATTEMPTS,
    SCENARIO,
    WINDOW_S,
)


def _peak(events):
    """The most retries that reached the API within any WINDOW_S, from the history."""
    retries = [(e["at_s"], e["seq"]) for e in events if e["kind"] == "call" and e["retry"]]
    found = _retry_peak(retries, 0, WINDOW_S)
    return int(found[0].detail.split()[0]) if found else 0


def test_exhaustive_proof_at_default_bounds(check_pinned):
    result = prove(SCENARIO)  # exhaustive, clean, reached > 0, negative control violates
    check_pinned(result.proof)
    assert result.proof.reached == result.proof.schedules
    assert "INV_005" in result.control.counterexample.result.invariants_violated


def test_every_schedule_stays_within_the_declared_bounds():
    worst_job = worst_total = worst_peak = 0
    for run in every_schedule(SCENARIO, True):
        calls = Counter(e["job"] for e in run.events if e["kind"] == "call")
        worst_job = max(worst_job, max(calls.values()))
        worst_total = max(worst_total, sum(calls.values()))
        worst_peak = max(worst_peak, _peak(run.events))
    assert worst_job <= SCENARIO.max_calls_per_job == MAX_ATTEMPTS
    assert worst_total <= SCENARIO.max_calls_total
    assert 1 < worst_peak <= SCENARIO.max_retries_per_window == CAPACITY < JOBS


def test_sampled_jitter_seeds_stay_within_the_bounds():
    """The explorer never branches on jitter (the queue's draws are seeded per scenario):
    sample other seeds, a stated bound — every one of them within the declared bounds."""
    for seed in range(15):
        run = simulate(replace(SCENARIO, jitter_seed=f"sample-{seed}"), True,
                       RandomChoices(seed, fault_rate=0.0))
        assert [v for v in run.violations if v.invariant == "INV_005"] == [], (seed, run.violations)


def test_each_part_of_the_guardrail_does_its_own_work():
    base = Guardrails()
    peaks = {}
    for name, policies in {"off": base.without("backoff_jitter").without("retry_budget"),
                           "budget only": base.without("backoff_jitter"),
                           "jitter only": base.without("retry_budget"), "both": base}.items():
        out = Simulation(SCENARIO, policies, RandomChoices(0, fault_rate=0.0)).run()
        events = out.store.events()
        peaks[name] = _peak(events)
        found = [v for v in checkers.check(events, out.store) if v.invariant == "INV_005"]
        assert bool(found) == (name in ("off", "budget only")), (name, found)
    assert peaks["off"] == peaks["budget only"] == JOBS, "without jitter the herd arrives at once"
    assert peaks["jitter only"] <= CAPACITY and peaks["both"] <= CAPACITY


def test_the_jitter_guardrail_is_the_queues_policy():
    on, off = SCENARIO.guardrails(True), SCENARIO.guardrails(False)
    assert SCENARIO.queue.backoff == backoff.FULL_JITTER
    assert on.backoff_jitter and on.retry_budget and not off.backoff_jitter and not off.retry_budget
