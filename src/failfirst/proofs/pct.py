"""PCT, the randomized strategy with a stated guarantee (``explore --mode pct``).

Exhaustive search stops at its bound. Beyond it, random schedules say nothing about
what they missed; probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi
and Nagarakatte, ASPLOS 2010) does. A bug of *depth* ``d`` is one that d ordering
constraints between steps expose (an order violation has depth 1, an atomicity
violation depth 2). With ``n`` actors, at most ``k`` steps per run and ``d - 1``
priority change points, each PCT run finds a given bug of depth ``d`` with probability
at least ``1 / (n * k ** (d - 1))`` — whatever the program, not on average.

Our runs also choose faults. The source (:class:`failfirst.sim.choices.PCTChoices`)
draws a fault count ``m`` uniformly in ``0..M`` (``M`` the fault bound), then which
``m`` of the ``F`` fault decisions of a run fault, and a kind at each (at most ``c``
kinds). A bug that needs ``m`` given faults and ``d`` ordering constraints is found
by one run with probability at least

    p = 1 / (n * k ** (d - 1)) * 1 / ((M + 1) * C(F, m) * c ** m),

assuming, as the paper does for its step count, that the run's fault decisions up to
the bug are the same ``F`` positions in every run (``F`` and ``k`` are measured on a
fault-free run and taken with a margin). ``R`` runs all miss it with probability at
most ``(1 - p) ** R``. The bound is weak for deep bugs and many fault decisions: it
is a floor, and the Performance chapter sets it beside the runs PCT and random
sampling actually needed to find each failure mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from failfirst.proofs.run import simulate
from failfirst.proofs.words import plural
from failfirst.sim.choices import CountingChoices
from failfirst.sim.scenario import Scenario

#: Default bug depth PCT is set up for (d - 1 = 1 priority change point per run).
DEFAULT_DEPTH = 2
#: Steps and fault decisions of a faulty run exceed those of the fault-free run that
#: measures them: PCT draws its change points and fault positions over this much more.
MARGIN = 1.5


@dataclass(frozen=True)
class Shape:
    """What PCT's bound depends on, measured on one fault-free run of a scenario."""

    actors: int
    steps: int
    fault_decisions: int
    fault_kinds: int
    max_faults: int

    def to_json(self) -> dict[str, int]:
        return {"actors": self.actors, "steps": self.steps,
                "fault_decisions": self.fault_decisions, "fault_kinds": self.fault_kinds,
                "max_faults": self.max_faults}


def measure(scenario: Scenario, guard: bool) -> Shape:
    """Run the scenario once with no fault, taking the first ready actor each time, and
    count its actors, steps and fault decisions (with ``MARGIN``)."""
    counter = CountingChoices()
    simulate(scenario, guard, counter, reduce=False)
    kinds = max([counter.most_kinds] + [len(k) for k in scenario.faults.points.values()])
    # Every actor that may step, whether or not the fault-free run needed it (the reaper).
    actors = (scenario.workers + int(scenario.reaper) + int(scenario.relay)
              + int(scenario.recovery_at_s is not None))
    return Shape(actors=max(actors, len(counter.actors)), steps=max(1, math.ceil(counter.steps * MARGIN)),
                 fault_decisions=math.ceil(counter.fault_decisions * MARGIN),
                 fault_kinds=max(1, kinds), max_faults=scenario.faults.max_faults)


def bound(shape: Shape, depth: int, faults: int) -> float:
    """The probability, at least, that one PCT run finds a bug of ``depth`` ordering
    constraints that needs ``faults`` given faults (see the module docstring)."""
    assert depth >= 1 and 0 <= faults
    if faults > shape.max_faults or faults > shape.fault_decisions:
        return 0.0
    schedule = 1.0 / (shape.actors * shape.steps ** (depth - 1))
    placed = 1.0 / ((shape.max_faults + 1) * math.comb(shape.fault_decisions, faults)
                    * shape.fault_kinds ** faults)
    return schedule * placed


def miss_probability(p: float, runs: int) -> float:
    """The chance that ``runs`` independent runs, each finding the bug with probability
    at least ``p``, all miss it: at most this."""
    return (1.0 - p) ** runs


def report(shape: Shape, depth: int, runs: int) -> dict[str, Any]:
    """The guarantee of ``runs`` PCT runs, for every fault count up to the bound: the
    per-run probability and the chance that all of them missed such a bug."""
    rows = []
    for faults in range(shape.max_faults + 1):
        p = bound(shape, depth, faults)
        rows.append({"faults": faults, "p_per_run": p, "miss": miss_probability(p, runs)})
    return {"depth": depth, "runs": runs, **shape.to_json(), "by_faults": rows}


def describe(guarantee: dict[str, Any]) -> str:
    """One line of the guarantee, as ``explore`` prints it."""
    parts = [f"{plural(row['faults'], 'fault')}: p >= {row['p_per_run']:.2g} per run, missed by all "
             f"with probability <= {row['miss']:.2g}" for row in guarantee["by_faults"]]
    return (f"PCT depth {guarantee['depth']} over {guarantee['runs']} runs "
            f"({guarantee['actors']} actors, <= {guarantee['steps']} steps, "
            f"{guarantee['fault_decisions']} fault decisions, <= {guarantee['fault_kinds']} kinds): "
            + "; ".join(parts))


__all__ = ["DEFAULT_DEPTH", "Shape", "bound", "describe", "measure", "miss_probability", "report"]
