"""One test for each planted bug that once survived the whole suite (issue #15): each
fails when its one-line change is made (see ``mutations.txt`` and ``make mutate``).
The checker bugs among them are caught in ``test_checkers.py``."""

from __future__ import annotations

import dataclasses

from failfirst.processor.queue import JobQueue, QueueConfig
from failfirst.processor.worker import WorkerConfig
from failfirst.proofs import checkers
from failfirst.proofs.run import simulate
from failfirst.sim.choices import RandomChoices
from failfirst.sim.services import RetryBudget
from failfirst.store import Store
from failfirst.store.clock import SimClock

CONFIG = QueueConfig(lease_s=2.0, heartbeat_s=0.5, default_max_attempts=2)


def deliver(payload, ctx):
    return [("delivered", 1)]


def _queue(cls=JobQueue) -> JobQueue:
    return cls(Store.memory(SimClock()), {"deliver": deliver}, config=CONFIG)


def _taken_over(queue: JobQueue, max_attempts: int | None = None):
    """w1's lease expires and the reaper hands the job to w2: (w1's lease, w2's lease)."""
    queue.enqueue("deliver", {}, max_attempts=max_attempts)
    old = queue.claim("w1")
    queue.store.clock.advance_to(queue.store.clock.now_s() + CONFIG.lease_s + 0.1)
    assert queue.reap() == 1
    new = queue.claim("w2")
    assert new is not None and new.token > old.token
    return old, new


def test_a_zombie_heartbeat_does_not_push_the_new_holders_lease():
    """Bug: fencing removed from the heartbeat's lease extension."""
    queue = _queue()
    old, new = _taken_over(queue)
    deadline = queue.store.job(new.job_id).lease_expires_s
    queue.store.clock.advance_to(queue.store.clock.now_s() + 1.0)
    assert queue.heartbeat(old, "w1") is False
    assert queue.store.job(new.job_id).lease_expires_s == deadline
    assert queue.heartbeat(new, "w2") is True


def test_a_zombie_handled_failure_cannot_retry_the_new_holders_job():
    """Bug: fencing removed from a lease holder's ``retry`` transition (attempts are left:
    the zombie's failure would send the job back to pending under the new holder)."""
    queue = _queue()
    old, new = _taken_over(queue, max_attempts=3)
    assert new.attempt < 3
    assert queue.fail(old, "late failure", "w1") == "refused"
    job = queue.store.job(new.job_id)
    assert (job.state, job.token, job.lease_owner) == ("leased", new.token, "w2")


def test_a_zombie_handled_failure_cannot_dead_letter_the_new_holders_job():
    """Bug: fencing removed from a lease holder's ``dead`` transition (attempts are spent:
    the zombie's failure would dead-letter the job under the new holder)."""
    queue = _queue()
    old, new = _taken_over(queue)
    assert new.attempt == CONFIG.default_max_attempts
    assert queue.fail(old, "late failure", "w1") == "refused"
    assert queue.store.job(new.job_id).state == "leased" and queue.store.dead_letters() == []
    assert queue.commit(new, [("delivered", 1)], "w2")


def test_the_completion_never_doubles_an_effect_already_present():
    """Bug: the completion writing its effect without its once-only guard. An effect
    written before the guardrail held (a direct write, as with the boundary off) must
    not be written again by the guarded completion."""
    queue = _queue()
    old, new = _taken_over(queue)
    queue.write_effects(old, [("delivered", 1)], "w1")  # the zombie's unguarded write landed
    assert queue.commit(new, [("delivered", 1)], "w2")
    assert len(queue.store.effects(new.job_id)) == 1


def test_a_dead_letter_records_the_reason_it_was_dead_lettered():
    """Bug: the dead letter recording the previous attempt's error (or nothing)."""
    store = Store.memory(SimClock())
    attempt = iter(["first failure", "second failure"])

    def flaky(payload, ctx):
        raise RuntimeError(next(attempt))

    queue = JobQueue(store, {"flaky": flaky}, config=CONFIG)
    job = queue.enqueue("flaky", {})
    for _ in range(2):
        lease = queue.claim("w1")
        try:
            queue.run_handler(lease, None)
        except RuntimeError as exc:
            state = queue.fail(lease, f"RuntimeError: {exc}", "w1")
        store.clock.advance_to(store.clock.now_s() + CONFIG.backoff_cap_s)
    assert state == "dead"
    assert store.dead_letters() == [(job, "RuntimeError: second failure", store.dead_letters()[0][2])]
    dead = [e for e in store.events() if e["kind"] == "dead"]
    assert [e["reason"] for e in dead] == ["RuntimeError: second failure"]
    assert store.job(job).last_error == "RuntimeError: second failure"


def test_an_expired_poison_job_is_dead_lettered_with_the_expiry_reason():
    queue = _queue()
    queue.enqueue("deliver", {}, max_attempts=1)
    queue.claim("w1")
    queue.store.clock.advance_to(CONFIG.lease_s + 1.0)
    assert queue.reap() == 1
    assert [r for _, r, _ in queue.store.dead_letters()] == ["lease expired after 1 of 1 attempts"]


def test_a_fractional_token_does_not_buy_a_retry():
    """Bug: the retry budget refusing at <= 0 instead of < 1 tokens."""
    budget = RetryBudget(ratio=0.5, capacity=1.0)
    assert budget.try_retry() and budget.tokens == 0.0
    budget.first_call()
    assert budget.tokens == 0.5
    assert budget.try_retry() is False and budget.tokens == 0.5
    budget.first_call()
    assert budget.try_retry() is True


def test_a_batch_claim_leases_until_now_plus_the_lease():
    """Bug: a batch claim whose lease deadline omits the current time (every lease
    expires at once; with it, batched FM_001 dead-letters healthy jobs)."""
    single, batched = _queue(JobQueue), _queue(JobQueue)
    for q in (single, batched):
        q.store.clock.advance_to(100.0)
        q.enqueue_many([{"type": "deliver", "payload": {"n": n}} for n in range(3)])
    leases = [single.claim("w1") for _ in range(3)]
    claimed = batched.claim_batch("w1", 3)
    assert [batched.store.job(lease.job_id).lease_expires_s for lease in claimed] == \
        [single.store.job(lease.job_id).lease_expires_s for lease in leases] == [100.0 + CONFIG.lease_s] * 3


def test_batched_fm001_never_dead_letters_a_healthy_job():
    """The same bug seen from a proof: batched FM_001 with every guardrail on ends with
    no violation at all, INV_008 (no healthy job dead-lettered) included."""
    from failure_modes.FM_001_retry_duplication.scenario import SCENARIO

    scenario = dataclasses.replace(SCENARIO, worker=dataclasses.replace(SCENARIO.worker, batch=2))
    assert isinstance(scenario.worker, WorkerConfig)
    for seed in range(20):
        run = simulate(scenario, True, RandomChoices(seed))
        assert run.violations == [], (seed, run.violations)
        assert checkers.check_inv008_dead_only_for_cause(run.events, run.store) == []


def test_a_heartbeat_extends_the_lease_to_now_plus_the_lease_time():
    """Bugs once caught only by a proof blowing up (minutes): a heartbeat that extends by
    the heartbeat interval, or that does not extend at all."""
    queue = _queue()
    queue.enqueue("deliver", {})
    lease = queue.claim("w1")
    queue.store.clock.advance_to(1.5)
    assert queue.heartbeat(lease, "w1")
    assert queue.store.job(lease.job_id).lease_expires_s == 1.5 + CONFIG.lease_s
