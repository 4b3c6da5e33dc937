"""The explorer: exhaustive, random and PCT exploration of fault schedules, and shrinking.

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
  reads or writes, as recorded from the store and the services), and a state where every ready
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

Besides the counts, an exploration reports its **fault coverage** (for every fault
point and kind of the scenario, the schedules that struck it) and the scenario's
**"sometimes" assertions** (states it must reach at its bounds), both counted by
:class:`failfirst.proofs.tally.Tally`. ``random`` and ``pct`` modes sample; PCT
(:mod:`failfirst.proofs.pct`) states what its sample guarantees. A long exploration
keeps a checkpoint (:mod:`failfirst.proofs.checkpoint`) and resumes from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from failfirst.proofs import checkpoint as checkpoints
from failfirst.proofs import coverage, pct
from failfirst.proofs.estimate import fraction_done, projected_total
from failfirst.proofs.parallel import Split, can_fork
from failfirst.proofs.run import RunResult, simulate
from failfirst.proofs.search import (
    MAX_EXHAUSTIVE_SCHEDULES,
    BoundError,
    DepthFirstSearch,
    SleepSetSearch,
    depth_first,
    frames_from_json,
    sleep_set_search,
)
from failfirst.proofs.shrinking import MAX_SHRINK_RUNS, shrink
from failfirst.proofs.shrinking import fresh_store as _fresh
from failfirst.proofs.tally import Tally, canonical_digest, faults_in, final_state, job_histories
from failfirst.proofs.words import bounds_in_words, plural
from failfirst.sim.choices import ChoiceSource, PCTChoices, RandomChoices, ReplayChoices
from failfirst.sim.reduction import tracked_simulation_store
from failfirst.sim.scenario import Scenario
from failfirst.store import simulation_store
from failfirst.store.clock import SimClock

#: The modes ``explore`` knows.
MODES = ("exhaustive", "random", "pct")
#: Runs of a random or PCT exploration when none are asked for.
DEFAULT_RUNS = 1000


@dataclass
class Counterexample:
    schedule: str
    violations: list[dict[str, Any]]
    digest: str
    faults: int
    events: int
    result: RunResult | None = field(default=None, repr=False)
    #: The same violation on the scenario cut to the jobs and workers it needs
    #: (:func:`failfirst.proofs.minimize.shrink_scenario`), when asked for.
    reduced: Any = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        out = {"schedule": self.schedule, "violations": self.violations, "digest": self.digest,
               "faults": self.faults, "events": self.events}
        if self.reduced is not None:
            out["reduced"] = self.reduced.to_json()
        return out


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
    #: point -> fault kind -> schedules that struck it, every declared pair (zeros too).
    coverage: dict[str, dict[str, int]] = field(default_factory=dict)
    #: The declared (point, kind) pairs no explored schedule struck.
    never_struck: list[tuple[str, str]] = field(default_factory=list)
    #: "sometimes" assertion -> schedules that reached its state.
    sometimes: dict[str, int] = field(default_factory=dict)
    #: PCT mode: what the runs made guarantee (:func:`failfirst.proofs.pct.report`).
    pct: dict[str, Any] | None = None
    #: The exploration went on from a checkpoint.
    resumed: bool = False

    def to_json(self) -> dict[str, Any]:
        out = {
            "fm": self.fm, "guard": "on" if self.guard else "off", "mode": self.mode,
            "schedules": self.schedules, "distinct": self.distinct, "violating": self.violating,
            "exhaustive": self.exhaustive, "bounds": self.bounds, "reached": self.reached,
            "reduction": self.reduction, "seed": self.seed, "stopped_at_first": self.stopped_at_first,
            "counterexample": self.counterexample.to_json() if self.counterexample else None,
            "elapsed_s": round(self.elapsed_s, 3), "coverage": self.coverage,
            "never_struck": [list(pair) for pair in self.never_struck],
            "sometimes": self.sometimes,
        }
        if not self.stopped_at_first:
            out["invariants_violated"] = self.invariants_violated
        if self.pct is not None:
            out["pct"] = self.pct
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


def every_schedule(scenario: Scenario, guard: bool, limit: int = MAX_EXHAUSTIVE_SCHEDULES,
                   ) -> Iterator[RunResult]:
    """The schedules the full reduction runs (symmetry and sleep sets), one run at a time,
    each valid until the next (the store is reused). The reduced search reaches every
    per-job history and every final store state the whole tree does (the equivalence of
    the module docstring, checked by ``tests/test_por.py``), so a property of those —
    effects and calls per job, a job's final state, its events in order, a fenced
    resource's rows — holds for every schedule within the bounds when it holds for
    these. A property of the global order of events across jobs needs
    :func:`depth_first`."""
    store = tracked_simulation_store(None, SimClock())
    for result in sleep_set_search(lambda source: simulate(scenario, guard, source, store=store),
                                   limit):
        if result is not None:
            yield result


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


class _Saver:
    """Writes an exploration's checkpoint: at the start, then whenever a few seconds have
    passed (and ten times as long as the last write took: a large tally is written
    rarely), and removes it at the end. An interrupted exploration leaves the last one."""

    #: Seconds between two checkpoints at least.
    EVERY_S = 3.0

    def __init__(self, path: str, identity: dict[str, Any]) -> None:
        self.path, self.identity = path, identity
        self._last = 0.0
        self._cost_s = 0.0

    def load(self) -> dict[str, Any] | None:
        try:
            return checkpoints.load(self.path, self.identity)
        except checkpoints.CheckpointError as exc:
            raise BoundError(str(exc)) from None

    def due(self) -> bool:
        now = time.monotonic()  # real-time: pacing the checkpoint's writes, not the search
        return now - self._last >= max(self.EVERY_S, 10 * self._cost_s)

    def save(self, state: dict[str, Any]) -> None:
        started = time.monotonic()  # real-time: pacing
        checkpoints.save(self.path, self.identity, state)
        self._last = time.monotonic()  # real-time: pacing
        self._cost_s = self._last - started

    def finish(self) -> None:
        checkpoints.remove(self.path)


def _identity(scenario: Scenario, guard: bool, mode: str, reduction: str, runs: int | None,
              seed: int, depth: int, stop_at_first: bool, layout: str, keep: tuple[bool, bool],
              ) -> dict[str, Any]:
    return {"fm": scenario.id, "guard": guard, "mode": mode, "reduction": reduction,
            "bounds": _bounds(scenario), "runs": runs, "seed": seed if mode != "exhaustive" else None,
            "depth": depth if mode == "pct" else None, "stop_at_first": stop_at_first,
            "layout": layout, "keep": list(keep), "scenario": checkpoints.scenario_fingerprint(scenario)}


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
    checkpoint: str | None = None,
    depth: int = pct.DEFAULT_DEPTH,
    progress_total: Callable[[int], None] | None = None,
    stop: Callable[[Tally], bool] | None = None,
) -> Exploration:
    """Explore ``scenario``'s schedules; see the module docstring. ``mode`` is
    ``exhaustive`` (every schedule within the bounds), ``random`` (``runs`` seeded random
    schedules) or ``pct`` (``runs`` PCT schedules for bugs of ``depth``). ``reduction``
    is ``full`` (the default), ``symmetry`` or ``none``; the sampling modes draw
    schedules, so sleep sets (which need the depth-first order) give way to the
    symmetry reduction there, and the result's ``reduction`` says so. Either store
    records footprints (:func:`failfirst.sim.reduction.tracked_simulation_store`). With
    ``workers`` > 1, an exhaustive exploration splits the choice tree into subtrees
    explored by that many processes; the counts and the counterexample are the same as
    with one. ``keep_states`` keeps the canonical final store state of every schedule
    (:func:`final_state`), for comparing reductions; ``limit`` bounds the schedules an
    exhaustive exploration may run (BoundError past it). ``store_url``: the store every
    schedule runs on (default SQLite in memory; ``postgresql://...`` runs each on
    PostgreSQL, in a private schema per process). ``checkpoint``: a file that keeps the
    exploration's progress; an exploration started with the checkpoint of an
    interrupted one goes on from it (:mod:`failfirst.proofs.checkpoint`).
    ``progress(n)`` sees the schedules run so far, ``progress_total(n)`` the tree's
    estimated size as it becomes known; ``stop(tally)``, checked after each schedule,
    ends the exploration early (it is then not exhaustive)."""
    if mode not in MODES:
        raise BoundError(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
    if mode == "exhaustive" and runs is not None:
        raise BoundError("--runs applies to random and pct modes; exhaustive mode runs every schedule")
    if depth < 1:
        raise BoundError(f"--depth {depth}: a bug has depth 1 at least")
    reduction = reduction_name(reduction, reduce)
    if reduction == "full" and mode != "exhaustive":
        reduction = "symmetry"  # sleep sets need the depth-first order
    symmetric = reduction != "none"
    sleep_sets = reduction == "full"
    parallel = mode == "exhaustive" and workers > 1 and not stop_at_first and stop is None and can_fork()
    started = time.perf_counter()  # real-time: elapsed_s is a measurement, not an input

    saver, state = None, None
    if checkpoint is not None:
        layout = f"subtrees of {workers} workers" if parallel else "sequential"
        saver = _Saver(checkpoint, _identity(scenario, guard, mode, reduction, runs, seed, depth,
                                             stop_at_first, layout, (keep_digests, keep_states)))
        state = saver.load()

    # One connection, emptied per run: statements stay prepared.
    shared = (tracked_simulation_store(store_url, SimClock()) if sleep_sets
              else simulation_store(store_url, SimClock()))

    def run(source: ChoiceSource) -> RunResult:
        return simulate(scenario, guard, source, reduce=symmetric, store=shared)

    tally = Tally(keep_digests, keep_states, scenario.sometimes)
    previous_s, first_violation_s = 0.0, None
    position: dict[str, Any] = {}
    if state is not None:
        tally.load(state["tally"])
        previous_s, first_violation_s = state["elapsed_s"], state["first_violation_s"]
        position = state["position"]

    def snapshot(where: dict[str, Any]) -> dict[str, Any]:
        return {"position": where, "tally": tally.to_json(), "first_violation_s": first_violation_s,
                "elapsed_s": previous_s + time.perf_counter() - started}  # real-time: measurement

    if saver is not None and state is None:
        saver.save(snapshot({"search": "start"}))
    shape = pct.measure(scenario, guard) if mode == "pct" else None
    count = DEFAULT_RUNS if runs is None else runs
    stopped = False
    if parallel:
        done = position.get("done", 0)
        split = Split(run, (scenario, guard, reduction, keep_digests, keep_states, store_url),
                      workers, sleep_sets=sleep_sets, skip=done)
        for part in split:
            tally.merge(part)
            done += 1
            if progress is not None:
                progress(tally.schedules)
            if progress_total is not None:
                progress_total(round(tally.schedules * split.subtrees / done))
            if saver is not None and saver.due():
                saver.save(snapshot({"search": "subtrees", "done": done}))
    else:
        search: Any
        if mode == "exhaustive" and sleep_sets:
            frames = frames_from_json(position["frames"]) if "frames" in position else None
            search = SleepSetSearch(run, limit, frames, resume=frames is not None)
        elif mode == "exhaustive":
            start = position.get("next", []) if position.get("search") == "depth_first" else []
            search = DepthFirstSearch(run, limit, start=start) if start is not None else iter(())
        else:
            search = _Sample(run, mode, seed, count, position.get("next", 0), depth, shape)
        for result in search:
            tally.add(result)
            if result is not None and result.violations and tally.violating == 1:
                first_violation_s = (previous_s + time.perf_counter()  # real-time: measurement
                                     - started)
                if stop_at_first:
                    stopped = True
                    break
            if stop is not None and stop(tally):
                stopped = True
                break
            if progress is not None:
                progress(tally.schedules)
            if progress_total is not None and tally.schedules % 64 == 0:
                total = (count if mode != "exhaustive"
                         else projected_total(tally.schedules, fraction_done(search.path())))
                if total is not None:
                    progress_total(total)
            if saver is not None and saver.due():
                saver.save(snapshot(search.position()))
    first = None if tally.first_choices is None else simulate(
        scenario, guard, ReplayChoices(tally.first_choices), reduce=symmetric,
        store=_fresh(store_url))
    exhaustive = mode == "exhaustive" and not stopped
    counterexample = None
    if first is not None:
        minimal = (shrink(scenario, guard, first, store_url=store_url) if shrink_counterexample
                   else first)
        counterexample = Counterexample(
            minimal.schedule, [v.to_json() for v in minimal.violations], minimal.digest,
            faults_in(minimal), len(minimal.events), minimal,
        )
    if saver is not None:
        saver.finish()
    return Exploration(
        fm=scenario.id, guard=guard, mode=mode, schedules=tally.schedules,
        distinct=len(tally.digests), violating=tally.violating, exhaustive=exhaustive,
        bounds=_bounds(scenario), reached=tally.reached, reduction=reduction,
        elapsed_s=previous_s + time.perf_counter() - started,  # real-time: measurement
        counterexample=counterexample, seed=seed if mode != "exhaustive" else None,
        violating_digests=tally.violating_digests, first_violation_s=first_violation_s,
        stopped_at_first=stop_at_first and first is not None and stopped,
        invariants_violated=sorted(tally.invariants), sleep_blocked=tally.blocked,
        shortest_violation=tally.shortest, final_states=tally.final_states,
        job_histories=tally.job_histories, coverage=coverage.as_table(tally.coverage, scenario),
        never_struck=coverage.never_struck(tally.coverage, scenario),
        sometimes=dict(tally.sometimes),
        pct=None if shape is None else pct.report(shape, depth, tally.schedules),
        resumed=state is not None,
    )


class _Sample:
    """Seeded sampled schedules, run ``first``..``count - 1`` (a resumed exploration starts
    past the ones its checkpoint counted): random choices, or PCT's."""

    def __init__(self, run: Callable[[ChoiceSource], RunResult], mode: str, seed: int, count: int,
                 first: int, depth: int, shape: pct.Shape | None) -> None:
        self.run, self.mode, self.seed, self.count = run, mode, seed, count
        self.depth, self.shape = depth, shape
        self.next = first

    def source(self, i: int) -> ChoiceSource:
        run_seed = self.seed * 1_000_003 + i
        if self.mode == "random":
            return RandomChoices(run_seed)
        assert self.shape is not None
        return PCTChoices(run_seed, depth=self.depth, steps=self.shape.steps,
                          fault_decisions=self.shape.fault_decisions,
                          max_faults=self.shape.max_faults)

    def __iter__(self) -> Any:
        while self.next < self.count:  # bounded: count runs
            result = self.run(self.source(self.next))
            self.next += 1
            yield result

    def position(self) -> dict[str, Any]:
        return {"search": "runs", "next": self.next}


#: An exhaustive exploration whose tree is estimated past this many schedules is refused
#: before it runs. The estimate is of the tree before sleep sets; sleep sets cut the
#: catalogue's trees by up to some 60 times, so with them the refusal waits for an
#: estimate this many times larger (they may still not be enough: ``limit`` stops it).
REFUSE_PAST_SCHEDULES = MAX_EXHAUSTIVE_SCHEDULES
SLEEP_SET_ALLOWANCE = 100
#: Past this estimated duration, ``explore`` warns before it starts.
WARN_PAST_S = 600.0


def affordable(scenario: Scenario, guard: bool, reduction: str = "full") -> Any:
    """Estimate the tree an exhaustive exploration of ``scenario`` would walk (Knuth's
    estimator, :mod:`failfirst.proofs.estimate`) and apply the rule: BoundError, with
    the estimate, when it holds more than ``REFUSE_PAST_SCHEDULES`` schedules (times
    ``SLEEP_SET_ALLOWANCE`` with sleep sets, whose tree the estimate over-counts).
    Returns the estimate otherwise."""
    from failfirst.proofs.estimate import estimate_tree
    from failfirst.store import Store

    reduction = reduction_name(reduction)
    store = Store.memory(SimClock())
    estimate = estimate_tree(lambda source: simulate(scenario, guard, source,
                                                     reduce=reduction != "none", store=store))
    allowed = REFUSE_PAST_SCHEDULES * (SLEEP_SET_ALLOWANCE if reduction == "full" else 1)
    if estimate.schedules > allowed:
        before = " before sleep sets" if reduction == "full" else ""
        raise BoundError(
            f"{scenario.id} at {scenario.faults.max_faults} faults: about {estimate.schedules:.2g} "
            f"schedules{before} (estimated from {estimate.probes} random paths), more than the "
            f"{allowed:,} an exhaustive exploration may take; lower --max-faults, keep "
            f"--reduction full, or sample with --mode pct")
    return estimate


def explore_cli(scenario: Scenario, guard: bool, mode: str, runs: int | None, seed: int,
                max_faults: int | None, stop_at_first: bool, workers: int,
                progress: bool, reduction: str = "full", store_url: str | None = None,
                checkpoint: str | None = None, depth: int = pct.DEFAULT_DEPTH,
                warn: Callable[[str], None] | None = None) -> Exploration:
    """The ``failfirst explore`` command: the tree estimated first (refused past the rule
    of :func:`affordable`, a warning past ``WARN_PAST_S``), then a progress bar on a
    terminal whose total is the estimate, quiet otherwise."""
    scenario = with_bounds(scenario, max_faults)
    if checkpoint is not None:
        try:
            checkpoints.check_path(checkpoint)
        except checkpoints.CheckpointError as exc:
            raise BoundError(str(exc)) from None
    total: int | None = runs or DEFAULT_RUNS if mode != "exhaustive" else None
    if mode == "exhaustive":
        estimate = affordable(scenario, guard, reduction)
        total = max(1, round(estimate.schedules))
        seconds = estimate.seconds / max(1, workers)
        upper_s = estimate.upper * estimate.seconds_per_run / max(1, workers)
        allowed = REFUSE_PAST_SCHEDULES * (SLEEP_SET_ALLOWANCE if reduction == "full" else 1)
        if warn is not None and (upper_s > WARN_PAST_S or estimate.upper > allowed):
            warn(f"about {estimate.schedules:.2g} schedules"
                 f"{' before sleep sets' if reduction == 'full' else ''} (perhaps "
                 f"{estimate.upper:.2g}: the estimate is rough), some {seconds / 60:.0f} to "
                 f"{upper_s / 60:.0f} minutes on this machine"
                 + ("" if checkpoint else "; --checkpoint FILE lets it stop and resume"))
    kwargs = dict(stop_at_first=stop_at_first, workers=workers, reduction=reduction,
                  store_url=store_url, checkpoint=checkpoint, depth=depth)
    if not progress:
        found = explore(scenario, guard, mode, runs, seed, **kwargs)  # type: ignore[arg-type]
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("(estimated)" if mode == "exhaustive" else ""),
                      TimeElapsedColumn(), transient=True) as bar:
            task = bar.add_task(f"{scenario.id} {mode}", total=total)
            found = explore(scenario, guard, mode, runs, seed, **kwargs,  # type: ignore[arg-type]
                            progress=lambda n: bar.update(task, completed=n) if n % 64 == 0 else None,
                            progress_total=lambda n: bar.update(task, total=n))
    cx = found.counterexample
    if cx is not None and cx.result is not None and store_url is None:
        from failfirst.proofs.minimize import shrink_scenario

        cx.reduced = shrink_scenario(scenario, guard, cx.result)
    return found


def describe(x: Exploration) -> str:
    lines = [
        f"{x.fm} guard {'on' if x.guard else 'off'}, {x.mode} exploration: {plural(x.schedules, 'schedule')} "
        f"({x.distinct} distinct histories), {x.violating} violating, reached {x.reached}, "
        f"{'exhaustive' if x.exhaustive else 'not exhaustive'} in {x.elapsed_s:.2f} s"
        + (" (stopped at the first violation; --all counts them all)" if x.stopped_at_first else "")
        + (" (resumed from its checkpoint)" if x.resumed else ""),
        f"bounds: {bounds_in_words(x.bounds)}; reduction: {_REDUCTION_TEXT.get(x.reduction, x.reduction)}"
        + (f", {x.sleep_blocked} equivalent paths cut off" if x.sleep_blocked else ""),
        "fault coverage: " + "; ".join(
            f"{point} " + ", ".join(f"{kind} {n}" for kind, n in kinds.items())
            for point, kinds in x.coverage.items()),
    ]
    if x.never_struck and x.exhaustive:  # a sample or a stop at the first says nothing here
        lines.append("warning: never struck at these bounds: "
                     + ", ".join(f"{point}/{kind}" for point, kind in x.never_struck))
    if x.sometimes:
        lines.append("sometimes: " + "; ".join(f"{name} {n}" for name, n in x.sometimes.items()))
        missed = [name for name, n in x.sometimes.items() if n == 0]
        if missed and x.exhaustive:
            lines.append("warning: never reached at these bounds: " + ", ".join(missed))
    if x.pct is not None:
        lines.append(pct.describe(x.pct))
    if not x.stopped_at_first and x.invariants_violated:
        lines.append(f"invariants violated: {', '.join(x.invariants_violated)}")
    if x.counterexample:
        c = x.counterexample
        lines.append(f"minimal counterexample ({plural(c.faults, 'fault')}, {plural(c.events, 'event')}): "
                     f"{c.schedule}")
        lines.extend(f"  {v['invariant']} job {v['job']}: {v['detail']}" for v in c.violations)
        lines.append(f"replay: failfirst replay {x.fm} --guard {'on' if x.guard else 'off'} "
                     f"--schedule {c.schedule}")
        if c.reduced is not None and (c.reduced.jobs is not None or c.reduced.workers is not None):
            r = c.reduced
            lines.append(f"the same violation with only the jobs and workers it needs "
                         f"({len(r.result.events)} events): {r.replay_command()}")
    return "\n".join(lines)


__all__ = ["Exploration", "Counterexample", "BoundError", "MODES", "explore", "shrink",
           "depth_first", "every_schedule", "find_run", "canonical_digest", "final_state", "job_histories",
           "sleep_set_search", "affordable", "REDUCTIONS", "MAX_EXHAUSTIVE_SCHEDULES", "MAX_SHRINK_RUNS"]
