"""The explorer: exhaustive and random exploration of fault schedules, and shrinking.

Exhaustive mode enumerates the choice tree depth-first by re-execution (each
schedule is a fresh run of the real processor code on a fresh in-memory SQLite
store), within the scenario's bounds: workers, jobs, faults and steps. A
symmetry reduction is built into the scheduler (see :mod:`failfirst.sim`):
workers with no lease and no memory are interchangeable, so only one of them is
offered at a decision. The result reports the counts that make a proof
non-vacuous: schedules run, distinct histories, violating runs, and ``reached``,
the runs in which the fault under study fired.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from failfirst.choices import ChoiceSource, RandomChoices, ReplayChoices
from failfirst.clock import SimClock
from failfirst.runner import RunResult, simulate
from failfirst.scenario import FAULT_KINDS, Scenario
from failfirst.store import simulation_store

#: An exhaustive exploration refuses to start past this many schedules' worth of bound.
MAX_EXHAUSTIVE_SCHEDULES = 2_000_000
#: Replays a shrink may spend: shrinking is bounded like everything else.
MAX_SHRINK_RUNS = 2_000


class BoundError(ValueError):
    """An impossible or unaffordable bound."""


class _DepthFirst:
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
        return _next_prefix(self.trail, floor)


def _next_prefix(trail: list[tuple[int, int]], floor: int = 0) -> list[int] | None:
    for i in range(len(trail) - 1, floor - 1, -1):
        value, n = trail[i]
        if value + 1 < n:
            return [v for v, _ in trail[:i]] + [value + 1]
    return None


def depth_first(
    run: Callable[[ChoiceSource], RunResult], limit: int, prefix: list[int] | None = None,
) -> Iterator[RunResult]:
    """Every complete schedule of the choice tree, once each (stateless model checking);
    with ``prefix``, every schedule of the subtree under it."""
    floor = len(prefix or [])
    nxt: list[int] | None = list(prefix or [])
    for _ in range(limit):
        if nxt is None:
            return
        source = _DepthFirst(nxt)
        yield run(source)
        nxt = source.next_prefix(floor)
    if nxt is not None:
        raise BoundError(f"the choice tree has more than {limit} schedules; lower the bounds")


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
        source = _DepthFirst(nxt)
        firsts.append((source.trail, run(source)))
        nxt = _next_prefix(source.trail[:depth])
    raise BoundError(f"more than {limit} subtrees at depth {depth}")


@dataclass
class Counterexample:
    schedule: str
    violations: list[dict[str, Any]]
    digest: str
    faults: int
    events: int
    result: RunResult | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "violations": self.violations, "digest": self.digest,
                "faults": self.faults, "events": self.events}


@dataclass
class Exploration:
    fm: str
    guard: bool
    mode: str
    schedules: int
    distinct: int
    violating: int
    exhaustive: bool
    bounds: dict[str, Any]
    reached: int
    reduction: str
    elapsed_s: float
    counterexample: Counterexample | None = None
    seed: int | None = None
    violating_digests: set[str] = field(default_factory=set, repr=False)
    first_violation_s: float | None = None
    #: Exploration ended at the first violation (not every schedule ran).
    stopped_at_first: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "fm": self.fm, "guard": "on" if self.guard else "off", "mode": self.mode,
            "schedules": self.schedules, "distinct": self.distinct, "violating": self.violating,
            "exhaustive": self.exhaustive, "bounds": self.bounds, "reached": self.reached,
            "reduction": self.reduction, "seed": self.seed, "stopped_at_first": self.stopped_at_first,
            "counterexample": self.counterexample.to_json() if self.counterexample else None,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def find_run(
    scenario: Scenario, guard: bool, predicate: Callable[[RunResult], bool], *,
    max_faults: int | None = None, limit: int = MAX_EXHAUSTIVE_SCHEDULES, store_url: str | None = None,
) -> RunResult | None:
    """The first schedule, in depth-first order, whose run satisfies ``predicate`` —
    say, one where a paused worker's commit is refused — re-run on a fresh store so the
    result stays valid; None when no schedule within the bounds does."""
    scenario = with_bounds(scenario, max_faults)
    shared = simulation_store(store_url, SimClock())
    runs = depth_first(lambda source: simulate(scenario, guard, source, store=shared), limit)
    for result in runs:
        if predicate(result):
            return simulate(scenario, guard, ReplayChoices(result.choices), store=_fresh(store_url))
    return None


def _faults(result: RunResult) -> int:
    return sum(1 for e in result.events if e["kind"] in FAULT_KINDS and e.get("point") != "handler")


def _complexity(result: RunResult) -> tuple[int, int, int, list[int]]:
    """Smaller is simpler: fewest faults, then fewest steps, then the shortest, smallest choices."""
    return (_faults(result), len(result.events), len(result.choices), result.choices)


def _fresh(store_url: str | None) -> Any:
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
                and _complexity(candidate) < _complexity(best)):
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
    return simulate(scenario, guard, ReplayChoices(best.choices, strict=True), store=_fresh(store_url))


def _bounds(scenario: Scenario) -> dict[str, Any]:
    return {"workers": scenario.workers, "jobs": len(scenario.jobs),
            "max_faults": scenario.faults.max_faults, "max_steps": scenario.max_steps}


def with_bounds(scenario: Scenario, max_faults: int | None = None) -> Scenario:
    if max_faults is None:
        return scenario
    if max_faults > 5:
        raise BoundError(f"--max-faults {max_faults}: at most 5 faults per schedule")
    return replace(scenario, faults=replace(scenario.faults, max_faults=max_faults))


def explore(
    scenario: Scenario,
    guard: bool,
    mode: str = "exhaustive",
    runs: int | None = None,
    seed: int = 0,
    *,
    reduce: bool = True,
    shrink_counterexample: bool = True,
    stop_at_first: bool = False,
    progress: Callable[[int], None] | None = None,
    keep_digests: bool = False,
    workers: int = 1,
    store_url: str | None = None,
) -> Exploration:
    """Explore ``scenario``'s schedules; see the module docstring. With ``workers`` > 1,
    an exhaustive exploration splits the choice tree into subtrees explored by that many
    processes; the counts and the counterexample are the same as with one. ``store_url``:
    the store every schedule runs on (default SQLite in memory; ``postgresql://...``
    runs each on PostgreSQL, in a private schema per process)."""
    if mode not in ("exhaustive", "random"):
        raise BoundError(f"unknown mode {mode!r}")
    if mode == "exhaustive" and runs is not None:
        raise BoundError("--runs applies to random mode; exhaustive mode runs every schedule")
    started = time.perf_counter()  # real-time: elapsed_s is a measurement, not an input

    # One connection, emptied per run: statements stay prepared.
    shared = simulation_store(store_url, SimClock())

    def run(source: ChoiceSource) -> RunResult:
        return simulate(scenario, guard, source, reduce=reduce, store=shared)

    tally = _Tally(keep_digests)
    first_violation_s = None
    if mode == "exhaustive" and workers > 1 and not stop_at_first and _can_fork():
        job = (scenario, guard, reduce, keep_digests, store_url)
        for part in _explore_in_parallel(run, job, workers):
            tally.merge(part)
            if progress is not None:
                progress(tally.schedules)
    else:
        if mode == "exhaustive":
            results: Iterator[RunResult] = depth_first(run, MAX_EXHAUSTIVE_SCHEDULES)
        else:
            count = 1000 if runs is None else runs
            results = (run(RandomChoices(seed * 1_000_003 + i)) for i in range(count))
        for result in results:
            tally.add(result)
            if result.violations and tally.violating == 1:
                first_violation_s = time.perf_counter() - started  # real-time: measurement
                if stop_at_first:
                    break
            if progress is not None:
                progress(tally.schedules)
    schedules, reached, violating = tally.schedules, tally.reached, tally.violating
    digests, violating_digests = tally.digests, tally.violating_digests
    first = None if tally.first_choices is None else simulate(
        scenario, guard, ReplayChoices(tally.first_choices), reduce=reduce, store=_fresh(store_url))
    exhaustive = mode == "exhaustive" and not (stop_at_first and first is not None)
    counterexample = None
    if first is not None:
        minimal = (shrink(scenario, guard, first, store_url=store_url) if shrink_counterexample
                   else first)
        counterexample = Counterexample(
            minimal.schedule, [v.to_json() for v in minimal.violations], minimal.digest,
            _faults(minimal), len(minimal.events), minimal,
        )
    return Exploration(
        fm=scenario.id, guard=guard, mode=mode, schedules=schedules, distinct=len(digests),
        violating=violating, exhaustive=exhaustive, bounds=_bounds(scenario), reached=reached,
        reduction="symmetry: idle workers interchangeable" if reduce else "none",
        elapsed_s=time.perf_counter() - started,  # real-time: measurement
        counterexample=counterexample, seed=seed if mode == "random" else None,
        violating_digests=violating_digests, first_violation_s=first_violation_s,
        stopped_at_first=stop_at_first and first is not None,
    )


class _Tally:
    """What an exploration counts; mergeable, so subtrees explored apart add up."""

    def __init__(self, keep_digests: bool) -> None:
        self.keep_digests = keep_digests
        self.schedules = self.reached = self.violating = 0
        self.digests: set[str] = set()
        self.violating_digests: set[str] = set()
        self.first_choices: list[int] | None = None  # the first violation, in DFS order

    def add(self, result: RunResult) -> None:
        self.schedules += 1
        self.digests.add(result.digest)
        self.reached += result.reached
        if result.violations:
            self.violating += 1
            if self.keep_digests:
                self.violating_digests.add(canonical_digest(result))
            if self.first_choices is None:
                self.first_choices = list(result.choices)

    def merge(self, other: _Tally) -> None:
        self.schedules += other.schedules
        self.reached += other.reached
        self.violating += other.violating
        self.digests |= other.digests
        self.violating_digests |= other.violating_digests
        if self.first_choices is None:
            self.first_choices = other.first_choices


#: Set in the parent just before forking: (scenario, guard, reduce, keep_digests, store_url).
_FORKED_JOB: tuple[Scenario, bool, bool, bool, str | None] | None = None
#: A forked process's own store (pid, store): made once, used for every subtree it explores.
_PROCESS_STORE: tuple[int, Any] | None = None


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _explore_subtree(task: tuple[list[tuple[int, int]], int]) -> _Tally:
    """In a worker process: every schedule of a subtree after its first (which the parent
    already ran), given that first schedule's trail and the subtree's floor."""
    assert _FORKED_JOB is not None
    global _PROCESS_STORE
    import os

    scenario, guard, reduce, keep_digests, store_url = _FORKED_JOB
    trail, floor = task
    if _PROCESS_STORE is None or _PROCESS_STORE[0] != os.getpid():
        # Never the parent's connection (a forked socket is shared): a store of its own.
        _PROCESS_STORE = (os.getpid(), simulation_store(store_url, SimClock(), owner_pid=os.getppid()))
    shared = _PROCESS_STORE[1]
    tally = _Tally(keep_digests)
    nxt = _next_prefix(trail, floor)
    for _ in range(MAX_EXHAUSTIVE_SCHEDULES):
        if nxt is None:
            return tally
        source = _DepthFirst(nxt)
        tally.add(simulate(scenario, guard, source, reduce=reduce, store=shared))
        nxt = source.next_prefix(floor)
    raise BoundError(f"a subtree has more than {MAX_EXHAUSTIVE_SCHEDULES} schedules")


def _explore_in_parallel(
    run: Callable[[ChoiceSource], RunResult], job: tuple[Scenario, bool, bool, bool, str | None],
    workers: int,
) -> Iterator[_Tally]:
    """Split the tree at the shallowest depth that gives each worker many subtrees (the
    subtrees differ in size by orders of magnitude), run the first schedule of each here,
    explore the rest of each in ``workers`` forked processes, and yield the tallies in
    depth-first order, so the first violation is the one a single process finds."""
    import multiprocessing

    global _FORKED_JOB
    for depth in range(1, 16):  # bounded: each level costs one run per subtree, counted
        firsts = frontier(run, depth, limit=100_000)
        if len(firsts) >= 64 * workers or all(len(trail) <= depth for trail, _ in firsts):
            break
    _FORKED_JOB = job
    store_url = job[4]
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            tasks = [(trail, min(depth, len(trail))) for trail, _ in firsts]
            for (_, first), rest in zip(firsts, pool.imap(_explore_subtree, tasks), strict=True):
                head = _Tally(job[3])
                head.add(first)
                head.merge(rest)
                yield head
    finally:
        _FORKED_JOB = None
        if store_url is not None and store_url.startswith("postgres"):
            import os

            from failfirst.store.postgresql import drop_simulation_schemas

            drop_simulation_schemas(store_url, os.getpid())  # the forked explorers' schemas


def canonical_digest(result: RunResult) -> str:
    """The digest of a history with worker names erased. The symmetry reduction only
    prunes choices between workers that hold no lease and no memory, so what it skips
    differs from what it runs by worker names alone; who did what to a job stays
    visible through the lease tokens."""
    from failfirst.history import digest

    return digest([{**e, "actor": "w"} if _is_worker(e["actor"]) else e for e in result.events])


def _is_worker(actor: str) -> bool:
    return actor.startswith("w") and actor[1:].isdigit()


def explore_cli(scenario: Scenario, guard: bool, mode: str, runs: int | None, seed: int,
                max_faults: int | None, stop_at_first: bool, workers: int,
                progress: bool, store_url: str | None = None) -> Exploration:
    """The ``failfirst explore`` command: a progress bar on a terminal, quiet otherwise."""
    scenario = with_bounds(scenario, max_faults)
    if not progress:
        return explore(scenario, guard, mode, runs, seed, stop_at_first=stop_at_first,
                       workers=workers, store_url=store_url)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = runs or 1000 if mode == "random" else None
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task(f"{scenario.id} {mode}", total=total)
        return explore(scenario, guard, mode, runs, seed, stop_at_first=stop_at_first,
                       workers=workers, store_url=store_url,
                       progress=lambda n: bar.update(task, completed=n) if n % 64 == 0 else None)


def describe(x: Exploration) -> str:
    lines = [
        f"{x.fm} guard {'on' if x.guard else 'off'}, {x.mode} exploration: {x.schedules} schedules "
        f"({x.distinct} distinct histories), {x.violating} violating, reached {x.reached}, "
        f"{'exhaustive' if x.exhaustive else 'not exhaustive'} in {x.elapsed_s:.2f} s"
        + (" (stopped at the first violation; --all counts them all)" if x.stopped_at_first else ""),
        f"bounds {x.bounds}; reduction: {x.reduction}",
    ]
    if x.counterexample:
        c = x.counterexample
        lines.append(f"minimal counterexample ({c.faults} fault(s), {c.events} events): {c.schedule}")
        lines.extend(f"  {v['invariant']} job {v['job']}: {v['detail']}" for v in c.violations)
        lines.append(f"replay: failfirst replay {x.fm} --guard {'on' if x.guard else 'off'} "
                     f"--schedule {c.schedule}")
    return "\n".join(lines)


__all__ = ["Exploration", "Counterexample", "BoundError", "explore", "shrink", "depth_first", "find_run",
           "canonical_digest"]
