"""FM_009 recovered: the sweep publishes every outbox row the relay never marked —
a relay that was not running, or died between publishing and marking — then marks
it; the consumer drops a repeat by message id, so every committed change ends with
exactly one delivered message, and a second sweep does nothing."""

from __future__ import annotations

import dataclasses

from failfirst.processor.queue import JobQueue
from failfirst.processor.recovery import republish_outbox
from failfirst.processor.worker import Idle, Point, relay_loop, worker_loop
from failfirst.proofs import checkers
from failfirst.proofs.explorer import find_run
from failfirst.store import Store
from failfirst.store.clock import SimClock
from failure_modes.FM_009_dual_write.scenario import SCENARIO, run_keeping_queue, services

NO_RELAY = dataclasses.replace(SCENARIO, relay=False)


def test_without_a_relay_the_sweep_delivers_every_message_once_and_twice_is_once():
    store, queue = run_keeping_queue(NO_RELAY, True, [])
    lost = [v for v in checkers.check(store.events(), store) if v.invariant == "INV_001"]
    assert len(lost) == len(SCENARIO.jobs), "every change committed, no message went out"
    sent = republish_outbox(queue)
    assert len(sent) == len(SCENARIO.jobs)
    assert checkers.check(store.events(), store) == []
    once = store.image()
    assert republish_outbox(queue) == () and store.image() == once


def _published_not_marked():
    """One job committed with its outbox row; the relay published it and died before
    marking it, and never came back."""
    clock = SimClock()
    store = Store.memory(clock)
    guard = SCENARIO.guardrails(True)
    queue = JobQueue(store, SCENARIO.handlers, guardrails=guard, config=SCENARIO.queue,
                     services=services(store, guard))
    job = queue.enqueue("ship_order", {"order": "C-1"})
    loop = worker_loop("w1", queue, SCENARIO.worker)
    for _ in range(20):  # bounded: claim, work, commit, then idle
        step = next(loop)
        if isinstance(step, Idle):
            break
        clock.advance_to(clock.now_s() + step.wait_s)
    relay = relay_loop("relay", queue)
    step = next(relay)
    assert isinstance(step, Point) and step.name == "relayed"
    relay.close()  # SIGKILL between publishing and marking
    store.append_event(actor="relay", job=job, kind="crash", point="relayed")
    return store, queue, job


def test_a_row_published_but_not_marked_is_published_again_and_dropped_by_the_consumer():
    store, queue, job = _published_not_marked()
    assert [published for *_, published in store.outbox()] == [None]
    assert republish_outbox(queue) == (f"m{job}.1.0",)
    kinds = [e["kind"] for e in store.events() if e["job"] == job]
    assert kinds.count("publish") == 2 and kinds.count("consume") == 1
    assert kinds.count("duplicate") == 1
    assert checkers.check(store.events(), store) == []
    once = store.image()
    assert republish_outbox(queue) == () and store.image() == once


def test_without_the_outbox_nothing_records_the_lost_message():
    run = find_run(SCENARIO, False, lambda r: "INV_001" in r.invariants_violated, max_faults=1)
    store, queue = run_keeping_queue(SCENARIO, False, run.choices)
    assert store.outbox() == [] and republish_outbox(queue) == ()
    assert "INV_001" in {v.invariant for v in checkers.check(store.events(), store)}


def test_a_relay_that_restarts_leaves_nothing_to_sweep():
    def relay_crashed(run):
        return any((e["actor"], e["kind"], e.get("point")) == ("relay", "crash", "relayed")
                   for e in run.events)

    run = find_run(SCENARIO, True, relay_crashed, max_faults=1)
    store, queue = run_keeping_queue(SCENARIO, True, run.choices)
    assert any(e["kind"] == "duplicate" for e in store.events()), "it republished on restart"
    assert republish_outbox(queue) == ()
    assert checkers.check(store.events(), store) == []
