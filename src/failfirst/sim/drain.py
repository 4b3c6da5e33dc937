"""One worker, alone on a simulated clock, runs what is claimable until it idles: how a
recovery test finishes the work after a repair, redrive or restore."""

from __future__ import annotations

from failfirst.processor.queue import JobQueue
from failfirst.processor.worker import Idle, WorkerConfig, worker_loop
from failfirst.store.clock import SimClock


def drain(queue: JobQueue, clock: SimClock, worker: str = "w9", config: WorkerConfig | None = None,
          *, max_steps: int = 50, follow_wakes: bool = False) -> None:
    """Run ``worker`` until it idles. ``follow_wakes``: an idle worker with a wake-up
    scheduled (a backoff) is not done: the clock moves to it and the worker goes on,
    until it idles with nothing scheduled. Fails past ``max_steps`` steps."""
    loop = worker_loop(worker, queue, config or WorkerConfig())
    for _ in range(max_steps):
        step = next(loop)
        if isinstance(step, Idle):
            wake = step.wake() if follow_wakes else None
            if wake is None:
                return
            clock.advance_to(wake)
            continue
        clock.advance_to(clock.now_s() + step.wait_s)
    raise AssertionError(f"{worker} did not idle within {max_steps} steps")
