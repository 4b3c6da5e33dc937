"""Recovery, branch by branch (:mod:`failfirst.processor.recovery`), on stores built by
hand with the queue's own operations (a real in-memory store): which copy of an effect
is kept and which is reported, reconciliation of a whole effect, bounding leases without
a deadline, reaping, the outbox sweep and the spread redrive — with inputs larger than
one reap batch, and each pass run twice to show that twice equals once.

The catalogue's scenarios reach only some of these branches (a few jobs, one fault);
each test here builds the state its branch handles."""

from __future__ import annotations

import pytest

from failfirst.processor.policies import ALL_ON, Guardrails
from failfirst.processor.queue import BROKER_SERVICE, JobQueue, QueueConfig
from failfirst.processor.recovery import bound_leases, recover, redrive_spread, republish_outbox
from failfirst.proofs import checkers
from failfirst.sim.services import Broker, Consumer
from failfirst.store import Store
from failfirst.store.clock import SimClock

#: A reap batch of two, so that five jobs are more than one batch.
CONFIG = QueueConfig(lease_s=10.0, heartbeat_s=4.0, reap_batch=2, default_max_attempts=3)
PARTS = [("debit", -5), ("credit", 5)]
NO_BOUNDARY = Guardrails().without("idempotent_commit")


def transfer(payload, ctx):
    return list(PARTS)


def make_queue(guard: Guardrails = ALL_ON, **services) -> tuple[SimClock, JobQueue]:
    clock = SimClock()
    return clock, JobQueue(Store.memory(clock), {"transfer": transfer}, guardrails=guard,
                           config=CONFIG, services=services or None)


def with_guard(queue: JobQueue, guard: Guardrails = ALL_ON) -> JobQueue:
    """The same store under other guardrails: the recovery deployed after the run."""
    return JobQueue(queue.store, queue.handlers, guardrails=guard, config=CONFIG,
                    services=queue.services)


def expire_all(queue: JobQueue, clock: SimClock) -> None:
    clock.advance_to(clock.now_s() + CONFIG.lease_s)
    while queue.reap():
        pass


def crashed_after_writing(queue: JobQueue, clock: SimClock, worker: str, effects=PARTS):
    """``worker`` claims the next job, writes ``effects`` outside the commit boundary and
    dies before completing it; its lease then expires and the reaper takes the job back."""
    lease = queue.claim(worker)
    assert lease is not None
    queue.write_effects(lease, list(effects), worker, parts=len(PARTS))
    expire_all(queue, clock)
    return lease


def repairs(store: Store) -> list[tuple[int, str, int, str]]:
    return [(e["job"], e["part"], e["token"], e["reason"]) for e in store.events()
            if e["kind"] == "repair"]


def recovered_cleanly(store: Store) -> None:
    events = store.events()
    assert checkers.check_inv006_recovered(events, store) == []
    assert checkers.check_inv007_records_agree(events, store) == []


# -- reaping and bounding: inputs larger than one batch ----------------------------------------


def test_more_expired_leases_than_one_reap_batch_are_all_taken_back():
    clock, queue = make_queue()
    jobs = [queue.enqueue("transfer", {}) for _ in range(5)]
    for i in range(5):
        queue.claim(f"w{i}")
    clock.advance_to(CONFIG.lease_s)
    report = recover(queue)
    assert report.expired == 5 > CONFIG.reap_batch
    assert {j.id: j.state for j in queue.store.jobs()} == dict.fromkeys(jobs, "pending")
    assert sorted(e["job"] for e in queue.store.events()
                  if e["kind"] == "expire" and e["actor"] == "recovery") == jobs
    assert recover(queue).expired == 0


def test_more_leases_without_a_deadline_than_one_batch_all_get_one():
    clock, old = make_queue(Guardrails().without("lease_expiry"))
    jobs = [old.enqueue("transfer", {}) for _ in range(5)]
    for i in range(5):
        old.claim(f"w{i}")  # lease expiry off: each lease lasts forever
    assert {j.lease_expires_s for j in old.store.jobs()} == {float("inf")}
    clock.advance_to(100.0)
    queue = with_guard(old)
    report = recover(queue)
    assert report.bounded == tuple(jobs) and report.expired == 0
    assert {j.lease_expires_s for j in queue.store.jobs()} == {100.0 + CONFIG.lease_s}
    image = queue.store.image()
    assert recover(queue).bounded == () and queue.store.image() == image  # twice equals once
    clock.advance_to(100.0 + CONFIG.lease_s)
    assert recover(queue).expired == 5


def test_bounding_leaves_a_lease_that_ends_within_one_lease_and_records_each_one_it_bounds():
    clock, old = make_queue(Guardrails().without("lease_expiry"))
    forever = old.enqueue("transfer", {})
    live = old.enqueue("transfer", {})
    exact = old.enqueue("transfer", {})
    first = old.claim("w1")
    queue = with_guard(old)
    clock.advance_to(2.0)
    queue.claim("w2")  # a live lease: ends at 12
    clock.advance_to(5.0)
    queue.claim("w3")  # ends at 15 = now + lease_s: not beyond it
    assert bound_leases(queue) == (forever,)
    deadlines = {j.id: j.lease_expires_s for j in queue.store.jobs()}
    assert deadlines == {forever: 15.0, live: 12.0, exact: 15.0}
    [event] = [e for e in queue.store.events() if e["kind"] == "lease_bounded"]
    assert (event["actor"], event["job"], event["token"], event["until"]) == (
        "recovery", forever, first.token, 15.0)


def test_with_lease_expiry_off_recovery_gives_no_lease_a_deadline():
    clock, queue = make_queue(Guardrails().without("lease_expiry"))
    queue.enqueue("transfer", {})
    queue.claim("w1")
    clock.advance_to(100.0)
    report = recover(queue)
    assert report.bounded == () and report.expired == 0
    assert queue.store.jobs()[0].lease_expires_s == float("inf")


# -- repair: which copy is kept, which is reported -------------------------------------------


def test_a_pending_job_whose_whole_effect_stands_is_reconciled_not_run_again():
    clock, queue = make_queue(NO_BOUNDARY)
    job = queue.enqueue("transfer", {})
    lease = crashed_after_writing(queue, clock, "w1")
    assert queue.store.job(job).state == "pending"
    report = recover(with_guard(queue))
    assert report.reconciled == (job,) and report.repaired == ()
    assert queue.store.job(job).state == "succeeded"
    [event] = [e for e in queue.store.events() if e["kind"] == "reconcile"]
    assert (event["actor"], event["job"], event["effect_token"]) == ("recovery", job, lease.token)
    assert queue.store.effects(job) == [(job, "debit", lease.token, -5), (job, "credit", lease.token, 5)]
    recovered_cleanly(queue.store)


def test_a_whole_effect_written_twice_keeps_the_first_writers_copy_when_no_attempt_succeeded():
    clock, queue = make_queue(NO_BOUNDARY)
    job = queue.enqueue("transfer", {})
    first = crashed_after_writing(queue, clock, "w1")
    second = crashed_after_writing(queue, clock, "w2")
    report = recover(with_guard(queue))
    assert report.repaired == ((job, "debit", second.token), (job, "credit", second.token))
    assert report.reconciled == (job,)
    assert {t for _, _, t, _ in queue.store.effects(job)} == {first.token}
    assert [(part, token) for _, part, token, _ in repairs(queue.store)] == [
        ("debit", second.token), ("credit", second.token)]
    assert all(f"stands from lease {first.token}" in why for *_, why in repairs(queue.store))
    [event] = [e for e in queue.store.events() if e["kind"] == "reconcile"]
    assert event["effect_token"] == first.token
    recovered_cleanly(queue.store)


def test_a_dead_job_keeps_one_copy_and_stays_dead():
    clock, queue = make_queue(NO_BOUNDARY)
    job = queue.enqueue("transfer", {}, max_attempts=2)
    first = crashed_after_writing(queue, clock, "w1")
    second = crashed_after_writing(queue, clock, "w2")  # attempts spent: the reaper kills it
    assert queue.store.job(job).state == "dead"
    report = recover(with_guard(queue))
    assert report.repaired == ((job, "debit", second.token), (job, "credit", second.token))
    assert report.reconciled == ()
    assert queue.store.job(job).state == "dead" and [j for j, *_ in queue.store.dead_letters()] == [job]
    assert {t for _, _, t, _ in queue.store.effects(job)} == {first.token}


def test_copies_written_by_one_token_are_all_removed_and_each_one_reported():
    clock, queue = make_queue(NO_BOUNDARY)
    job = queue.enqueue("transfer", {})
    # A handler that names a part twice, outside the commit boundary: two debit rows, one token.
    first = crashed_after_writing(queue, clock, "w1", effects=[("debit", -5), ("debit", -5),
                                                                 ("credit", 5)])
    second = queue.claim("w2")
    queue.write_effects(second, list(PARTS), "w2")
    assert queue.complete(second, "w2")
    report = recover(with_guard(queue))
    assert report.repaired == ((job, "debit", first.token), (job, "debit", first.token),
                               (job, "credit", first.token))
    assert [(p, t) for _, p, t, _ in repairs(queue.store)] == [
        ("debit", first.token), ("debit", first.token), ("credit", first.token)]
    assert queue.store.effects(job) == [(job, "debit", second.token, -5), (job, "credit", second.token, 5)]
    recovered_cleanly(queue.store)


def test_a_torn_effect_of_a_job_not_succeeded_is_rolled_back_part_by_part():
    clock, queue = make_queue(Guardrails().without("atomic_effect"))
    job = queue.enqueue("transfer", {})
    lease = crashed_after_writing(queue, clock, "w1", effects=PARTS[:1])
    report = recover(with_guard(queue))
    assert report.repaired == ((job, "debit", lease.token),) and report.reconciled == ()
    [(_, part, token, why)] = repairs(queue.store)
    assert (part, token) == ("debit", lease.token) and why.startswith("torn: 1 of 2 parts")
    assert queue.store.effects(job) == [] and queue.store.job(job).state == "pending"


def test_a_succeeded_jobs_parts_are_kept_even_when_torn():
    """A succeeded job will not run again: rolling back the parts that stand would leave
    it succeeded with no effect at all. Recovery keeps them (INV_006 names the tear)."""
    clock, queue = make_queue(Guardrails().without("atomic_effect"))
    job = queue.enqueue("transfer", {})
    lease = queue.claim("w1")
    queue.write_effects(lease, PARTS[:1], "w1", parts=2)
    assert queue.complete(lease, "w1")
    report = recover(with_guard(queue))
    assert report.repaired == () and report.reconciled == ()
    assert queue.store.effects(job) == [(job, "debit", lease.token, -5)]
    found = checkers.check_inv006_recovered(queue.store.events(), queue.store)
    assert [v.detail for v in found] == [
        "after recovery, 1 of 2 effect parts stand: the effect is still torn"]


def test_a_job_without_effects_is_left_as_it_is():
    clock, queue = make_queue()
    job = queue.enqueue("transfer", {})
    queue.claim("w1")
    expire_all(queue, clock)
    report = recover(queue)
    assert report == type(report)(0, (), (), ())
    assert queue.store.job(job).state == "pending"


def test_recovery_twice_equals_once_after_every_repair():
    clock, queue = make_queue(NO_BOUNDARY)
    for _ in range(3):
        queue.enqueue("transfer", {})
    crashed_after_writing(queue, clock, "w1")
    crashed_after_writing(queue, clock, "w2")
    crashed_after_writing(queue, clock, "w3")
    fixed = with_guard(queue)
    recover(fixed)
    image, events = queue.store.image(), queue.store.events()
    again = recover(fixed)
    assert (again.expired, again.reconciled, again.repaired, again.bounded) == (0, (), (), ())
    assert queue.store.image() == image and queue.store.events() == events


# -- the outbox sweep and the spread redrive --------------------------------------------------


def test_the_sweep_publishes_every_unmarked_row_in_order_then_none():
    clock = SimClock()
    store = Store.memory(clock)
    broker = Broker(store, Consumer(store, dedup=True))
    queue = JobQueue(store, {"transfer": transfer}, config=CONFIG, services={BROKER_SERVICE: broker})
    jobs = [queue.enqueue("transfer", {}) for _ in range(3)]
    for i, job in enumerate(jobs):
        lease = queue.claim(f"w{i}")
        assert queue.commit(lease, list(PARTS), f"w{i}", [("orders", {"job": job}), ("mail", {})])
    ids = tuple(row[0] for row in store.outbox())
    assert len(ids) == 6
    assert republish_outbox(queue) == ids
    assert [e["message"] for e in store.events() if e["kind"] == "consume"] == list(ids)
    assert all(published is not None for *_, published in store.outbox())
    assert republish_outbox(queue) == ()


def _dead_jobs(n: int) -> tuple[SimClock, JobQueue, list[int]]:
    clock, queue = make_queue()
    jobs = [queue.enqueue("transfer", {}, max_attempts=1) for _ in range(n)]
    leases = [queue.claim(f"w{i}") for i in range(n)]
    for lease in reversed(leases):  # dead-lettered in the reverse order of their ids
        assert queue.fail(lease, "503 from the API", "w") == "dead"
    assert [job for job, *_ in queue.store.dead_letters()] == jobs[::-1]
    return clock, queue, jobs


@pytest.mark.parametrize(("per_window", "delays_s"), [
    (2, [0.0, 0.0, 10.0, 10.0, 20.0]), (1, [0.0, 10.0, 20.0, 30.0, 40.0]),
    (5, [0.0] * 5), (9, [0.0] * 5)])
def test_the_spread_redrive_sends_per_window_jobs_per_window_in_id_order(per_window, delays_s):
    clock, queue, jobs = _dead_jobs(5)
    clock.advance_to(50.0)
    assert redrive_spread(queue, per_window=per_window, window_s=10.0) == tuple(jobs)
    got = queue.store.jobs()
    assert [(j.state, j.attempts, j.run_at_s) for j in got] == [
        ("pending", 0, 50.0 + d) for d in delays_s]
    assert queue.store.dead_letters() == []
    assert [e["job"] for e in queue.store.events() if e["kind"] == "redrive"] == jobs
    assert redrive_spread(queue, per_window=per_window, window_s=10.0) == ()
