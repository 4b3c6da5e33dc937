"""The explorer: exhaustive and random exploration of fault schedules, and shrinking.

Exhaustive mode enumerates the choice tree depth-first by re-execution (each
schedule is a fresh run of the real processor code on a fresh in-memory SQLite
store), within the scenario's bounds: workers, jobs, faults and steps. The result
reports the counts that make a proof non-vacuous: schedules run, distinct
histories, violating runs, and ``reached``, the runs in which the fault under
study fired.

Two reductions skip schedules equivalent to ones already explored (``reduction``:
``none``, ``symmetry``, or ``full``, both, the default):

- **symmetry** (in the scheduler, :mod:`failfirst.sim.scheduler`): workers with no lease and
  no memory are interchangeable, so only one of them is offered at a decision;
- **sleep sets** (:mod:`failfirst.sim.reduction`): once every schedule that begins with one
  actor's step has been explored from a state, the other branches keep that actor
  asleep while they take steps independent of it (neither writes what the other
  reads or writes, as recorded from the store), and a state where every ready
  actor is asleep is cut off.

**Equivalence.** Two schedules are equivalent when one becomes the other by
swapping adjacent independent steps (and renaming interchangeable workers). Then
every checker gives both the same verdict and both end in the same final store
state (:func:`final_state`: jobs, effects, attempts and dead letters, worker names
erased); each job's own history is the same too (:func:`job_histories`). A
reduced exploration runs at least one schedule of every equivalence class within
the bounds, so it finds the same set of violated invariants, the same set of final
store states and the same shortest counterexample as the full one — which
``tests/test_por.py`` checks for every failure mode. Its schedules are ordinary
choice sequences: a counterexample replays with ``failfirst replay`` and shrinks.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from failfirst.proofs.run import RunResult, simulate
from failfirst.sim.choices import ChoiceSource, RandomChoices, ReplayChoices
from failfirst.sim.reduction import (
    Frame,
    SleepSetBlocked,
    SleepSetChoices,
    StepRecorded,
    backtrack,
    next_index,
    tracked_simulation_store,
)
from failfirst.sim.scenario import FAULT_KINDS, Scenario
from failfirst.store import simulation_store
from failfirst.store.clock import SimClock

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


def sleep_set_search(
    run: Callable[[ChoiceSource], RunResult], limit: int, frames: list[Frame] | None = None,
    floor: int = 0, *, resume: bool = False,
) -> Iterator[RunResult | None]:
    """Depth-first search with sleep sets (see :mod:`failfirst.sim.reduction`): one result per
    schedule run, None for a path cut off because every ready actor was asleep. With
    ``frames``, the search continues below the first ``floor`` decisions of that path
    (after it, with ``resume``: the path itself was run already)."""
    frames = [] if frames is None else frames
    if resume and not backtrack(frames, floor):
        return
    for _ in range(limit):
        source = SleepSetChoices(frames)
        try:
            yield run(source)
        except SleepSetBlocked:
            yield None
        if not backtrack(frames, floor):
            return
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
    #: Every invariant some explored schedule violated (complete unless stopped at the first).
    invariants_violated: list[str] = field(default_factory=list)
    #: Paths the sleep sets cut off (every ready actor asleep): not schedules.
    sleep_blocked: int = 0
    #: (faults, events) of the shortest violating schedule explored, None without one.
    shortest_violation: tuple[int, int] | None = None
    #: Canonical final store states (:func:`final_state`), kept with ``keep_states``.
    final_states: set[str] = field(default_factory=set, repr=False)
    #: Per-job histories (:func:`job_histories`), kept with ``keep_states``.
    job_histories: set[str] = field(default_factory=set, repr=False)

    def to_json(self) -> dict[str, Any]:
        out = {
            "fm": self.fm, "guard": "on" if self.guard else "off", "mode": self.mode,
            "schedules": self.schedules, "distinct": self.distinct, "violating": self.violating,
            "exhaustive": self.exhaustive, "bounds": self.bounds, "reached": self.reached,
            "reduction": self.reduction, "seed": self.seed, "stopped_at_first": self.stopped_at_first,
            "counterexample": self.counterexample.to_json() if self.counterexample else None,
            "elapsed_s": round(self.elapsed_s, 3),
        }
        if not self.stopped_at_first:
            out["invariants_violated"] = self.invariants_violated
        return out


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


#: The reductions ``explore`` knows, weakest first (see the module docstring).
REDUCTIONS = ("none", "symmetry", "full")
_REDUCTION_TEXT = {
    "none": "none",
    "symmetry": "symmetry (idle workers interchangeable)",
    "full": "full (symmetry and sleep sets: independent steps in one order)",
}


def reduction_name(reduction: str | None = None, reduce: bool | None = None) -> str:
    """The reduction to apply: ``reduction`` by name, or the older ``reduce`` flag (True:
    every reduction, False: none); the default is ``full``."""
    if reduction is None:
        return "none" if reduce is False else "full"
    if reduction not in REDUCTIONS:
        raise BoundError(f"unknown reduction {reduction!r} (choose from {', '.join(REDUCTIONS)})")
    return reduction


def explore(
    scenario: Scenario,
    guard: bool,
    mode: str = "exhaustive",
    runs: int | None = None,
    seed: int = 0,
    *,
    reduction: str | None = None,
    reduce: bool | None = None,
    shrink_counterexample: bool = True,
    stop_at_first: bool = False,
    progress: Callable[[int], None] | None = None,
    keep_digests: bool = False,
    keep_states: bool = False,
    workers: int = 1,
    limit: int = MAX_EXHAUSTIVE_SCHEDULES,
    store_url: str | None = None,
) -> Exploration:
    """Explore ``scenario``'s schedules; see the module docstring. ``reduction`` is
    ``full`` (the default), ``symmetry`` or ``none``; random mode samples schedules, so
    sleep sets (which need the depth-first order) give way to the symmetry reduction
    there, and the result's ``reduction`` says so. Either store records footprints
    (:func:`failfirst.sim.reduction.tracked_simulation_store`). With ``workers`` > 1, an
    exhaustive exploration splits the choice tree into subtrees explored by that many
    processes; the counts and the
    counterexample are the same as with one. ``keep_states`` keeps the canonical final
    store state of every schedule (:func:`final_state`), for comparing reductions;
    ``limit`` bounds the schedules an exhaustive exploration may run (BoundError past
    it). ``store_url``: the store every schedule runs on (default SQLite in memory;
    ``postgresql://...`` runs each on PostgreSQL, in a private schema per process)."""
    if mode not in ("exhaustive", "random"):
        raise BoundError(f"unknown mode {mode!r}")
    if mode == "exhaustive" and runs is not None:
        raise BoundError("--runs applies to random mode; exhaustive mode runs every schedule")
    reduction = reduction_name(reduction, reduce)
    if reduction == "full" and mode == "random":
        reduction = "symmetry"  # sleep sets need the depth-first order
    symmetric = reduction != "none"
    sleep_sets = reduction == "full"
    started = time.perf_counter()  # real-time: elapsed_s is a measurement, not an input

    # One connection, emptied per run: statements stay prepared.
    shared = (tracked_simulation_store(store_url, SimClock()) if sleep_sets
              else simulation_store(store_url, SimClock()))

    def run(source: ChoiceSource) -> RunResult:
        return simulate(scenario, guard, source, reduce=symmetric, store=shared)

    tally = _Tally(keep_digests, keep_states)
    first_violation_s = None
    if mode == "exhaustive" and workers > 1 and not stop_at_first and _can_fork():
        job = (scenario, guard, reduction, keep_digests, keep_states, store_url)
        parts = (_explore_in_parallel_with_sleep_sets(run, job, workers) if sleep_sets
                 else _explore_in_parallel(run, job, workers))
        for part in parts:
            tally.merge(part)
            if progress is not None:
                progress(tally.schedules)
    else:
        results: Iterator[RunResult | None]
        if mode == "exhaustive" and sleep_sets:
            results = sleep_set_search(run, limit)
        elif mode == "exhaustive":
            results = depth_first(run, limit)
        else:
            count = 1000 if runs is None else runs
            results = (run(RandomChoices(seed * 1_000_003 + i)) for i in range(count))
        for result in results:
            tally.add(result)
            if result is not None and result.violations and tally.violating == 1:
                first_violation_s = time.perf_counter() - started  # real-time: measurement
                if stop_at_first:
                    break
            if progress is not None:
                progress(tally.schedules)
    first = None if tally.first_choices is None else simulate(
        scenario, guard, ReplayChoices(tally.first_choices), reduce=symmetric,
        store=_fresh(store_url))
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
        fm=scenario.id, guard=guard, mode=mode, schedules=tally.schedules,
        distinct=len(tally.digests), violating=tally.violating, exhaustive=exhaustive,
        bounds=_bounds(scenario), reached=tally.reached, reduction=reduction,
        elapsed_s=time.perf_counter() - started,  # real-time: measurement
        counterexample=counterexample, seed=seed if mode == "random" else None,
        violating_digests=tally.violating_digests, first_violation_s=first_violation_s,
        stopped_at_first=stop_at_first and first is not None,
        invariants_violated=sorted(tally.invariants), sleep_blocked=tally.blocked,
        shortest_violation=tally.shortest, final_states=tally.final_states,
        job_histories=tally.job_histories,
    )


class _Tally:
    """What an exploration counts; mergeable, so subtrees explored apart add up."""

    def __init__(self, keep_digests: bool, keep_states: bool = False) -> None:
        self.keep_digests = keep_digests
        self.keep_states = keep_states
        self.schedules = self.reached = self.violating = self.blocked = 0
        self.digests: set[str] = set()
        self.violating_digests: set[str] = set()
        self.final_states: set[str] = set()
        self.job_histories: set[str] = set()
        self.invariants: set[str] = set()
        #: (faults, events) of the shortest violating schedule: the same in every reduction.
        self.shortest: tuple[int, int] | None = None
        self.first_choices: list[int] | None = None  # the first violation, in DFS order

    def add(self, result: RunResult | None) -> None:
        if result is None:  # cut off by the sleep sets: not a schedule
            self.blocked += 1
            return
        self.schedules += 1
        self.digests.add(result.digest)
        self.reached += result.reached
        if self.keep_states:
            self.final_states.add(final_state(result))
            self.job_histories.add(job_histories(result))
        if result.violations:
            self.violating += 1
            self.invariants.update(result.invariants_violated)
            size = (_faults(result), len(result.events))
            self.shortest = size if self.shortest is None else min(self.shortest, size)
            if self.keep_digests:
                self.violating_digests.add(canonical_digest(result))
            if self.first_choices is None:
                self.first_choices = list(result.choices)

    def merge(self, other: _Tally) -> None:
        self.schedules += other.schedules
        self.reached += other.reached
        self.violating += other.violating
        self.blocked += other.blocked
        self.digests |= other.digests
        self.violating_digests |= other.violating_digests
        self.final_states |= other.final_states
        self.job_histories |= other.job_histories
        self.invariants |= other.invariants
        if other.shortest is not None:
            self.shortest = other.shortest if self.shortest is None else min(self.shortest,
                                                                             other.shortest)
        if self.first_choices is None:
            self.first_choices = other.first_choices


#: Set in the parent just before forking: (scenario, guard, reduction, keep_digests,
#: keep_states, store_url).
_Job = tuple[Scenario, bool, str, bool, bool, str | None]
_FORKED_JOB: _Job | None = None
#: A forked process's own store (pid, store): made once, used for every subtree it explores.
_PROCESS_STORE: tuple[int, Any] | None = None


def _can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _forked_run() -> tuple[_Job, Callable[[ChoiceSource], RunResult]]:
    """In a worker process: the job, and how to run one schedule of it on the process's
    own store (never the parent's connection: a forked socket is shared)."""
    global _PROCESS_STORE
    import os

    assert _FORKED_JOB is not None
    scenario, guard, reduction, _, _, store_url = job = _FORKED_JOB
    if _PROCESS_STORE is None or _PROCESS_STORE[0] != os.getpid():
        opener = tracked_simulation_store if reduction == "full" else simulation_store
        store = opener(store_url, SimClock(), owner_pid=os.getppid())
        _PROCESS_STORE = (os.getpid(), store)
    shared = _PROCESS_STORE[1]
    return job, lambda source: simulate(scenario, guard, source, reduce=reduction != "none",
                                        store=shared)


def _explore_subtree(task: tuple[list[tuple[int, int]], int]) -> _Tally:
    """In a worker process: every schedule of a subtree after its first (which the parent
    already ran), given that first schedule's trail and the subtree's floor."""
    job, run = _forked_run()
    trail, floor = task
    tally = _Tally(job[3], job[4])
    nxt = _next_prefix(trail, floor)
    for _ in range(MAX_EXHAUSTIVE_SCHEDULES):
        if nxt is None:
            return tally
        source = _DepthFirst(nxt)
        tally.add(run(source))
        nxt = source.next_prefix(floor)
    raise BoundError(f"a subtree has more than {MAX_EXHAUSTIVE_SCHEDULES} schedules")


def _split_depth(run: Callable[[ChoiceSource], RunResult], workers: int
                 ) -> tuple[int, list[tuple[list[tuple[int, int]], RunResult]]]:
    """The shallowest depth that gives each worker many subtrees (they differ in size by
    orders of magnitude), and the first schedule of each subtree there."""
    for depth in range(1, 16):  # bounded: each level costs one run per subtree, counted
        firsts = frontier(run, depth, limit=100_000)
        if len(firsts) >= 64 * workers or all(len(trail) <= depth for trail, _ in firsts):
            break
    return depth, firsts


_PARENT_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _quiet_child() -> None:
    """A pool worker leaves Ctrl-C and SIGTERM to the parent: SIGINT to the terminal's
    process group reaches every worker too, and a worker that died of it mid-task would
    leave the parent waiting for a result that never comes. The parent, interrupted,
    terminates the pool (SIGTERM, which kills a worker outright)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_SIGNALS)


def _quiet_pool(workers: int) -> Any:
    """A forked pool whose workers ignore Ctrl-C. The signals stay blocked while the
    pool forks its workers (and in its helper threads, which fork replacements), so no
    worker can take a signal before :func:`_quiet_child` runs; one sent to the parent
    meanwhile waits, and is delivered when the mask is restored."""
    import multiprocessing

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _PARENT_SIGNALS)
    try:
        return multiprocessing.get_context("fork").Pool(workers, initializer=_quiet_child)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _explore_in_parallel(
    run: Callable[[ChoiceSource], RunResult], job: _Job, workers: int,
) -> Iterator[_Tally]:
    """Split the tree at the shallowest depth that gives each worker many subtrees (the
    subtrees differ in size by orders of magnitude), run the first schedule of each here,
    explore the rest of each in ``workers`` forked processes, and yield the tallies in
    depth-first order, so the first violation is the one a single process finds."""

    global _FORKED_JOB
    depth, firsts = _split_depth(run, workers)
    _FORKED_JOB = job
    try:
        with _quiet_pool(workers) as pool:
            tasks = [(trail, min(depth, len(trail))) for trail, _ in firsts]
            for (_, first), rest in zip(firsts, pool.imap(_explore_subtree, tasks), strict=True):
                head = _Tally(job[3], job[4])
                if job[4]:  # the final state: the shared store has been reused since
                    first = simulate(job[0], job[1], ReplayChoices(first.choices),
                                     reduce=job[2] != "none", store=_fresh(job[5]))
                head.add(first)
                head.merge(rest)
                yield head
    finally:
        _FORKED_JOB = None
        store_url = job[5]
        if store_url is not None and store_url.startswith("postgres"):
            import os

            from failfirst.store.postgresql import drop_simulation_schemas

            drop_simulation_schemas(store_url, os.getpid())  # the forked explorers' schemas


def _explore_sleep_subtree(task: tuple[list[Frame], int]) -> _Tally:
    """In a worker process: the rest of a subtree of the sleep-set search, from the
    frames of its first path (run by the parent) and its floor."""
    job, run = _forked_run()
    frames, floor = task
    tally = _Tally(job[3], job[4])
    for result in sleep_set_search(run, MAX_EXHAUSTIVE_SCHEDULES, frames, floor, resume=True):
        tally.add(result)
    return tally


def _complete_footprint(run: Callable[[ChoiceSource], RunResult], frames: list[Frame], i: int) -> None:
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


def _explore_in_parallel_with_sleep_sets(
    run: Callable[[ChoiceSource], RunResult], job: _Job, workers: int,
) -> Iterator[_Tally]:
    """:func:`_explore_in_parallel` for the sleep-set search. A subtree's sleep sets need
    the footprints of the siblings explored before it; the parent completes each one
    (:func:`_complete_footprint`) before it moves past it, so every worker starts from
    exactly the frames a single process would have there, and the counts agree."""
    import copy

    global _FORKED_JOB
    depth, _ = _split_depth(lambda source: simulate(job[0], job[1], source), workers)
    frames: list[Frame] = []
    firsts: list[tuple[RunResult | None, tuple[list[Frame], int]]] = []
    for _ in range(100_000):  # bounded like frontier()
        try:
            first: RunResult | None = run(SleepSetChoices(frames))
        except SleepSetBlocked:
            first = None
        keep = _Tally(job[3], job[4])
        keep.add(first)  # counted now: the store is reused by the next run
        firsts.append((keep, (copy.deepcopy(frames), min(depth, len(frames)))))
        del frames[depth:]
        i = next_index(frames)
        if i is None:
            break
        if frames[i].schedule:
            _complete_footprint(run, frames, i)
        backtrack(frames)
    else:
        raise BoundError("more than 100000 subtrees")
    _FORKED_JOB = job
    try:
        with _quiet_pool(workers) as pool:
            tasks = [task for _, task in firsts]
            for (head, _), rest in zip(firsts, pool.imap(_explore_sleep_subtree, tasks), strict=True):
                head.merge(rest)
                yield head
    finally:
        _FORKED_JOB = None


def final_state(result: RunResult) -> str:
    """A fingerprint of the final store state with worker names erased: every job's
    state, attempts, token, run time, lease deadline and last error; the effects, the
    attempt log and the dead letters as sorted sets. Two schedules equivalent under the
    reductions end in the same fingerprint (see the module docstring)."""
    import hashlib
    import json

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
    import hashlib
    import json

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


def _is_worker(actor: str) -> bool:
    return actor.startswith("w") and actor[1:].isdigit()


def explore_cli(scenario: Scenario, guard: bool, mode: str, runs: int | None, seed: int,
                max_faults: int | None, stop_at_first: bool, workers: int,
                progress: bool, reduction: str = "full", store_url: str | None = None,
                ) -> Exploration:
    """The ``failfirst explore`` command: a progress bar on a terminal, quiet otherwise."""
    scenario = with_bounds(scenario, max_faults)
    if not progress:
        return explore(scenario, guard, mode, runs, seed, stop_at_first=stop_at_first,
                       workers=workers, reduction=reduction, store_url=store_url)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = runs or 1000 if mode == "random" else None
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task(f"{scenario.id} {mode}", total=total)
        return explore(scenario, guard, mode, runs, seed, stop_at_first=stop_at_first,
                       workers=workers, reduction=reduction, store_url=store_url,
                       progress=lambda n: bar.update(task, completed=n) if n % 64 == 0 else None)


def describe(x: Exploration) -> str:
    lines = [
        f"{x.fm} guard {'on' if x.guard else 'off'}, {x.mode} exploration: {x.schedules} schedules "
        f"({x.distinct} distinct histories), {x.violating} violating, reached {x.reached}, "
        f"{'exhaustive' if x.exhaustive else 'not exhaustive'} in {x.elapsed_s:.2f} s"
        + (" (stopped at the first violation; --all counts them all)" if x.stopped_at_first else ""),
        f"bounds {x.bounds}; reduction: {_REDUCTION_TEXT.get(x.reduction, x.reduction)}"
        + (f", {x.sleep_blocked} equivalent paths cut off" if x.sleep_blocked else ""),
    ]
    if not x.stopped_at_first and x.invariants_violated:
        lines.append(f"invariants violated: {', '.join(x.invariants_violated)}")
    if x.counterexample:
        c = x.counterexample
        lines.append(f"minimal counterexample ({c.faults} fault(s), {c.events} events): {c.schedule}")
        lines.extend(f"  {v['invariant']} job {v['job']}: {v['detail']}" for v in c.violations)
        lines.append(f"replay: failfirst replay {x.fm} --guard {'on' if x.guard else 'off'} "
                     f"--schedule {c.schedule}")
    return "\n".join(lines)


__all__ = ["Exploration", "Counterexample", "BoundError", "explore", "shrink", "depth_first", "find_run",
           "canonical_digest", "final_state", "job_histories", "sleep_set_search", "REDUCTIONS"]
