"""``prove``: explore every fault schedule of a reader's task within stated bounds, and
either return the proof's counts or fail with the minimal counterexample.

It feels like Hypothesis's ``@given``: the test names the task, the calls to make of
it, the services and database it reaches, the invariants it asserts and the bounds; a
pass carries the counts (schedules explored, how many reached a fault of the task's
calls, schedules per second); a failure raises :class:`Falsified`, an AssertionError
whose message is the shrunk counterexample as a timeline, its schedule string and the
one command that replays it. The exploration is failfirst's own
(:func:`failfirst.proofs.explorer.explore`, its sleep sets and its shrinker):
exhaustive up to ``exhaustive_up_to`` schedules, beyond that ``runs`` seeded random
schedules (the proof says which). Everything is deterministic: the same test fails the
same way on every machine, in any process.

Before it runs anything, a proof announces what it will run (the task, the bounds, the
seed: together they fix every schedule) on the ``announce`` callback, and the pytest
plugin writes it to a file first, so a crash of the test process never loses the
reproduction.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from failfirst.proofs.explorer import BoundError, Exploration, explore
from failfirst.proofs.run import RunResult, replay
from failfirst.proofs.words import plural
from failfirst.sim.scenario import Scenario
from failfirst.tasks import greenlets, http, session, sql, timeline, world
from failfirst.tasks.frameworks import task_spec

#: Bounds a proof refuses (an exhaustive exploration past them would never end).
MAX_FAULTS = 4
MAX_WORKERS = 4


class Falsified(AssertionError):
    """A schedule within the bounds violates an invariant: the message is the report."""

    def __init__(self, report: str, schedule: str, result: RunResult | None = None) -> None:
        super().__init__(report)
        self.schedule = schedule
        self.result = result


class VacuousProof(AssertionError):
    """No explored schedule struck the task's calls with a fault: the proof proves nothing."""


@dataclass
class TaskProof:
    """What a passing proof covered."""

    name: str
    mode: str
    exhaustive: bool
    schedules: int
    distinct: int
    reached: int
    elapsed_s: float
    bounds: dict[str, Any]
    invariants: tuple[str, ...]
    seed: int | None = None
    first_counterexample_s: float | None = None
    counterexample: str | None = None
    exploration: Exploration | None = field(default=None, repr=False)
    #: A replay's run (its history: ``result.events``).
    result: RunResult | None = field(default=None, repr=False)

    @property
    def schedules_per_s(self) -> float:
        return self.schedules / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    def summary(self) -> str:
        how = ("every schedule" if self.exhaustive
               else f"{plural(self.schedules, 'seeded random schedule')} (seed {self.seed})")
        return (f"{self.name}: {', '.join(self.invariants)} hold over {how} within the bounds "
                f"({self.bounds_text()}): {plural(self.schedules, 'schedule')}, "
                f"{self.reached} with a fault on the "
                f"task's calls, {self.schedules_per_s:.0f} schedules/s")

    def bounds_text(self) -> str:
        b = self.bounds
        return (f"{plural(b['jobs'], 'job')}, {plural(b['workers'], 'worker')}, "
                f"at most {plural(b['max_faults'], 'fault')}")


def call(task: Any, *args: Any, retry: Any = None, **kwargs: Any) -> world.Call:
    """One call of ``task`` (a Celery task, a Dramatiq actor, an RQ or plain function);
    ``retry`` is RQ's ``Retry`` for a function enqueued with one."""
    return world.Call(task_spec(task, retry=retry), tuple(args), dict(kwargs))


@contextlib.contextmanager
def intercepting(database: sql.SQLite | None) -> Iterator[None]:
    """While a proof runs: httpx requests go to the simulated services (respx), and the
    database seam hands out the run's connections."""
    import respx

    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router, http.one_tls_context(), \
            _ending_runs():
        router.route().mock(side_effect=http.dispatch)
        if database is None:
            yield
            return
        module_name, _, attribute = database.connect.partition(":")
        module = importlib.import_module(module_name)
        original = getattr(module, attribute)

        def connect(*args: Any, **kwargs: Any) -> sql.Connection:
            attempt = greenlets.current_attempt()
            if attempt is None or attempt.world.database is None:
                raise http.SetupError(f"{database.connect}() was called outside a simulated task")
            return attempt.world.database.connect(attempt)

        setattr(module, attribute, connect)
        try:
            yield
        finally:
            setattr(module, attribute, original)


@contextlib.contextmanager
def _ending_runs() -> Iterator[None]:
    try:
        yield
    finally:
        world.World.end()


def prove(
    task: Any = None, *args: Any, calls: list[world.Call] | None = None,
    services: tuple[http.Service, ...] | list[http.Service] = (), database: sql.SQLite | None = None,
    invariants: tuple[str, ...] | list[str] = ("INV_001", "INV_004"), max_faults: int = 2,
    workers: int = 2, exhaustive_up_to: int = 20_000, runs: int = 2_000, seed: int = 0,
    lease_s: float = 30.0, faults: dict[str, tuple[str, ...]] | None = None, retry: Any = None,
    replay_schedule: str | None = None, announce: Callable[[str], None] | None = None,
    name: str | None = None, max_calls_per_job: int | None = None, **kwargs: Any,
) -> TaskProof:
    """Prove ``invariants`` of ``task(*args, **kwargs)`` (or of ``calls``) under every fault
    schedule within the bounds; raise :class:`Falsified` with the minimal counterexample.

    ``services`` and ``database`` are what the task reaches; ``max_faults`` and ``workers``
    bound the exploration, exhaustive up to ``exhaustive_up_to`` schedules, else ``runs``
    random ones from ``seed``; ``lease_s`` is the broker's visibility timeout; ``faults``
    replaces the fault points and kinds (:data:`failfirst.tasks.world.TASK_FAULTS`);
    ``max_calls_per_job`` bounds the HTTP requests a job may make (INV_005); ``retry`` is
    RQ's ``Retry``. ``replay_schedule`` re-runs one schedule instead (what the replay
    command does)."""
    if calls is None:
        if task is None:
            raise TypeError("prove: name a task, or give calls=[failfirst.tasks.call(task, ...), ...]")
        calls = [call(task, *args, retry=retry, **kwargs)]
    elif task is not None:
        raise TypeError("prove: give a task and its arguments, or calls=, not both")
    if not 0 <= max_faults <= MAX_FAULTS:
        raise BoundError(f"max_faults {max_faults}: between 0 and {MAX_FAULTS}")
    if not 1 <= workers <= MAX_WORKERS:
        raise BoundError(f"workers {workers}: between 1 and {MAX_WORKERS}")
    label = name or " + ".join(c.describe() for c in calls)
    scenario = world.scenario(list(calls), services=tuple(services), database=database, workers=workers,
                              max_faults=max_faults, lease_s=lease_s, invariants=tuple(invariants),
                              faults=faults, name=label, max_calls_per_job=max_calls_per_job)
    replay_schedule = replay_schedule or session.replay_schedule

    def say(line: str) -> None:
        session.announce(line)  # on disk before anything runs
        if announce is not None:
            announce(line)

    with intercepting(database):
        if replay_schedule is not None:
            say(f"failfirst: replaying {replay_schedule} of {label}")
            return _replayed(scenario, replay_schedule, calls)
        say(f"failfirst: proving {', '.join(invariants)} of {label}: {scenario.description}; "
            f"{plural(workers, 'worker')}, at most {plural(max_faults, 'fault')}, "
            f"exhaustive up to {exhaustive_up_to} schedules, "
            f"else {runs} random (seed {seed})")
        try:
            found = explore(scenario, guard=True, stop_at_first=True, limit=exhaustive_up_to)
        except BoundError:
            found = explore(scenario, guard=True, mode="random", runs=runs, seed=seed, stop_at_first=True)
    proof = TaskProof(label, found.mode, found.exhaustive,
                      found.schedules, found.distinct, found.reached, found.elapsed_s,
                      {**found.bounds, "workers": workers}, tuple(invariants),
                      found.seed, found.first_violation_s, exploration=found)
    if found.counterexample is not None:
        proof.counterexample = found.counterexample.schedule
    _keep(proof)
    if found.counterexample is not None:
        cx = found.counterexample
        session.record_counterexample(cx.schedule, cx.digest, cx.violations)
        raise Falsified(report(scenario, calls, cx.result, proof), cx.schedule, cx.result)
    if found.reached == 0:
        raise VacuousProof(f"{label}: no schedule struck the task's calls with a fault; the proof "
                           "proves nothing (does the task call a declared service or database?)")
    return proof


def _keep(proof: TaskProof) -> None:
    session.proofs.append({
        "name": proof.name, "test": session.current_test, "mode": proof.mode, "schedules": proof.schedules,
        "reached": proof.reached, "elapsed_s": proof.elapsed_s, "schedules_per_s": proof.schedules_per_s,
        "first_counterexample_s": proof.first_counterexample_s, "falsified": proof.counterexample,
    })


class ReplayDiffers(AssertionError):
    """A recorded counterexample replays to another history: the task or the test changed."""


def _replayed(scenario: Scenario, schedule: str, calls: list[world.Call]) -> TaskProof:
    started = time.perf_counter()  # real-time: a measurement
    result = replay(scenario, schedule, guard=True)
    elapsed_s = time.perf_counter() - started  # real-time: a measurement
    proof = TaskProof(scenario.id, "replay", False, 1, 1, int(result.reached), elapsed_s,
                      {"workers": scenario.workers, "jobs": len(scenario.jobs),
                       "max_faults": scenario.faults.max_faults, "max_steps": scenario.max_steps},
                      scenario.judged, counterexample=schedule if result.violations else None,
                      result=result)
    _keep(proof)
    recorded = session.recorded(schedule)
    if recorded is not None:
        got = [v.to_json() for v in result.violations]
        if recorded["digest"] != result.digest or recorded["violations"] != got:
            raise ReplayDiffers(
                f"{scenario.id}: schedule {schedule} was recorded with history {recorded['digest'][:12]} and "
                f"{plural(len(recorded['violations']), 'violation')}; it now replays to "
                f"{result.digest[:12]} with "
                f"{len(got)}: the task or the test changed since\n" + "\n".join(timeline.timeline(
                    result.events, {i + 1: c.describe() for i, c in enumerate(calls)})))
    if result.violations:
        raise Falsified(report(scenario, calls, result, proof), schedule, result)
    return proof


def report(scenario: Scenario, calls: list[world.Call], result: RunResult | None, proof: TaskProof) -> str:
    """The falsifying example, as Hypothesis prints one: what, where, and how to replay it."""
    assert result is not None
    names = {i + 1: c.describe() for i, c in enumerate(calls)}
    faults = sum(1 for e in result.events if e["kind"] in
                 ("crash", "pause", "lost_ack", "request_lost", "response_lost"))
    lines = [f"Falsified: {scenario.id}", ""]
    lines += [f"  {v.invariant} job {v.job}: {v.detail}" for v in result.violations]
    lines += ["", f"Minimal counterexample ({plural(faults, 'fault')}), schedule {result.schedule}:"]
    lines += timeline.timeline(result.events, names)
    found_in = (f"found after {plural(proof.schedules, 'schedule')} in {proof.elapsed_s:.2f} s"
                if proof.mode != "replay" else "replayed")
    lines += ["", f"{found_in}; replay it with:",
              f"  {replay_command(result.schedule)}"]
    return "\n".join(lines)


def replay_command(schedule: str) -> str:
    """The one-line command that replays ``schedule``: the test's own, under pytest."""
    if session.current_test is None:
        return f"failfirst.prove(..., replay_schedule={schedule!r})"
    return f"pytest '{session.current_test}' --failfirst-replay={schedule}"


__all__ = ["prove", "call", "Falsified", "VacuousProof", "ReplayDiffers", "TaskProof", "intercepting"]
