"""Batched claims and commits: the same queue operations, several jobs per transaction.

A real SQLite file pays for every transaction (the write lock, the WAL frames of
the commit), so a worker that claims ``batch`` jobs in one ``BEGIN IMMEDIATE``
and commits their effects and completions in one transaction does the same work
for a fraction of the cost. Nothing about the guarantees changes:

- every state change still goes through :func:`failfirst.transitions.apply`, one
  compare-and-set and one logged event per job, so the history is the same
  history the checkers judge, job by job;
- each job gets its own lease and fencing token; a batch commit writes each
  job's effect keyed by (job, part) and completes it fenced by its token, all in
  one transaction, so a crash commits the whole batch or none of it;
- if any lease of the batch went stale (it expired and was taken back), the
  batch transaction is rolled back and the jobs are committed one by one with
  :meth:`failfirst.processor.JobQueue.commit`, which refuses the stale ones and records why.

With ``batch == 1`` :func:`batch_worker_loop` is :func:`failfirst.worker.worker_loop`.
"""

from __future__ import annotations

from typing import Any

from failfirst import transitions
from failfirst.processor import HandlerContext, JobQueue, Lease, LostAck
from failfirst.store import Clock
from failfirst.worker import MAX_LOOP_ITERATIONS, ActorLoop, Idle, Point, WorkerConfig, worker_loop

#: Upper bound on jobs per batch: a transaction must stay short (the others wait for it).
MAX_BATCH = 1000

Effects = list[tuple[str, int]]


class BatchQueue(JobQueue):
    """A :class:`failfirst.processor.JobQueue` that can also claim and commit several jobs per transaction."""

    def enqueue_batch(
        self, type_: str, payloads: list[dict[str, Any]], *, actor: str = "client",
    ) -> list[int]:
        """Add one job per payload (no idempotency key, no delay), ``MAX_BATCH`` jobs per
        transaction, each validated as :meth:`failfirst.processor.JobQueue.enqueue`
        validates it; returns their ids."""
        checked = [self._validate(type_, payload, None, 0.0, None) for payload in payloads]
        max_attempts = self.config.default_max_attempts
        ids: list[int] = []
        for start in range(0, len(checked), MAX_BATCH):
            with self.store.transaction():
                run_at_s = self.store.clock.now_s()
                for payload_json in checked[start:start + MAX_BATCH]:
                    job_id = self.store.insert_job(type_, payload_json, None, run_at_s, max_attempts)
                    self.store.append_event(
                        actor=actor, job=job_id, kind="enqueue",
                        to_state=transitions.INITIAL_STATE, token=0, type=type_,
                        max_attempts=max_attempts,
                    )
                    ids.append(job_id)
        return ids

    def claim_batch(self, worker: str, limit: int) -> list[Lease]:
        """Lease up to ``limit`` claimable jobs to ``worker`` in one transaction, each
        with its own new fencing token: what ``limit`` calls of
        :meth:`failfirst.processor.JobQueue.claim` would do."""
        assert 1 <= limit <= MAX_BATCH
        if not self.store.has_claimable(self.store.clock.now_s()):
            return []  # look before taking the write lock
        with self.store.transaction():
            now_s = self.store.clock.now_s()
            jobs = self.store.next_claimable_jobs(now_s, limit)
            if not jobs:
                return []
            lease_s = self.config.lease_s if self.guard.lease_expiry else float("inf")
            count = self.guard.count_attempts_at_claim
            attempts = [job.attempts + 1 if count else job.attempts for job in jobs]
            tokens = transitions.apply_many(
                self.store, "claim",
                [(job.id, job.token, (n, worker, now_s + lease_s), {"attempt": n})
                 for job, n in zip(jobs, attempts, strict=True)],
                actor=worker, columns=("attempts", "lease_owner", "lease_expires_s"),
            )
            self.store.insert_attempts(
                [(job.id, token, worker, now_s) for job, token in zip(jobs, tokens, strict=True)])
        return [Lease(job.id, token, job.type, job.payload, n, job.max_attempts)
                for job, token, n in zip(jobs, tokens, attempts, strict=True)]

    def commit_batch(self, done: list[tuple[Lease, Effects]], worker: str) -> int:
        """The idempotent commit boundary for several jobs at once: each job's effect
        (keyed by job and part) and its fenced completion, all in one transaction.
        Returns how many jobs were committed."""
        assert self.commit_boundary and self.guard.fencing, "a batch commit is fenced and keyed"
        if not done:
            return 0
        try:
            with self.store.transaction():
                rows = [(lease.job_id, part, lease.token, amount, len(effects))
                        for lease, effects in done for part, amount in effects]
                if self.store.insert_effects_once(rows) != len(rows):
                    raise _AlreadyApplied  # some part exists: its job is not ours to commit
                tx = self.store.tx_count
                self.store.append_events([
                    (worker, job_id, "effect", None, None, token,
                     {"part": part, "amount": amount, "parts": parts, "tx": tx})
                    for job_id, part, token, amount, parts in rows
                ])
                transitions.apply_many(
                    self.store, "complete",
                    [(lease.job_id, lease.token, (None, None), {}) for lease, _ in done],
                    actor=worker, columns=("lease_owner", "lease_expires_s"),
                )
                self.store.end_attempts([(lease.job_id, lease.token) for lease, _ in done],
                                        "succeeded")
                self.hooks.in_transaction(worker, "commit")
        except (transitions.StaleToken, transitions.IllegalTransition, _AlreadyApplied):
            # Some lease is no longer ours and the batch wrote nothing: commit job by
            # job, so the live leases commit and the stale ones are refused and logged.
            return sum(self.commit(lease, effects, worker) for lease, effects in done)
        return len(done)


class _AlreadyApplied(Exception):
    """A batch commit found an effect part already written: roll back, go job by job."""


def batch_worker_loop(
    name: str, queue: BatchQueue, config: WorkerConfig, batch: int, seed: str = "",
    *, clock: Clock | None = None,
) -> ActorLoop:
    """:func:`failfirst.worker.worker_loop`, claiming and committing ``batch`` jobs at a time."""
    assert 1 <= batch <= MAX_BATCH
    if batch == 1:
        yield from worker_loop(name, queue, config, seed, clock=clock)
        return
    done = 0
    for _ in range(MAX_LOOP_ITERATIONS):
        if config.max_jobs is not None and done >= config.max_jobs:
            return
        limit = batch if config.max_jobs is None else min(batch, config.max_jobs - done)
        leases = queue.claim_batch(name, limit)
        if not leases:
            yield Idle(queue.store.next_run_at_s)
            continue
        yield from _work_batch(name, queue, leases, config, seed)
        done += len(leases)


def _work_batch(
    name: str, queue: BatchQueue, leases: list[Lease], config: WorkerConfig, seed: str,
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
