"""The worker loop (one, for simulation and real processes), the reaper and the relay.

Each loop is a generator: every ``yield`` is a step boundary (one store
transaction or one external call has just finished) and says what the actor
waits for next. The simulator interleaves actors at these boundaries and
injects faults there; a real process simply sleeps as asked.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

from failfirst.processor.queue import (
    BROKER_SERVICE,
    MAX_BATCH,
    Effects,
    HandlerContext,
    JobQueue,
    Lease,
    LostAck,
)
from failfirst.store import Clock


@dataclass(frozen=True)
class Point:
    """A step boundary named ``name``; the actor resumes after ``wait_s``."""

    name: str
    job: int | None = None
    wait_s: float = 0.0
    #: False once the worker has let go of the job (committed, failed, lost the lease):
    #: it then holds no lease and no memory of it.
    holding: bool = True


@dataclass(frozen=True)
class Idle:
    """Nothing to do: resume at ``wake()`` (simulated seconds), or when woken if None."""

    wake: Callable[[], float | None]


Step = Point | Idle
ActorLoop = Generator[Step, None, None]

#: A loop ends after this many iterations: every loop is bounded.
MAX_LOOP_ITERATIONS = 1_000_000


@dataclass(frozen=True)
class WorkerConfig:
    #: Simulated (or real) seconds a handler's work takes before its commit.
    work_s: float = 1.0
    #: Max jobs a worker takes before it exits (None: until the run ends).
    max_jobs: int | None = None
    #: Jobs claimed and committed per transaction (see :class:`failfirst.processor.queue.JobQueue`); real runs
    #: batch for throughput, and a scenario can set it so the explorer proves that path too.
    batch: int = 1


def worker_loop(
    name: str, queue: JobQueue, config: WorkerConfig, seed: str = "", *, clock: Clock | None = None,
) -> ActorLoop:
    """Claim, run the handler, commit; a handled failure becomes a retry or a dead letter.

    ``config.batch`` jobs are claimed and committed per transaction (one in simulation
    unless a scenario asks for more; real runs batch for throughput): the same loop, so
    a proof about the simulated worker is about the code real runs execute.

    ``clock`` is the worker's own clock (default: the store's): the time its handler
    sees. Its waits are in its own seconds; the simulator turns them into simulated
    seconds (see :class:`failfirst.store.clock.SkewedClock`). Leases are the store's business."""
    batch = config.batch
    assert 1 <= batch <= MAX_BATCH
    done = 0
    for _ in range(MAX_LOOP_ITERATIONS):
        if config.max_jobs is not None and done >= config.max_jobs:
            return
        if batch == 1:  # one job per transaction: the path every scenario explores
            lease = queue.claim(name)
            if lease is None:
                yield Idle(queue.store.next_run_at_s)
                continue
            yield from _work(name, queue, lease, config, seed, clock or queue.store.clock)
            done += 1
            continue
        limit = batch if config.max_jobs is None else min(batch, config.max_jobs - done)
        leases = queue.claim_batch(name, limit)
        if not leases:
            yield Idle(queue.store.next_run_at_s)
            continue
        yield from _work_batch(name, queue, leases, config, seed)
        done += len(leases)


def _work(
    name: str, queue: JobQueue, lease: Lease, config: WorkerConfig, seed: str, clock: Clock,
) -> ActorLoop:
    # The handler computes in the claim's step; WorkerCrash (a poison payload) ends the actor.
    ctx = HandlerContext(lease.job_id, lease.attempt, clock.now_s, seed,
                         services=queue.services, guard=queue.guard, token=lease.token,
                         worker=name, hooks=queue.hooks)
    try:
        effects = queue.run_handler(lease, ctx)
    except Exception as exc:  # a handler's failure is data, never a crashed loop
        yield Point("claimed", lease.job_id, ctx.elapsed_s)
        queue.fail(lease, f"{type(exc).__name__}: {exc}", name)
        yield Point("failed", lease.job_id, holding=False)
        return
    # The work takes time; a live worker heartbeats so that its lease outlives the work.
    remaining_s = config.work_s + ctx.elapsed_s
    beats = queue.guard.heartbeat and queue.guard.lease_expiry
    beat_s = queue.config.heartbeat_s
    point = "claimed"
    for _ in range(MAX_LOOP_ITERATIONS):
        if not beats or remaining_s <= beat_s:
            break
        yield Point(point, lease.job_id, beat_s)
        remaining_s -= beat_s
        point = "working"
        if not queue.heartbeat(lease, name):
            yield Point("lease_lost", lease.job_id, holding=False)
            return  # another worker owns the job now: drop the work
    yield Point(point, lease.job_id, remaining_s)
    # Deferred calls (writes to another system) happen now, after the work, each a step;
    # the lease may have expired meanwhile: a fenced resource judges the token they carry.
    for call in ctx.deferred:  # bounded: MAX_DEFERRED_CALLS
        try:
            call()
        except Exception as exc:  # a failed write is a handled failure, as in the handler
            queue.fail(lease, f"{type(exc).__name__}: {exc}", name)
            yield Point("failed", lease.job_id, holding=False)
            return
        yield Point("called", lease.job_id)
    messages = ctx.messages
    # The dual write (FM_009): without the outbox, the messages go to the broker a step
    # apart from the commit — before it, or after it as an on-commit hook would.
    direct = bool(messages) and not queue.guard.transactional_outbox
    if direct and queue.config.dual_write == "publish_first":
        queue.publish_now(lease, messages, name)
        yield Point("message_sent", lease.job_id)
    committed = True
    try:
        if queue.commit_boundary:
            committed = queue.commit(lease, effects, name, messages)
        else:
            batches = queue.effect_transactions(effects)
            for i, batch in enumerate(batches):
                last = i == len(batches) - 1
                # The outbox rows go with the transaction that completes the effect.
                queue.write_effects(lease, batch, name, parts=len(effects),
                                    messages=messages if last else ())
                yield Point("effect_written" if last else "part_written", lease.job_id)
            committed = queue.complete(lease, name)
    except LostAck:
        pass  # the worker believes it is done; the queue never heard
    if direct and queue.config.dual_write == "commit_first" and committed:
        yield Point("committed", lease.job_id, holding=False)
        queue.publish_now(lease, messages, name)
        yield Point("message_sent", lease.job_id, holding=False)
        return
    yield Point("committed", lease.job_id, holding=False)


def _work_batch(
    name: str, queue: JobQueue, leases: list[Lease], config: WorkerConfig, seed: str,
) -> ActorLoop:
    ready: list[tuple[Lease, Effects]] = []
    elapsed_s = 0.0
    for lease in leases:
        ctx = HandlerContext(lease.job_id, lease.attempt, queue.store.clock.now_s, seed,
                             services=queue.services, guard=queue.guard,
                         worker=name, hooks=queue.hooks)
        try:
            effects = queue.run_handler(lease, ctx)
        except Exception as exc:  # a handler's failure is data: that job retries or dies
            queue.fail(lease, f"{type(exc).__name__}: {exc}", name)
            yield Point("failed", lease.job_id)
            continue
        # Handlers that publish (FM_009) run unbatched: their outbox rows are not batched.
        assert not ctx.messages, "a handler that publishes messages runs with batch == 1"
        assert not ctx.deferred, "deferred calls run in the one-job loop (batch 1)"
        ready.append((lease, effects))
        elapsed_s += ctx.elapsed_s
    if not ready:
        return
    # The batch's work takes the sum of its jobs' times; heartbeats keep every lease alive.
    remaining_s = config.work_s * len(ready) + elapsed_s
    beats = queue.guard.heartbeat and queue.guard.lease_expiry
    beat_s = queue.config.heartbeat_s
    point = "claimed"
    for _ in range(MAX_LOOP_ITERATIONS):
        if not beats or remaining_s <= beat_s:
            break
        yield Point(point, None, beat_s)
        remaining_s -= beat_s
        point = "working"
        ready = [(lease, effects) for lease, effects in ready if queue.heartbeat(lease, name)]
        if not ready:
            yield Point("lease_lost", None, holding=False)
            return  # other workers own these jobs now: drop the work
    yield Point(point, None, remaining_s)
    try:
        if queue.commit_boundary:
            queue.commit_batch(ready, name)
        else:
            for lease, effects in ready:
                queue.write_effects(lease, effects, name)
            yield Point("effect_written", None)
            for lease, _ in ready:
                queue.complete(lease, name)
    except LostAck:
        pass  # the worker believes it is done; the queue never heard
    yield Point("committed", None, holding=False)


def relay_loop(name: str, queue: JobQueue) -> ActorLoop:
    """The transactional outbox's relay (FM_009): hand the oldest unmarked outbox row to
    the broker, then mark it — two steps, so a crash between them publishes the row
    again after the restart: at least once, never zero times. The consumer drops the
    repeat by its message id."""
    broker = queue.services[BROKER_SERVICE]
    for _ in range(MAX_LOOP_ITERATIONS):
        message = queue.next_outbox_message()
        if message is None:
            yield Idle(queue.store.next_outbox_s)
            continue
        broker.publish(name, message)
        yield Point("relayed", message["job"], holding=False)
        queue.mark_published(message, name)
        yield Point("marked", message["job"], holding=False)


def reaper_loop(name: str, queue: JobQueue) -> ActorLoop:
    """Expire leases whose deadline passed; sleep until the next deadline."""
    for _ in range(MAX_LOOP_ITERATIONS):
        if queue.reap(name) >= queue.config.reap_batch:
            yield Point("reaped", holding=False)  # a full batch: more may be waiting
        else:
            yield Idle(queue.store.next_lease_expiry_s)


def batch_worker_loop(name: str, queue: JobQueue, config: WorkerConfig, batch: int, seed: str = "",
                      *, clock: Clock | None = None) -> ActorLoop:
    """Deprecated alias (0.2): :func:`worker_loop` with ``config.batch = batch``."""
    from dataclasses import replace

    return worker_loop(name, queue, replace(config, batch=batch), seed, clock=clock)
