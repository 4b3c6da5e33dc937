"""An exhaustive exploration split over forked processes.

The choice tree is split at the shallowest depth that gives each worker many
subtrees (they differ in size by orders of magnitude); the parent runs the first
schedule of each, the workers explore the rest, and the tallies come back in
depth-first order, so the counts and the first violation are those one process
finds. A resumed exploration skips the subtrees its checkpoint says are done.
"""

from __future__ import annotations

import copy
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

from failfirst.proofs.run import RunResult, simulate
from failfirst.proofs.search import (
    MAX_EXHAUSTIVE_SCHEDULES,
    BoundError,
    DepthFirst,
    complete_footprint,
    frontier,
    next_prefix,
    sleep_set_search,
)
from failfirst.proofs.tally import Tally
from failfirst.sim.choices import ChoiceSource, ReplayChoices
from failfirst.sim.reduction import (
    Frame,
    SleepSetBlocked,
    SleepSetChoices,
    backtrack,
    next_index,
    tracked_simulation_store,
)
from failfirst.sim.scenario import Scenario
from failfirst.store import simulation_store
from failfirst.store.clock import SimClock

#: Set in the parent just before forking: (scenario, guard, reduction, keep_digests,
#: keep_states, store_url).
Job = tuple[Scenario, bool, str, bool, bool, str | None]
_FORKED_JOB: Job | None = None
#: A forked process's own store (pid, store): made once, used for every subtree it explores.
_PROCESS_STORE: tuple[int, Any] | None = None
#: Subtrees a split may make (each costs the parent one run).
MAX_SUBTREES = 100_000


def can_fork() -> bool:
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


def _tally(job: Job) -> Tally:
    return Tally(job[3], job[4], job[0].sometimes)


def _fresh(store_url: str | None) -> Any:
    return None if store_url is None else simulation_store(store_url, SimClock())


def _forked_run() -> tuple[Job, Callable[[ChoiceSource], RunResult]]:
    """In a worker process: the job, and how to run one schedule of it on the process's
    own store (never the parent's connection: a forked socket is shared)."""
    global _PROCESS_STORE

    assert _FORKED_JOB is not None
    scenario, guard, reduction, _, _, store_url = job = _FORKED_JOB
    if _PROCESS_STORE is None or _PROCESS_STORE[0] != os.getpid():
        opener = tracked_simulation_store if reduction == "full" else simulation_store
        store = opener(store_url, SimClock(), owner_pid=os.getppid())
        _PROCESS_STORE = (os.getpid(), store)
    shared = _PROCESS_STORE[1]
    return job, lambda source: simulate(scenario, guard, source, reduce=reduction != "none",
                                        store=shared)


def _explore_subtree(task: tuple[list[tuple[int, int]], int]) -> Tally:
    """In a worker process: every schedule of a subtree after its first (which the parent
    already ran), given that first schedule's trail and the subtree's floor."""
    job, run = _forked_run()
    trail, floor = task
    tally = _tally(job)
    nxt = next_prefix(trail, floor)
    for _ in range(MAX_EXHAUSTIVE_SCHEDULES):
        if nxt is None:
            return tally
        source = DepthFirst(nxt)
        tally.add(run(source))
        nxt = source.next_prefix(floor)
    raise BoundError(f"a subtree has more than {MAX_EXHAUSTIVE_SCHEDULES} schedules")


def _split_depth(run: Callable[[ChoiceSource], RunResult], workers: int
                 ) -> tuple[int, list[tuple[list[tuple[int, int]], RunResult]]]:
    """The shallowest depth that gives each worker many subtrees, and the first schedule
    of each subtree there."""
    for depth in range(1, 16):  # bounded: each level costs one run per subtree, counted
        firsts = frontier(run, depth, limit=MAX_SUBTREES)
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


def _drop_schemas(store_url: str | None) -> None:
    if store_url is not None and store_url.startswith("postgres"):
        from failfirst.store.postgresql import drop_simulation_schemas

        drop_simulation_schemas(store_url, os.getpid())  # the forked explorers' schemas


class Split:
    """The subtrees of one exploration, explored by a pool: ``subtrees`` of them, the
    tallies yielded in depth-first order, the first ``skip`` left out (a resumed run)."""

    def __init__(self, run: Callable[[ChoiceSource], RunResult], job: Job, workers: int,
                 *, sleep_sets: bool, skip: int = 0) -> None:
        self.job, self.workers, self.skip = job, workers, skip
        if sleep_sets:
            self._heads, self._tasks = _sleep_set_subtrees(run, job, workers, skip)
            self._explore: Callable[[Any], Tally] = _explore_sleep_subtree
        else:
            self._heads, self._tasks = _depth_first_subtrees(run, job, workers, skip)
            self._explore = _explore_subtree
        self.subtrees = skip + len(self._tasks)

    def __iter__(self) -> Iterator[Tally]:
        global _FORKED_JOB
        _FORKED_JOB = self.job
        try:
            with _quiet_pool(self.workers) as pool:
                for head, rest in zip(self._heads, pool.imap(self._explore, self._tasks), strict=True):
                    head.merge(rest)
                    yield head
        finally:
            _FORKED_JOB = None
            _drop_schemas(self.job[5])


def _depth_first_subtrees(run: Callable[[ChoiceSource], RunResult], job: Job, workers: int,
                          skip: int) -> tuple[list[Tally], list[Any]]:
    depth, firsts = _split_depth(run, workers)
    heads, tasks = [], []
    for trail, first in firsts[skip:]:
        head = _tally(job)
        if job[4]:  # the final state: the shared store has been reused since
            first = simulate(job[0], job[1], ReplayChoices(first.choices),
                             reduce=job[2] != "none", store=_fresh(job[5]))
        head.add(first)
        heads.append(head)
        tasks.append((trail, min(depth, len(trail))))
    return heads, tasks


def _explore_sleep_subtree(task: tuple[list[Frame], int]) -> Tally:
    """In a worker process: the rest of a subtree of the sleep-set search, from the
    frames of its first path (run by the parent) and its floor."""
    job, run = _forked_run()
    frames, floor = task
    tally = _tally(job)
    for result in sleep_set_search(run, MAX_EXHAUSTIVE_SCHEDULES, frames, floor, resume=True):
        tally.add(result)
    return tally


def _sleep_set_subtrees(run: Callable[[ChoiceSource], RunResult], job: Job, workers: int,
                        skip: int) -> tuple[list[Tally], list[Any]]:
    """The split for the sleep-set search. A subtree's sleep sets need the footprints of
    the siblings explored before it; the parent completes each one
    (:func:`~failfirst.proofs.search.complete_footprint`) before it moves past it, so
    every worker starts from exactly the frames a single process would have there, and
    the counts agree."""
    depth, _ = _split_depth(lambda source: simulate(job[0], job[1], source), workers)
    frames: list[Frame] = []
    heads: list[Tally] = []
    tasks: list[Any] = []
    for index in range(MAX_SUBTREES):
        try:
            first: RunResult | None = run(SleepSetChoices(frames))
        except SleepSetBlocked:
            first = None
        if index >= skip:
            head = _tally(job)
            head.add(first)  # counted now: the store is reused by the next run
            heads.append(head)
            tasks.append((copy.deepcopy(frames), min(depth, len(frames))))
        del frames[depth:]
        i = next_index(frames)
        if i is None:
            return heads, tasks
        if frames[i].schedule:
            complete_footprint(run, frames, i)
        backtrack(frames)
    raise BoundError(f"more than {MAX_SUBTREES} subtrees")


__all__ = ["Job", "Split", "can_fork"]
