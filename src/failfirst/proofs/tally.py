"""What an exploration counts, and the fingerprints it compares runs by.

A :class:`Tally` is mergeable (subtrees explored in separate processes add up to what
one process counts) and serialisable (a checkpoint keeps it). Besides schedules,
violations and ``reached``, it counts for every fault point and kind how many
schedules struck it (:mod:`failfirst.proofs.coverage`) and for every "sometimes"
assertion of the scenario how many schedules reached its state.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from failfirst.proofs import coverage
from failfirst.proofs.run import RunResult
from failfirst.sim.scenario import FAULT_KINDS, Sometimes


def faults_in(result: RunResult) -> int:
    """Injected faults in a run (a poison payload's own crash is not one)."""
    return sum(1 for e in result.events if e["kind"] in FAULT_KINDS and e.get("point") != "handler")


class Tally:
    """What an exploration counts; mergeable, so subtrees explored apart add up."""

    def __init__(self, keep_digests: bool, keep_states: bool = False,
                 sometimes: tuple[Sometimes, ...] = ()) -> None:
        self.keep_digests = keep_digests
        self.keep_states = keep_states
        self.checks = sometimes
        self.schedules = self.reached = self.violating = self.blocked = 0
        self.digests: set[str] = set()
        self.violating_digests: set[str] = set()
        self.final_states: set[str] = set()
        self.job_histories: set[str] = set()
        self.invariants: set[str] = set()
        #: (faults, events) of the shortest violating schedule: the same in every reduction.
        self.shortest: tuple[int, int] | None = None
        self.first_choices: list[int] | None = None  # the first violation, in DFS order
        #: (point, kind) -> schedules that struck it (a Counter).
        self.coverage: dict[tuple[str, str], int] = Counter()
        #: "sometimes" assertion name -> schedules that reached its state (a Counter).
        self.sometimes: dict[str, int] = Counter({s.name: 0 for s in sometimes})

    def add(self, result: RunResult | None) -> None:
        if result is None:  # cut off by the sleep sets: not a schedule
            self.blocked += 1
            return
        self.schedules += 1
        self.digests.add(result.digest)
        self.reached += result.reached
        self.coverage.update(coverage.struck(result.events))
        for check in self.checks:
            if check.holds(result.events):
                self.sometimes[check.name] += 1
        if self.keep_states:
            self.final_states.add(final_state(result))
            self.job_histories.add(job_histories(result))
        if result.violations:
            self.violating += 1
            self.invariants.update(result.invariants_violated)
            size = (faults_in(result), len(result.events))
            self.shortest = size if self.shortest is None else min(self.shortest, size)
            if self.keep_digests:
                self.violating_digests.add(canonical_digest(result))
            if self.first_choices is None:
                self.first_choices = list(result.choices)

    def merge(self, other: Tally) -> None:
        self.schedules += other.schedules
        self.reached += other.reached
        self.violating += other.violating
        self.blocked += other.blocked
        self.digests |= other.digests
        self.violating_digests |= other.violating_digests
        self.final_states |= other.final_states
        self.job_histories |= other.job_histories
        self.invariants |= other.invariants
        self.coverage.update(other.coverage)
        self.sometimes.update(other.sometimes)
        if other.shortest is not None:
            self.shortest = other.shortest if self.shortest is None else min(self.shortest,
                                                                             other.shortest)
        if self.first_choices is None:
            self.first_choices = other.first_choices

    # -- a checkpoint keeps it ------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Every count as plain data (sets as sorted lists), for a checkpoint."""
        return {
            "schedules": self.schedules, "reached": self.reached, "violating": self.violating,
            "blocked": self.blocked, "digests": sorted(self.digests),
            "violating_digests": sorted(self.violating_digests),
            "final_states": sorted(self.final_states), "job_histories": sorted(self.job_histories),
            "invariants": sorted(self.invariants),
            "shortest": None if self.shortest is None else list(self.shortest),
            "first_choices": self.first_choices,
            "coverage": sorted([p, k, n] for (p, k), n in self.coverage.items()),
            "sometimes": dict(sorted(self.sometimes.items())),
        }

    def load(self, data: dict[str, Any]) -> Tally:
        """Counts saved by :meth:`failfirst.proofs.tally.Tally.to_json`, added to this
        (empty) tally."""
        self.schedules, self.reached = data["schedules"], data["reached"]
        self.violating, self.blocked = data["violating"], data["blocked"]
        self.digests = set(data["digests"])
        self.violating_digests = set(data["violating_digests"])
        self.final_states = set(data["final_states"])
        self.job_histories = set(data["job_histories"])
        self.invariants = set(data["invariants"])
        self.shortest = None if data["shortest"] is None else (data["shortest"][0], data["shortest"][1])
        self.first_choices = data["first_choices"]
        self.coverage = Counter({(p, k): n for p, k, n in data["coverage"]})
        self.sometimes.update(data["sometimes"])
        return self


def _is_worker(actor: str) -> bool:
    return actor.startswith("w") and actor[1:].isdigit()


def final_state(result: RunResult) -> str:
    """A fingerprint of the final store state with worker names erased: every job's
    state, attempts, token, run time, lease deadline and last error; the effects, the
    attempt log and the dead letters as sorted sets. Two schedules equivalent under the
    reductions end in the same fingerprint (see :mod:`failfirst.proofs.explorer`)."""
    store = result.store
    erase = lambda name: "w" if isinstance(name, str) and _is_worker(name) else name  # noqa: E731
    state = {
        "jobs": [[j.id, j.state, j.attempts, j.max_attempts, j.token, j.run_at_s,
                  j.lease_expires_s, erase(j.lease_owner), j.last_error] for j in store.jobs()],
        "effects": sorted(map(list, store.effects())),
        "attempts": sorted([job, token, erase(worker), claimed_s, outcome]
                           for job, token, worker, claimed_s, outcome in store.attempts()),
        "dead_letters": sorted(map(list, store.dead_letters())),
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def job_histories(result: RunResult) -> str:
    """A fingerprint of a run's history up to the order of independent steps: for each job,
    the sequence of its events (kind, states, token, time, fault point, effect part), with
    worker names erased and the log's global numbering dropped, and how the run ended.
    Reordering steps that touch different jobs leaves it unchanged; the sleep sets only
    skip such reorderings, so they must reach every value of it that the full search does."""
    per_job: dict[str, list[list[Any]]] = {}
    for e in result.events:
        if e["kind"] in ("start", "end"):
            continue
        per_job.setdefault(str(e["job"]), []).append(
            [e["kind"], e["from"], e["to"], e["token"], e["t"], "w" if _is_worker(e["actor"]) else e["actor"],
             e.get("point"), e.get("part")])
    end = next(e for e in reversed(result.events) if e["kind"] == "end")
    shape = {"jobs": per_job, "end": [end["reason"], end["t"], end["last_fault_s"], end["faults"]]}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


def canonical_digest(result: RunResult) -> str:
    """The digest of a history with worker names erased. The symmetry reduction only
    prunes choices between workers that hold no lease and no memory, so what it skips
    differs from what it runs by worker names alone; who did what to a job stays
    visible through the lease tokens."""
    from failfirst.sim.history import digest

    return digest([{**e, "actor": "w"} if _is_worker(e["actor"]) else e for e in result.events])


__all__ = ["Tally", "canonical_digest", "faults_in", "final_state", "job_histories"]
