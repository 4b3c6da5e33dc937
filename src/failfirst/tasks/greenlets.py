"""Worker processes as greenlets: a reader's task runs unchanged, and every call it makes
through an intercepted client is a step boundary the scheduler can crash, pause or
interleave at.

The scheduler (:class:`failfirst.sim.scheduler.Simulation`) steps each actor's loop, a
generator. :func:`worker_host` is that loop for a worker process: it runs failfirst's own
worker loop inside a greenlet and hands the scheduler every step, both the worker loop's
own (claim, heartbeat, commit) and the ones the task's intercepted calls announce with
:func:`step` (before an HTTP request, after its reply, around a SQL commit). Ordinary
synchronous code thus interleaves deterministically without threads.

A crash is a process dying, not an exception. The scheduler crashes a worker by closing
its loop: the greenlet is never switched into again, so no line after the fault point
runs, not a ``finally``, not a context manager's ``__exit__``. One more thing must not
happen: greenlet raises ``GreenletExit`` into a suspended greenlet when it is garbage
collected, which would run exactly that cleanup, late. So a crashed greenlet is kept in
``_CRASHED`` for the life of the process and never collected (at interpreter exit
greenlet frees it without running it). It would not be collected anyway: parked in
:func:`step`, its own frame refers to it, and greenlet's collector never breaks a cycle
through a suspended greenlet; the list makes that explicit instead of incidental. The
memory a crashed attempt holds (its frames and what they reference: about 70 kB for the
shop's ``charge_order_fixed``, whose every attempt builds its own ``httpx.Client``) is
the price; :data:`MAX_CRASHED` bounds it. The workers a run leaves suspended when it ends
are let go of by :func:`end_run` (buried if inside their task, else ended). The
task's open SQL transactions roll back at the crash, as a database server rolls back the
transaction of a connection whose process died (:func:`on_crash` callbacks).

The global ``random`` module is per worker process too: each greenlet has its own
state, swapped in and out at every switch, so a task (or its framework: Celery's retry
jitter) that draws from it draws the same numbers on every replay.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from failfirst.processor.worker import Point, Step
from failfirst.tasks import require_extra

try:
    import greenlet
except ModuleNotFoundError:
    require_extra()  # one line naming failfirst[tasks]
    raise

#: Crashed worker processes: never resumed, never collected (see the module docstring).
_CRASHED: list[greenlet.greenlet] = []
#: The worker processes of the run in progress and their step generators (see :func:`end_run`).
_RUN: list[tuple[greenlet.greenlet, Iterator[Step]]] = []
#: A process keeps at most this many crashed workers; past it the run stops with a
#: BoundError-like message instead of growing without bound.
MAX_CRASHED = 200_000
#: Steps one worker process can take: the worker loop bounds itself far below this.
MAX_STEPS = 10_000_000


class TooManyCrashes(RuntimeError):
    """More crashed workers than a process keeps: lower the bounds, or explore in a child."""


def crashed_count() -> int:
    """Crashed worker processes this process holds (never resumed, never collected)."""
    return len(_CRASHED)


def worker_host(make_loop: Callable[[], Iterator[Step]], seed: str = "") -> Iterator[Step]:
    """Run the worker loop ``make_loop()`` in a greenlet; yield its steps and the steps
    its task announces. Closing the returned generator (the scheduler's crash) buries the
    greenlet without resuming it."""
    main = greenlet.getcurrent()

    def run() -> None:
        for worker_step in make_loop():  # bounded: the worker loop bounds itself
            main.switch(worker_step)

    process = greenlet.greenlet(run)
    process.failfirst_crash_callbacks = []  # type: ignore[attr-defined]
    steps = _steps(process, random.Random(f"{seed}:random").getstate())
    _RUN.append((process, steps))
    return steps


def _steps(process: greenlet.greenlet, inner_random: Any) -> Iterator[Step]:
    try:
        for _ in range(MAX_STEPS):
            outer_random = random.getstate()
            random.setstate(inner_random)
            try:
                out = process.switch()  # an exception in the process (WorkerCrash) propagates
            finally:
                inner_random = random.getstate()
                random.setstate(outer_random)
            if process.dead:
                return
            yield out
        raise AssertionError(f"a worker took more than {MAX_STEPS} steps")
    except GeneratorExit:
        if not process.dead and not getattr(process, "failfirst_buried", False):
            _bury(process)
        raise


def _bury(process: greenlet.greenlet) -> None:
    for callback in process.failfirst_crash_callbacks:  # type: ignore[attr-defined]
        callback()  # failfirst's own code (say, a rollback), never the task's
    process.failfirst_crash_callbacks = []  # type: ignore[attr-defined]
    process.failfirst_buried = True  # type: ignore[attr-defined]
    if len(_CRASHED) >= MAX_CRASHED:
        raise TooManyCrashes(f"more than {MAX_CRASHED} crashed worker processes in one process: "
                             "lower the bounds (max_faults, runs)")
    _CRASHED.append(process)


def end_run() -> None:
    """The run is over: let go of its worker processes. One suspended inside the task
    (paused there when the run ended) is buried like a crashed one, never resumed; one
    between tasks (idle, in failfirst's worker loop) is ended, which unwinds only
    failfirst's own frames. Without this, every run's workers would stay in memory: a
    suspended greenlet in a reference cycle is never collected."""
    for process, steps in _RUN:
        if not process.dead and getattr(process, "failfirst_attempt", None) is None:
            process.throw(greenlet.GreenletExit)
        steps.close()  # buries a process still inside its task
    _RUN.clear()


def inside_worker() -> bool:
    """Is the caller running inside a simulated worker process?"""
    return hasattr(greenlet.getcurrent(), "failfirst_crash_callbacks")


def step(point: Point) -> Any:
    """Hand the scheduler a step boundary from inside the task (a fault point); returns
    when the scheduler resumes this worker. A crash there never returns."""
    current = greenlet.getcurrent()
    assert inside_worker(), "a task's step boundary is announced inside a worker process"
    return current.parent.switch(point)


def on_crash(callback: Callable[[], None]) -> None:
    """Call ``callback`` (failfirst's code: say, roll back an open SQL transaction) if
    the current worker process crashes."""
    greenlet.getcurrent().failfirst_crash_callbacks.append(callback)  # type: ignore[attr-defined]


def set_attempt(attempt: Any) -> None:
    """Record what the current worker process is running (the interceptors read it)."""
    greenlet.getcurrent().failfirst_attempt = attempt  # type: ignore[attr-defined]


def current_attempt() -> Any:
    """What the current worker process is running, or None outside any attempt."""
    return getattr(greenlet.getcurrent(), "failfirst_attempt", None)


def seed_random(seed: str) -> None:
    """Seed the current worker process's ``random`` (an attempt's own draws)."""
    assert inside_worker()
    random.seed(seed)
