"""Shrinking a violating schedule to a minimal one (delta debugging over its choices).

Smaller is simpler: fewest faults, then fewest events, then the shortest, smallest
choices (0 is always the simplest option at a decision). The shrunk schedule replays
strictly, as users replay it. :mod:`failfirst.proofs.minimize` also shrinks the
scenario (its jobs and workers) before it shrinks the schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from failfirst.proofs.run import RunResult, simulate
from failfirst.proofs.tally import faults_in
from failfirst.sim.choices import ReplayChoices
from failfirst.sim.scenario import Scenario
from failfirst.store import simulation_store
from failfirst.store.clock import SimClock

#: Replays a shrink may spend: shrinking is bounded like everything else.
MAX_SHRINK_RUNS = 2_000


def complexity(result: RunResult) -> tuple[int, int, int, list[int]]:
    """Smaller is simpler: fewest faults, then fewest steps, then the shortest, smallest choices."""
    return (faults_in(result), len(result.events), len(result.choices), result.choices)


def fresh_store(store_url: str | None) -> Any:
    """A store for a result that must stay valid: None (a new in-memory SQLite store,
    made by the simulator) or a new private schema on the server the URL names."""
    return None if store_url is None else simulation_store(store_url, SimClock())


def shrink(scenario: Scenario, guard: bool, result: RunResult,
           max_runs: int = MAX_SHRINK_RUNS, store_url: str | None = None,
           keep: Callable[[RunResult], bool] | None = None) -> RunResult:
    """Delta-debug a violating schedule to a minimal one that still violates one of the
    same invariants (and, with ``keep``, still satisfies it: say, the same kind of
    violation): delete chunks of choices, then lower each choice towards 0."""
    target = set(result.invariants_violated)
    assert target, "only a violating run can be shrunk"
    assert keep is None or keep(result), "the run to shrink must satisfy keep"
    best = result
    budget = [max_runs]
    shared = simulation_store(store_url, SimClock())

    def attempt(choices: list[int]) -> bool:
        nonlocal best
        if budget[0] <= 0:
            return False
        budget[0] -= 1
        candidate = simulate(scenario, guard, ReplayChoices(choices, strict=False), store=shared)
        if (target & set(candidate.invariants_violated) and (keep is None or keep(candidate))
                and complexity(candidate) < complexity(best)):
            best = candidate
            return True
        return False

    for _ in range(max_runs):  # passes until a fixed point (bounded by the run budget)
        improved = False
        size = max(1, len(best.choices) // 2)
        while size >= 1:  # delete chunks, largest first
            i = 0
            while i < len(best.choices):
                if attempt(best.choices[:i] + best.choices[i + size:]):
                    improved = True
                else:
                    i += size
            size //= 2
        for i in range(len(best.choices)):  # lower each choice
            for lower in range(best.choices[i]):
                if i < len(best.choices) and attempt(best.choices[:i] + [lower] + best.choices[i + 1:]):
                    improved = True
                    break
        if not improved or budget[0] <= 0:
            break
    # Re-record exactly: the minimal schedule replays strictly, as users will replay it.
    return simulate(scenario, guard, ReplayChoices(best.choices, strict=True), store=fresh_store(store_url))



__all__ = ["MAX_SHRINK_RUNS", "complexity", "fresh_store", "shrink"]
