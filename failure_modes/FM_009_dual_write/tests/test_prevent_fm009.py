"""FM_009 prevented: with the transactional outbox (the message is a row in the
change's own transaction, a relay publishes it at least once and marks it) and a
consumer that de-duplicates by message id, every committed change has exactly one
delivered message and no message announces a change that did not commit — in every
schedule within the bounds, relay crashes at each of its steps included. Both naive
orders of the dual write fail the same exploration."""

from __future__ import annotations

import dataclasses

from failfirst.processor.policies import Guardrails
from failfirst.proofs.explorer import depth_first, every_schedule, explore, with_bounds
from failfirst.proofs.prove import prove
from failfirst.proofs.run import simulate
from failure_modes.FM_009_dual_write.scenario import SCENARIO, publish_first_scenario


def test_exhaustive_proof_at_default_bounds(check_pinned):
    result = prove(SCENARIO)
    check_pinned(result.proof)
    assert "INV_001" in result.control.counterexample.result.invariants_violated


def test_the_negative_control_of_the_other_order_is_inv002():
    result = prove(publish_first_scenario())
    assert "INV_002" in result.control.counterexample.result.invariants_violated


def test_two_faults_relay_and_worker_crashes_together():
    one_job = with_bounds(dataclasses.replace(SCENARIO, jobs=SCENARIO.jobs[:1]), max_faults=2)
    seen_points = set()
    duplicates = 0
    for run in depth_first(lambda source: simulate(one_job, True, source), limit=10_000):
        assert run.violations == [], (run.schedule, run.violations)
        assert all(published is not None for *_, published in run.store.outbox()), run.schedule
        seen_points |= {(e["actor"], e["point"]) for e in run.events if e["kind"] == "crash"}
        duplicates += any(e["kind"] == "duplicate" for e in run.events)
    assert {("relay", "relayed"), ("relay", "mark")} <= seen_points, "the relay crashed at each step"
    assert duplicates > 0, "a relay crash published a row twice and the consumer dropped it"


def test_the_outbox_without_an_idempotent_consumer_delivers_twice():
    # At-least-once publishing needs its other half: the consumer's de-duplication.
    no_dedup = dataclasses.replace(SCENARIO, companions=(),
                                   baseline=Guardrails().without("idempotent_consumer"))
    found = explore(no_dedup, guard=True, stop_at_first=True, shrink_counterexample=True)
    cx = found.counterexample
    assert cx is not None and {v["invariant"] for v in cx.violations} == {"INV_001"}
    assert "delivered twice" in cx.violations[0]["detail"]
    assert any((e["kind"], e.get("point")) == ("crash", "relayed") for e in cx.result.events)


def test_every_row_is_written_with_its_change_or_not_at_all():
    for run in every_schedule(SCENARIO, True):
        rows = {(job, token) for _, job, token, _, _ in run.store.outbox()}
        changes = {(e["job"], e["token"]) for e in run.events if e["kind"] == "effect"}
        assert rows == changes, run.schedule
