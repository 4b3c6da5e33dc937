"""Counterexamples a reader takes in at a glance.

:func:`~failfirst.proofs.explorer.shrink` minimises a violating schedule: fewer faults,
fewer steps. That still leaves every job and every worker of the scenario in it —
FM_001's one-fault counterexample had 23 events, 15 of them about jobs that play no
part in the double charge. :func:`shrink_scenario` also removes the jobs and workers
the violation does not need (delta debugging over the scenario, then over the
schedule), and :func:`focus` picks out the events that matter.

**A shrunk scenario must still replay.** The decision: the cut is part of the
reproduction, never hidden. A counterexample shrunk over the scenario is a schedule of
the scenario *cut* to some of its jobs (1-based positions, in order; they are numbered
1, 2, ... again when enqueued) and workers — :meth:`failfirst.sim.scenario.Scenario.cut`
— and its reproduction says so: ``failfirst replay FM_001 --guard off --jobs 2
--workers 1 --schedule s1f1:...``. The full scenario's own counterexample (``explore``'s)
stays as it was and replays without options.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from failfirst.proofs.run import RunResult, simulate
from failfirst.proofs.search import BoundError, SleepSetSearch
from failfirst.proofs.shrinking import shrink
from failfirst.sim.choices import ReplayChoices
from failfirst.sim.reduction import tracked_simulation_store
from failfirst.sim.scenario import FAULT_KINDS, Scenario
from failfirst.store.clock import SimClock

#: Schedules one trial (a scenario with a job or a worker fewer) may explore.
TRIAL_LIMIT = 20_000


@dataclass(frozen=True)
class Reduced:
    """A counterexample shrunk over the scenario and the schedule."""

    #: The cut scenario the schedule runs on.
    scenario: Scenario
    #: The jobs kept (1-based positions in the whole scenario), None when all are.
    jobs: tuple[int, ...] | None
    #: The workers kept, None when the scenario's number is.
    workers: int | None
    result: RunResult

    def replay_command(self) -> str:
        guard = "on" if self.result.guard else "off"
        cut = (f" --jobs {','.join(map(str, self.jobs))}" if self.jobs is not None else "") + \
              (f" --workers {self.workers}" if self.workers is not None else "")
        return f"failfirst replay {self.scenario.id} --guard {guard}{cut} --schedule {self.result.schedule}"

    def to_json(self) -> dict[str, Any]:
        return {"jobs": None if self.jobs is None else list(self.jobs), "workers": self.workers,
                "schedule": self.result.schedule, "digest": self.result.digest,
                "events": len(self.result.events), "replay": self.replay_command()}


def _first_violation(scenario: Scenario, guard: bool, target: set[str],
                     reached: bool) -> RunResult | None:
    """The first schedule, depth-first with sleep sets, violating one of ``target`` (and
    reaching the fault under study, when ``reached``); re-run on a fresh store. None
    when none does within TRIAL_LIMIT schedules."""
    store = tracked_simulation_store(None, SimClock())
    search = SleepSetSearch(lambda source: simulate(scenario, guard, source, store=store), TRIAL_LIMIT)
    try:
        for result in search:
            if (result is not None and target & set(result.invariants_violated)
                    and (result.reached or not reached)):
                return simulate(scenario, guard, ReplayChoices(result.choices))
    except BoundError:
        return None
    return None


def shrink_scenario(scenario: Scenario, guard: bool, result: RunResult) -> Reduced:
    """Remove jobs (the last first, so the scenario's first jobs stay), then workers,
    while the scenario still violates one of the invariants ``result`` violates and
    still reaches the fault under study if ``result`` did (each trial explores the
    smaller scenario for its first such run); repeat to a fixed point; then shrink the
    schedule of the smallest, keeping the fault under study reached."""
    target = set(result.invariants_violated)
    assert target, "only a violating run can be shrunk"
    reached = result.reached
    jobs = list(range(1, len(scenario.jobs) + 1))
    workers = scenario.workers
    best = result
    for _ in range(len(jobs) + workers):  # passes to a fixed point: each removes something
        changed = False
        for job in reversed(list(jobs)):
            if len(jobs) == 1:
                break
            kept = [j for j in jobs if j != job]
            found = _first_violation(scenario.cut(tuple(kept), workers), guard, target, reached)
            if found is not None:
                jobs, best, changed = kept, found, True
        while workers > 1:
            found = _first_violation(scenario.cut(tuple(jobs), workers - 1), guard, target, reached)
            if found is None:
                break
            workers, best, changed = workers - 1, found, True
        if not changed:
            break
    cut = scenario.cut(tuple(jobs), workers)
    minimal = shrink(cut, guard, best, keep=(lambda run: run.reached) if reached else None)
    return Reduced(cut, None if len(jobs) == len(scenario.jobs) else tuple(jobs),
                   None if workers == scenario.workers else workers, minimal)


def focus(result: RunResult) -> list[dict[str, Any]]:
    """The events that matter to a run's violations: every event about a job a violation
    names, and the faults and restarts of the actors that acted on those jobs (a crash
    of an idle worker names no job, yet it is why the job came back). A violation that
    names no job (too many calls in a window) keeps every event."""
    jobs = {v.job for v in result.violations if v.job is not None}
    if not jobs:  # a violation about the whole run (calls in a window): all of it matters
        return [e for e in result.events if e["kind"] not in ("start", "end")]
    actors = {e["actor"] for e in result.events if e["job"] in jobs}
    return [e for e in result.events
            if e["job"] in jobs or (e["actor"] in actors and (e["kind"] in FAULT_KINDS
                                                             or e["kind"] == "restart"))]


__all__ = ["Reduced", "focus", "shrink_scenario"]
