"""Refinement: every state that recovery produces is one that normal processing reaches.

Recovery code is written once and run rarely, so it drifts from the code it
repairs after (FM_007). The check that catches the drift does not trust the
recovery's own description of what it did. Its oracle is enumerated, not written
by hand: the explorer runs every schedule of the same scenario *without* the
recovery actor — normal processing: the same workers, reaper, jobs, faults and
guardrails — and collects, from every history, the view of every job after every
event: its state, the attempts it has spent and the effect parts that stand. A
state that recovery produces is judged in the same terms: a view that no normal
schedule ever reaches is a drift, reported as INV_006 with the event that made it;
the run's schedule is the reproduction.

The view leaves out what normal processing itself does not fix (times, tokens,
worker names), so that a correct recovery, which does what the reaper or a worker
would have done, refines normal processing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from failfirst.processor.transitions import TRANSITIONS
from failfirst.proofs.checkers import Violation
from failfirst.proofs.explorer import depth_first, with_bounds
from failfirst.proofs.run import simulate
from failfirst.proofs.words import plural
from failfirst.sim.scenario import Scenario
from failfirst.store import Store
from failfirst.store.clock import SimClock

Event = dict[str, Any]
#: What refinement compares: (job, state, attempts spent, effect parts standing).
JobView = tuple[int, str, int, int]
_TRANSITION_EVENTS = frozenset(event for _, event in TRANSITIONS)
#: The oracle's exploration is bounded like every other.
MAX_ORACLE_SCHEDULES = 200_000


def job_views(events: list[Event]) -> Iterator[tuple[Event, JobView]]:
    """Replay a history; after every event that changes a job, yield (event, view)."""
    state: dict[int, str] = {}
    attempts: dict[int, int] = {}
    effects: dict[int, int] = {}
    for e in events:
        job, kind = e["job"], e["kind"]
        if job is None:
            continue
        if kind == "enqueue":
            state[job], attempts[job], effects[job] = "pending", 0, 0
        elif kind in _TRANSITION_EVENTS:
            state[job] = e["to"]
            if kind == "claim":
                attempts[job] = e["attempt"]
            elif kind == "redrive":
                attempts[job] = 0
        elif kind == "effect":
            effects[job] += 1
        elif kind == "repair":
            effects[job] -= 1
        else:
            continue
        yield e, (job, state[job], attempts[job], effects[job])


class Refinement:
    """A scenario judge (``Scenario.checks``): every job view produced by an event of
    ``actor`` (the recovery) must be one that ``normal`` reaches in some schedule."""

    def __init__(self, normal: Scenario, actor: str = "recovery") -> None:
        assert normal.recovery_at_s is None, "normal processing runs without the recovery"
        self.normal = normal
        self.actor = actor
        #: Per fault bound: (every job view normal processing reaches, schedules run).
        self._oracles: dict[int, tuple[frozenset[JobView], int]] = {}

    def oracle(self, max_faults: int | None = None) -> frozenset[JobView]:
        """Every job view that normal processing reaches, over every schedule within the
        same bounds (``max_faults``: the judged run's; default the scenario's). Cached."""
        return self._oracle(max_faults)[0]

    def schedules(self, max_faults: int | None = None) -> int:
        """How many normal schedules the oracle of that fault bound was enumerated from."""
        return self._oracle(max_faults)[1]

    def _oracle(self, max_faults: int | None) -> tuple[frozenset[JobView], int]:
        bound = self.normal.faults.max_faults if max_faults is None else max_faults
        if bound not in self._oracles:
            normal = with_bounds(self.normal, bound)
            shared = Store.memory(SimClock())
            seen: set[JobView] = set()
            count = 0
            for run in depth_first(lambda source: simulate(normal, True, source, store=shared),
                                   MAX_ORACLE_SCHEDULES):
                count += 1
                seen.update(view for _, view in job_views(run.events))
            self._oracles[bound] = (frozenset(seen), count)
        return self._oracles[bound]

    def __call__(self, events: list[Event], store: Store) -> list[Violation]:
        start = next((e for e in events if e["kind"] == "start"), {})
        bound = start.get("max_faults")
        oracle, schedules = self._oracle(bound)
        out = []
        for e, view in job_views(events):
            if e["actor"] == self.actor and view not in oracle:
                job, state, attempts, effects = view
                out.append(Violation(
                    "INV_006", job, (e["seq"],),
                    f"recovery's {e['kind']} left the job {state} with {plural(attempts, 'attempt')} "
                    f"spent and {plural(effects, 'effect part')}: no normal schedule of {schedules} "
                    "reaches that state",
                ))
        return out
