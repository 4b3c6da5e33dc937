"""Your own task under the judge: a Celery, Dramatiq or RQ task (or a plain function)
runs unchanged inside failfirst's deterministic simulator, and the same checkers judge
what it did.

Design
------
What a reader needs, and what the nearest tools leave out, is the window between a
task's effect and its acknowledgement: a worker that dies after the payment API
charged and before the task's commit or ack. So every call the task makes through the
clients it already uses is a fault point:

- **HTTP** through httpx, intercepted at httpx's transport by respx (no change to the
  task, whether it builds its own client or shares one): the request goes to a
  simulated :class:`~failfirst.tasks.http.Service` that applies effects, honours
  idempotency keys, and can be scripted per test (success, error, timeout after the
  effect applied, a duplicate delivery). See :mod:`failfirst.tasks.http`.
- **SQL** through the seam the task connects by (``shop.db:connect``), pointed at a
  fresh SQLite database per run, whose commits are fault points and events. See
  :mod:`failfirst.tasks.sql`.

The task runs under failfirst's own worker loop, leases, reaper, redelivery and fault
schedule (:mod:`failfirst.tasks.world` builds the scenario), with the task's own retry
settings (:mod:`failfirst.tasks.frameworks`: Celery ``max_retries``, ``autoretry_for``,
``retry_backoff``, ``acks_late``; Dramatiq ``max_retries`` and backoff; RQ ``Retry``).

A crash is a process dying, not an exception: each worker process is a greenlet that
switches to the scheduler at every intercepted call, and a crashed one is never
resumed, so nothing after the fault point runs, not even a ``finally``
(:mod:`failfirst.tasks.greenlets`). Time is simulated: backoffs, leases and timeouts
pass without waiting.

Each call is an event in the run's history (``request``, ``call``, ``applied``,
``sql_commit``, ``task_error``, ...), so the existing checkers judge it (INV_001 to
INV_008); the one check they cannot express, an external effect applied at most once,
is :func:`failfirst.tasks.checks.check_external_once` (INV_001).

:func:`~failfirst.tasks.prove.prove` explores every schedule within the bounds with
failfirst's explorer and shrinker and fails with the minimal counterexample as a
timeline and a replay command;
:mod:`failfirst.tasks.plugin` is the pytest plugin (entry point ``failfirst``), off until
a test calls ``prove`` or uses the ``failfirst_prove`` fixture.

What a task must do to be testable: send HTTP through httpx; reach its database through
one function of its app (the seam a proof names); take JSON arguments. Nothing else.

Layer: above :mod:`failfirst.proofs` (it runs the explorer); imports the store, the
processor, the simulation and the proofs.
"""

from typing import Any

_EXPORTS = {
    "prove": "prove", "call": "prove", "Falsified": "prove", "VacuousProof": "prove", "TaskProof": "prove",
    "Service": "http", "SQLite": "sql", "task_spec": "frameworks",
}


#: The libraries of the ``tasks`` extra.
EXTRA = ("greenlet", "httpx", "respx")


def require_extra() -> None:
    """Raise one line naming the extra to install when a library of it is missing: the
    entry points (``failfirst.prove``, the ``failfirst_prove`` fixture, the names of this
    package) call it first, and the modules that import a library of the extra call it
    when that import fails, so no path ends in a bare ``No module named 'greenlet'``."""
    import importlib.util

    missing = [name for name in EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"failfirst.tasks needs {', '.join(missing)}: pip install 'failfirst[tasks]'")


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'failfirst.tasks' has no attribute {name!r}")
    import importlib

    require_extra()
    return getattr(importlib.import_module(f"failfirst.tasks.{_EXPORTS[name]}"), name)
