"""FM_009 reproduced: without the transactional outbox the change and its message are
two writes. A crash between them after the commit loses the message (INV_001: a
committed change with no delivered message); a message sent before the commit, or
after a commit whose acknowledgement was lost, announces a change that never
committed (INV_002)."""

from __future__ import annotations

from failfirst.proofs.explorer import depth_first
from failfirst.proofs.prove import reproduce
from failfirst.proofs.run import simulate
from failure_modes.FM_009_dual_write.scenario import SCENARIO, publish_first_scenario


def _first_run_with(scenario, fault, point):
    for run in depth_first(lambda source: simulate(scenario, False, source), limit=1000):
        hit = [e for e in run.events if (e["kind"], e.get("point")) == (fault, point)]
        if hit:
            return run, hit[0]
    raise AssertionError(f"no schedule injected {fault} at {point}")


def test_exploration_finds_a_lost_message_and_its_minimal_counterexample_replays():
    cx = reproduce(SCENARIO)  # shrunk, and replayed to the same digest and violations
    assert {v["invariant"] for v in cx.violations} == {"INV_001"}
    assert cx.faults == 1 and "a message was lost" in cx.violations[0]["detail"]


def test_a_crash_after_the_commit_leaves_the_order_shipped_and_nobody_told():
    run, crash = _first_run_with(SCENARIO, "crash", "committed")
    job = crash["job"]
    [v] = run.violations
    assert (v.invariant, v.job) == ("INV_001", job)
    assert len(run.store.effects(job)) == 1 and run.store.job(job).state == "succeeded"
    assert not [e for e in run.events if e["kind"] in ("publish", "consume") and e["job"] == job]


def test_a_lost_acknowledgement_announces_a_change_that_rolled_back():
    run, lost = _first_run_with(SCENARIO, "lost_ack", "commit")
    inv002 = [v for v in run.violations if v.invariant == "INV_002"]
    assert [v.job for v in inv002] == [lost["job"]]
    by_seq = {e["seq"]: e for e in run.events}
    [consumed] = [by_seq[s] for s in inv002[0].events]
    assert consumed["kind"] == "consume" and consumed["seq"] > lost["seq"]
    committed = {e["token"] for e in run.events if e["kind"] == "effect" and e["job"] == lost["job"]}
    assert consumed["token"] not in committed, "that lease's change never committed"


def test_publishing_first_announces_a_change_that_then_does_not_commit():
    cx = reproduce(publish_first_scenario())
    assert {v["invariant"] for v in cx.violations} == {"INV_002"}
    run = cx.result
    [v] = run.violations
    consume = next(e for e in run.events if e["seq"] == v.events[0])
    later = [e for e in run.events if e["kind"] == "effect" and e["job"] == v.job]
    assert consume["seq"] < later[0]["seq"] and later[0]["token"] != consume["token"], \
        "the change committed later, under another lease: the first message described none"
