"""The searches over a choice tree: depth-first (stateless model checking: each schedule
is a fresh run), depth-first with sleep sets, and the split of a tree into subtrees.

Each search is an iterator of run results with a ``position()``: where it stands
after the result it yielded last, as plain data, from which the same search resumes
(the checkpoint of a long exploration, :mod:`failfirst.proofs.checkpoint`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from failfirst.proofs.run import RunResult
from failfirst.sim.choices import ChoiceSource
from failfirst.sim.reduction import (
    Footprint,
    Frame,
    SleepSetBlocked,
    SleepSetChoices,
    StepRecorded,
    backtrack,
)

#: An exhaustive exploration refuses to start past this many schedules' worth of bound.
MAX_EXHAUSTIVE_SCHEDULES = 2_000_000


class BoundError(ValueError):
    """An impossible or unaffordable bound."""


class DepthFirst:
    """Follows a prefix of choices, then always takes 0; records (value, options)."""

    def __init__(self, prefix: list[int]) -> None:
        self.prefix = prefix
        self.trail: list[tuple[int, int]] = []

    def choose(self, n: int, kind: str) -> int:
        i = len(self.trail)
        value = self.prefix[i] if i < len(self.prefix) else 0
        assert value < n, "the choice tree changed under the same prefix: nondeterminism"
        self.trail.append((value, n))
        return value

    def next_prefix(self, floor: int = 0) -> list[int] | None:
        """The next schedule in depth-first order, or None when the tree (below the first
        ``floor`` choices, which stay fixed) is exhausted."""
        return next_prefix(self.trail, floor)


def next_prefix(trail: list[tuple[int, int]], floor: int = 0) -> list[int] | None:
    for i in range(len(trail) - 1, floor - 1, -1):
        value, n = trail[i]
        if value + 1 < n:
            return [v for v, _ in trail[:i]] + [value + 1]
    return None


class DepthFirstSearch:
    """Every complete schedule of the choice tree once, in depth-first order; from
    ``start`` (the next schedule's prefix), or below ``prefix`` (a subtree)."""

    def __init__(self, run: Callable[[ChoiceSource], RunResult], limit: int, *,
                 prefix: list[int] | None = None, start: list[int] | None = None) -> None:
        self.run, self.limit = run, limit
        self.floor = len(prefix or [])
        self.next: list[int] | None = list(start if start is not None else prefix or [])
        #: The path (value, options) of the schedule yielded last.
        self.trail: list[tuple[int, int]] = []

    def __iter__(self) -> Iterator[RunResult]:
        for _ in range(self.limit):
            if self.next is None:
                return
            source = DepthFirst(self.next)
            result = self.run(source)
            self.trail = source.trail
            self.next = source.next_prefix(self.floor)
            yield result
        if self.next is not None:
            raise BoundError(f"the choice tree has more than {self.limit} schedules; lower the bounds")

    def position(self) -> dict[str, Any]:
        return {"search": "depth_first", "next": self.next}

    def path(self) -> list[tuple[int, int, frozenset[int]]]:
        return [(v, n, frozenset()) for v, n in self.trail]


def depth_first(
    run: Callable[[ChoiceSource], RunResult], limit: int, prefix: list[int] | None = None,
) -> Iterator[RunResult]:
    """Every complete schedule of the choice tree, once each (stateless model checking);
    with ``prefix``, every schedule of the subtree under it."""
    return iter(DepthFirstSearch(run, limit, prefix=prefix))


class SleepSetSearch:
    """Depth-first search with sleep sets (see :mod:`failfirst.sim.reduction`): one result
    per schedule run, None for a path cut off because every ready actor was asleep.
    With ``frames``, it continues below the first ``floor`` decisions of that path
    (after it, with ``resume``: the path itself was run already)."""

    def __init__(self, run: Callable[[ChoiceSource], RunResult], limit: int,
                 frames: list[Frame] | None = None, floor: int = 0, *, resume: bool = False) -> None:
        self.run, self.limit, self.floor, self.resume = run, limit, floor, resume
        self.frames: list[Frame] = [] if frames is None else frames

    def __iter__(self) -> Iterator[RunResult | None]:
        if self.resume and not backtrack(self.frames, self.floor):
            return
        for _ in range(self.limit):
            source = SleepSetChoices(self.frames)
            try:
                result: RunResult | None = self.run(source)
            except SleepSetBlocked:
                result = None
            yield result
            if not backtrack(self.frames, self.floor):
                return
        raise BoundError(f"the choice tree has more than {self.limit} schedules; lower the bounds")

    def position(self) -> dict[str, Any]:
        """After the path yielded last: the path, to be resumed past."""
        return {"search": "sleep_sets", "frames": frames_to_json(self.frames)}

    def path(self) -> list[tuple[int, int, frozenset[int]]]:
        return [(f.value, f.n, f.asleep) for f in self.frames]


def sleep_set_search(
    run: Callable[[ChoiceSource], RunResult], limit: int, frames: list[Frame] | None = None,
    floor: int = 0, *, resume: bool = False,
) -> Iterator[RunResult | None]:
    """:class:`failfirst.proofs.search.SleepSetSearch` as an iterator (see there)."""
    return iter(SleepSetSearch(run, limit, frames, floor, resume=resume))


def frontier(
    run: Callable[[ChoiceSource], RunResult], depth: int, limit: int,
) -> list[tuple[list[tuple[int, int]], RunResult]]:
    """Split the choice tree at ``depth``: for each subtree in depth-first order, the
    trail of its first schedule and that schedule's result. The subtrees together hold
    every schedule once; the floor of each is ``min(depth, len(trail))``."""
    firsts: list[tuple[list[tuple[int, int]], RunResult]] = []
    nxt: list[int] | None = []
    for _ in range(limit):
        if nxt is None:
            return firsts
        source = DepthFirst(nxt)
        firsts.append((source.trail, run(source)))
        nxt = next_prefix(source.trail[:depth])
    raise BoundError(f"more than {limit} subtrees at depth {depth}")


def complete_footprint(run: Callable[[ChoiceSource], RunResult], frames: list[Frame], i: int) -> None:
    """Make ``frames[i]``'s footprint the union over every fault variant of its step, as
    the whole subtree below it would: run the path to that step once per variant and
    stop after the step."""
    probe = frames[:i + 1]  # the same Frame objects: the step at i records into frames[i]
    for _ in range(MAX_EXHAUSTIVE_SCHEDULES):  # bounded: a step has few fault variants
        source = SleepSetChoices(probe, stop_after=frames[i])
        try:
            run(source)
            raise AssertionError("a probe stops after its step")
        except StepRecorded:
            pass
        if not backtrack(probe, i + 1):
            return


# -- frames as plain data (checkpoints) ----------------------------------------------------


def _footprint_to_json(fp: Footprint) -> list[list[list[Any]]]:
    return [sorted((list(k) for k in keys), key=repr) for keys in (fp.reads, fp.writes, fp.adds)]


def _footprint_from_json(data: list[list[list[Any]]]) -> Footprint:
    reads, writes, adds = (frozenset(tuple(k) for k in keys) for keys in data)
    return Footprint(reads, writes, adds)


def frames_to_json(frames: list[Frame]) -> list[dict[str, Any]]:
    return [{"value": f.value, "n": f.n, "schedule": f.schedule, "asleep": sorted(f.asleep),
             "done": [[v, _footprint_to_json(fp)] for v, fp in f.done],
             "footprint": _footprint_to_json(f.footprint)} for f in frames]


def frames_from_json(data: list[dict[str, Any]]) -> list[Frame]:
    return [Frame(d["value"], d["n"], d["schedule"], frozenset(d["asleep"]),
                  [(v, _footprint_from_json(fp)) for v, fp in d["done"]],
                  _footprint_from_json(d["footprint"])) for d in data]


__all__ = ["BoundError", "DepthFirst", "DepthFirstSearch", "MAX_EXHAUSTIVE_SCHEDULES",
           "SleepSetSearch", "complete_footprint", "depth_first", "frames_from_json",
           "frames_to_json", "frontier", "next_prefix", "sleep_set_search"]
