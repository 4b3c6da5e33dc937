"""The symmetry reduction keys an idle worker by whether it crashed (a crashed one logs
``restart`` when it next runs, a fresh one does not). Does that key matter, or is a
crashed idle worker as good as a fresh one? Shown, not assumed: at the bounds the
suite explores, the two are never ready at the same moment, so merging their classes
prunes nothing: the same schedules run, the same histories are reached. The key stays
(it is what keeps the reduction sound should they ever meet), and this test says the
planted bug that drops it is an equivalent mutant here, not a missing test."""

from __future__ import annotations

import dataclasses

import pytest

from failfirst.proofs.explorer import canonical_digest, depth_first, with_bounds
from failfirst.proofs.run import simulate
from failfirst.sim import catalogue, scheduler


def _explore(scenario, guard: bool) -> tuple[list[str], set[str]]:
    schedules, histories = [], set()
    for run in depth_first(lambda src: simulate(scenario, guard, src, reduce=True), 100_000):
        schedules.append(run.schedule)
        histories.add(canonical_digest(run))
    return schedules, histories


@pytest.mark.parametrize(("fm", "max_faults", "jobs"), [("FM_001", 1, 2), ("FM_004", 2, 2),
                                                        ("FM_002", 1, 2)])
def test_crashed_and_fresh_idle_workers_are_never_ready_together(monkeypatch, fm, max_faults, jobs):
    base = catalogue.load(fm)
    scenario = dataclasses.replace(with_bounds(base, max_faults=max_faults), jobs=base.jobs[:jobs])
    met = []
    original = scheduler.Simulation._one_per_symmetry_class

    def watched(ready):
        idle = [a for a in ready if a.symmetry_class() is not None]
        if len({a.crashed for a in idle}) > 1:
            met.append([a.name for a in idle])
        return original(ready)

    monkeypatch.setattr(scheduler.Simulation, "_one_per_symmetry_class", staticmethod(watched))
    keyed = _explore(scenario, guard=False)
    assert met == [], f"a crashed and a fresh idle worker were ready together: {met[:3]}"

    def merged(self):  # the planted bug: a crashed idle worker keyed as a fresh one
        if self.is_worker and not self.holding:
            return ("fresh worker", False, self.clock.rate if self.clock else 1.0)
        return None

    monkeypatch.setattr(scheduler.Actor, "symmetry_class", merged)
    assert _explore(scenario, guard=False) == keyed
