"""Bad input is refused at enqueue with a ValueError naming the field; nothing is written."""

from __future__ import annotations

import pytest

from failfirst.processor.queue import MAX_PAYLOAD_BYTES


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"payload": ["not", "an", "object"]}, "payload"),
        ({"payload": "text"}, "payload"),
        ({"payload": {"x": "y" * MAX_PAYLOAD_BYTES}}, "payload"),
        ({"payload": {"x": float("nan")}}, "payload"),
        ({"payload": {"x": object()}}, "payload"),
        ({"delay_s": -1}, "delay_s"),
        ({"delay_s": float("nan")}, "delay_s"),
        ({"delay_s": "soon"}, "delay_s"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"type_": "unknown"}, "type"),
        ({"type_": ""}, "type"),
        ({"idempotency_key": ""}, "idempotency_key"),
    ],
)
def test_bad_enqueue_is_refused_and_writes_nothing(queue, store, kwargs, field):
    queue.enqueue("deliver", {"amount": 1})
    before_jobs, before_events = store.jobs(), store.events()
    args = {"type_": "deliver", "payload": {"amount": 1}} | kwargs
    with pytest.raises(ValueError, match=f"^{field}:"):
        queue.enqueue(args.pop("type_"), args.pop("payload"), **args)
    assert store.jobs() == before_jobs and store.events() == before_events


def test_idempotency_key_returns_the_existing_job(queue, store):
    first = queue.enqueue("deliver", {"amount": 1}, idempotency_key="order-7")
    again = queue.enqueue("deliver", {"amount": 1}, idempotency_key="order-7")
    assert first == again and len(store.jobs()) == 1


def test_handler_exception_becomes_retry_then_dead_letter_with_reason(store, clock):
    from failfirst.processor.queue import JobQueue
    from failfirst.processor.worker import WorkerConfig, worker_loop

    def broken(payload, ctx):
        raise KeyError("customer")

    queue = JobQueue(store, {"broken": broken})
    job = queue.enqueue("broken", {}, max_attempts=2)
    loop = worker_loop("w1", queue, WorkerConfig(work_s=0.0))
    for _ in range(20):  # the loop survives the handler's exceptions
        step = next(loop)
        if store.job(job).state == "dead":
            break
        clock.advance_to(clock.now_s() + queue.config.backoff_cap_s)
    dead = store.job(job)
    assert dead.state == "dead" and dead.attempts == 2
    assert store.dead_letters()[0][0] == job and "KeyError" in store.dead_letters()[0][1]
    assert [e["kind"] for e in store.events() if e["kind"] in ("retry", "dead")] == ["retry", "dead"]
    assert step is not None


@pytest.mark.parametrize("payload", ["{oops", "[1, 2]", "null"])
def test_a_damaged_payload_fails_its_attempts_and_is_dead_lettered_with_the_reason(store, clock, payload):
    """A payload edited by hand in the store (#23) is neither a crash of the worker nor an
    empty payload: reading it raises, so each attempt fails as a handler error does, and
    the job is dead-lettered saying why; the checkers name it too (INV_000)."""
    from failfirst.processor.queue import JobQueue
    from failfirst.processor.worker import WorkerConfig, worker_loop
    from failfirst.proofs import checkers

    seen = []

    def deliver(payload, ctx):
        seen.append(payload)
        return [("delivered", int(payload.get("amount", 1)))]

    queue = JobQueue(store, {"deliver": deliver})
    job = queue.enqueue("deliver", {"amount": 1}, max_attempts=2)
    with store.transaction():
        store._write("UPDATE jobs SET payload = ? WHERE id = ?", (payload, job))
    loop = worker_loop("w1", queue, WorkerConfig(work_s=0.0))
    for _ in range(20):  # bounded: two attempts and a backoff
        next(loop)
        if store.job(job).state == "dead":
            break
        clock.advance_to(clock.now_s() + queue.config.backoff_cap_s)
    assert store.job(job).state == "dead" and len(seen) == 2
    assert "payload" in store.dead_letters()[0][1], store.dead_letters()
    assert store.effects(job) == []
    found = checkers.check(store.events(), store)
    assert [(v.invariant, v.job) for v in found] == [("INV_000", job)], found
