"""The job processor: the state machine, the queue's operations, the worker loop,
guardrails, backoff and recovery.

- :mod:`~failfirst.processor.transitions` owns every state change (one table, one
  function);
- :mod:`~failfirst.processor.queue` is :class:`~failfirst.processor.queue.JobQueue`:
  enqueue, claim, commit, fail, reap, redrive, one job or a batch per transaction;
- :mod:`~failfirst.processor.worker` is the one worker loop (a batch size is a
  parameter), the reaper and the outbox relay, shared by simulation and real runs;
- :mod:`~failfirst.processor.policies` names the guardrails,
  :mod:`~failfirst.processor.backoff` the backoff policies;
- :mod:`~failfirst.processor.recovery` restores the invariants after a crash.

Layer 1: imports :mod:`failfirst.store` only.
"""

from typing import Any

#: Names importable from the package itself (the module they live in loads on first use).
_EXPORTS = {
    "JobQueue": "queue", "HandlerContext": "queue", "Lease": "queue", "LostAck": "queue",
    "WorkerCrash": "queue", "QueueConfig": "queue", "Hooks": "queue",
    "Guardrails": "policies",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'failfirst.processor' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"failfirst.processor.{_EXPORTS[name]}"), name)
