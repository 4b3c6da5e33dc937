"""Run a scenario once: simulate, check, digest. The CLI and the book call this."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from failfirst.proofs import checkers
from failfirst.sim import catalogue, history
from failfirst.sim.choices import ChoiceSource, RandomChoices, ReplayChoices, ScheduleError, decode, encode
from failfirst.sim.scenario import Scenario
from failfirst.sim.scheduler import Simulation
from failfirst.store import Store, simulation_store
from failfirst.store.clock import SimClock
from failfirst.store.echo import shown


@dataclass
class RunResult:
    scenario: Scenario
    guard: bool
    events: list[dict[str, Any]]
    violations: list[checkers.Violation]
    digest: str
    choices: list[int]
    store: Store
    end_reason: str
    seed: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def schedule(self) -> str:
        """The replayable schedule string of this run."""
        return encode(self.choices, self.scenario.faults.max_faults)

    @property
    def reached(self) -> bool:
        """Did the fault under study fire in this run?"""
        return self.scenario.reached(self.events)

    @property
    def invariants_violated(self) -> list[str]:
        return sorted({v.invariant for v in self.violations})

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fm": self.scenario.id, "guard": "on" if self.guard else "off"}
        if self.seed is not None:
            out["seed"] = self.seed
        out["schedule"] = self.schedule
        out.update({
            "violations": [v.to_json() for v in self.violations],
            "digest": self.digest,
            "events": len(self.events),
            "reached": self.reached,
            "end": self.end_reason,
        })
        return out


def simulate(
    scenario: Scenario, guard: bool, source: ChoiceSource, seed: int | None = None,
    *, reduce: bool = True, store: Store | None = None,
) -> RunResult:
    """Run ``scenario`` once under ``source``; ``reduce`` applies the symmetry reduction.
    ``store``: an in-memory store to reuse (emptied first); its result is then only valid
    until that store's next reuse."""
    sim = Simulation(scenario, scenario.guardrails(guard), source, reduce=reduce, store=store)
    outcome = sim.run()
    events = outcome.store.events()
    violations = checkers.check(events, outcome.store)
    for judge in scenario.checks:  # a scenario's further judges (FM_007: refinement)
        violations.extend(judge(events, outcome.store))
    if scenario.judged:  # a reader's proof asserts the invariants it names
        violations = [v for v in violations if v.invariant in scenario.judged]
    return RunResult(
        scenario=scenario, guard=guard, events=events,
        violations=violations, digest=history.digest(events),
        choices=outcome.choices, store=outcome.store, end_reason=outcome.end_reason, seed=seed,
        # The run's services (a downstream resource, say): recovery repairs them too.
        extras={"services": sim.queue.services},
    )


def _scenario(fm: str | Scenario) -> Scenario:
    return fm if isinstance(fm, Scenario) else catalogue.load(fm)


def _store(store_url: str | None) -> Store | None:
    """The store a run simulates on: None (SQLite in memory) or one named by a URL
    (``postgresql://...`` gives a private schema, dropped when the store is closed)."""
    return None if store_url is None else simulation_store(store_url, SimClock())


def run_scenario(fm: str | Scenario, guard: bool = True, seed: int = 0, *,
                 store_url: str | None = None) -> RunResult:
    """One seeded random run of a failure mode's scenario; ``store_url`` chooses the store
    (default SQLite in memory; ``postgresql://...`` runs the same schedule on PostgreSQL)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: must be an integer >= 0, got {seed!r}")
    scenario = _scenario(fm)
    return simulate(scenario, guard, RandomChoices(seed), seed=seed, store=_store(store_url))


def replay(fm: str | Scenario, schedule: str, guard: bool = True, *,
           store_url: str | None = None) -> RunResult:
    """Re-run one recorded schedule exactly, under the fault bound it was drawn with.

    Every choice must be used: a schedule with choices left over when the run ends
    was not made by this scenario (or was cut from a longer one), and replaying a
    prefix of it silently would report a different schedule than the one given."""
    choices, max_faults = decode(schedule)
    scenario = _scenario(fm)
    if max_faults != scenario.faults.max_faults:
        scenario = replace(scenario, faults=replace(scenario.faults, max_faults=max_faults))
    source = ReplayChoices(choices)
    result = simulate(scenario, guard, source, store=_store(store_url))
    if not source.exhausted:
        used = len(result.choices)
        raise ScheduleError(
            f"schedule {shown(schedule.strip())} has {len(choices) - used} choice(s) left over: "
            f"{scenario.id} made only {used} decision(s) with it"
        )
    return result


def run_happy_path(jobs: int = 20, workers: int = 3, seed: int = 0) -> RunResult:
    """Jobs flowing through with no faults: the baseline every chapter departs from."""
    from failfirst.sim.happy import happy_scenario

    return simulate(happy_scenario(jobs, workers), True, RandomChoices(seed, fault_rate=0.0), seed=seed)
