"""Fault coverage: which fault points and kinds an exploration's schedules struck.

A proof is only as good as the faults it met. ``reached`` counts the runs in which
the fault under study fired; coverage does the same for every (point, kind) the
scenario declares, so that a point no schedule can strike at the proof's bounds — a
renamed step, a fault kind that no longer fits — shows as a zero instead of hiding.
Faults are read from the history: an injected fault is an event whose kind is a
fault kind and whose ``point`` names where (a poison payload's own crash, point
``handler``, is not an injected fault).
"""

from __future__ import annotations

from typing import Any

from failfirst.proofs.words import plural
from failfirst.sim.scenario import FAULT_KINDS, Scenario

Point = tuple[str, str]  # (fault point, fault kind)


def declared(scenario: Scenario) -> list[Point]:
    """Every (point, kind) the scenario's fault plan allows, in its order."""
    return [(point, kind) for point, kinds in scenario.faults.points.items() for kind in kinds]


def struck(events: list[dict[str, Any]]) -> set[Point]:
    """The (point, kind) pairs that fired in one run."""
    return {(e["point"], e["kind"]) for e in events
            if e["kind"] in FAULT_KINDS and e.get("point") not in (None, "handler")}


def as_table(counts: dict[Point, int], scenario: Scenario) -> dict[str, dict[str, int]]:
    """point -> kind -> schedules that struck it, every declared pair included (zeros)."""
    table: dict[str, dict[str, int]] = {}
    for point, kind in declared(scenario):
        table.setdefault(point, {})[kind] = counts.get((point, kind), 0)
    return table


def never_struck(counts: dict[Point, int], scenario: Scenario) -> list[Point]:
    return [pair for pair in declared(scenario) if not counts.get(pair)]


def describe(counts: dict[Point, int], scenario: Scenario, schedules: int) -> str:
    """One line: each point's kinds and how many of ``schedules`` struck them."""
    parts = []
    for point, kinds in as_table(counts, scenario).items():
        parts.append(f"{point} " + ", ".join(f"{kind} {n}" for kind, n in kinds.items()))
    return f"fault coverage (of {plural(schedules, 'schedule')}): " + "; ".join(parts)


__all__ = ["as_table", "declared", "describe", "never_struck", "struck"]
