"""The differential proof: every schedule explored on another store, replayed on SQLite.

:func:`differential` runs the explorer's own search (the default reduction: symmetry
and sleep sets, footprints recorded on each store alike) against a store URL, replays
each schedule it finds on SQLite in memory and compares them one by one: the same
history digest (the same events in the same order, the same ids, tokens and times),
the same violated invariants, the same ``reached``, and the same final rows in every
table, read through the store interface (:func:`final_state`: the attempt log, the
dead letters and the outbox are read by recovery, not by the checkers, so a digest
and a verdict cannot see them). The counts must then equal SQLite's own exhaustive
exploration. Any difference raises :class:`Divergence`.
``make test-pg`` runs it for every failure mode at its default bounds and writes the
table the PostgreSQL chapter publishes (:data:`RESULTS`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from failfirst.proofs.explorer import MAX_EXHAUSTIVE_SCHEDULES, explore, sleep_set_search
from failfirst.proofs.run import simulate
from failfirst.sim.choices import ReplayChoices
from failfirst.sim.reduction import tracked_simulation_store
from failfirst.sim.scenario import Scenario
from failfirst.store import Store
from failfirst.store.clock import SimClock

#: Where ``make test-pg`` writes the proof's table, and where the chapter reads it.
RESULTS = Path(__file__).resolve().parents[2] / "_build" / "pg" / "differential.json"


class Divergence(AssertionError):
    """The two stores disagree on a schedule, or on the exploration's counts."""


def differential(scenario: Scenario, guard: bool, url: str) -> dict[str, Any]:
    """Explore ``scenario`` on the store at ``url``, replaying every schedule on SQLite;
    return the row of the proof's table (raises :class:`Divergence` on any difference)."""
    lite_search = explore(scenario, guard, stop_at_first=False, shrink_counterexample=False)
    other = tracked_simulation_store(url, SimClock())
    lite = Store.memory(SimClock())
    schedules = violating = reached = 0
    invariants: set[str] = set()
    try:
        for found in sleep_set_search(lambda source: simulate(scenario, guard, source, store=other),
                                      MAX_EXHAUSTIVE_SCHEDULES):
            if found is None:  # a path the sleep sets cut off: not a schedule on either store
                continue
            replayed = simulate(scenario, guard, ReplayChoices(found.choices), store=lite)
            if (found.digest, found.invariants_violated, found.reached) != (
                    replayed.digest, replayed.invariants_violated, replayed.reached):
                raise Divergence(f"{scenario.id} guard {'on' if guard else 'off'}, schedule "
                                 f"{found.schedule}: the stores disagree")
            if final_state(found.store) != final_state(replayed.store):
                raise Divergence(f"{scenario.id} guard {'on' if guard else 'off'}, schedule "
                                 f"{found.schedule}: the same history, but the stores end in "
                                 "different states")
            schedules += 1
            violating += bool(found.violations)
            reached += found.reached
            invariants |= set(found.invariants_violated)
    finally:
        other.close()
        lite.close()
    ours = (schedules, violating, reached, sorted(invariants))
    theirs = (lite_search.schedules, lite_search.violating, lite_search.reached,
              lite_search.invariants_violated)
    if ours != theirs:
        raise Divergence(f"{scenario.id}: counts {ours} on the other store, {theirs} on SQLite")
    return {"fm": scenario.id, "guard": "on" if guard else "off", "bounds": lite_search.bounds,
            "reduction": lite_search.reduction, "schedules": schedules, "same_digest": schedules,
            "reached": reached, "violating": violating, "invariants_violated": sorted(invariants)}


def final_state(store: Any) -> str:
    """Every row a store holds, as its interface reads them (so the same on any backend):
    jobs, the attempt log, effects with the parts each lease declared, dead letters and
    the outbox with its bodies. The event log is the digest's."""
    jobs = store.jobs()
    outbox = store.outbox()
    state = {
        "jobs": [dataclasses.astuple(job) for job in jobs],
        "attempts": store.attempts(),
        "effects": store.effects(),
        "parts": [sorted(store.effect_parts_expected(job.id).items()) for job in jobs],
        "dead_letters": store.dead_letters(),
        "outbox": outbox,
        "unpublished": store.unpublished_outbox(len(outbox) + 1),
    }
    # Lease deadlines may be infinite (lease expiry off): JSON's Infinity compares fine.
    return json.dumps(state, sort_keys=True, default=repr)


def save(rows: list[dict[str, Any]], path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load(path: Path = RESULTS) -> list[dict[str, Any]] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


__all__ = ["differential", "Divergence", "final_state", "RESULTS", "save", "load"]
