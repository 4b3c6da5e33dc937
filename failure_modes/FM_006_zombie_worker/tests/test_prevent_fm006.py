"""FM_006 prevented: with fencing, every worker write carries its lease's token and is
refused when stale — by the queue (heartbeat, complete, retry, dead) and by the
downstream documents store — in every schedule within the bounds; the same
exploration without fencing lands stale writes."""

from __future__ import annotations

from dataclasses import replace

from failfirst.proofs.explorer import explore, find_run
from failfirst.proofs.prove import prove
from failfirst.proofs.run import simulate
from failfirst.sim.choices import ReplayChoices
from failure_modes.FM_006_zombie_worker.scenario import SCENARIO, stale_writes


def test_exhaustive_proof_at_default_bounds(check_pinned):
    result = prove(SCENARIO)
    proof, control = result.proof, result.control
    check_pinned(proof)
    assert proof.reached > 0
    assert "INV_003" in control.counterexample.result.invariants_violated


def test_every_zombie_write_is_refused_with_fencing():
    zombie = find_run(SCENARIO, True, lambda run: any(
        e["kind"] == "refused" and e.get("attempted") == "write" for e in run.events))
    assert zombie is not None, "some zombie reaches the documents store"
    assert zombie.violations == []
    refused = [e for e in zombie.events if e["kind"] == "refused"]
    assert {e["actor"] for e in refused} >= {"documents"}
    for e in refused:  # each refusal carries a token older than the newest claim of its job
        newest = max(c["token"] for c in zombie.events if c["kind"] == "claim"
                     and c["job"] == e["job"] and c["seq"] < e["seq"])
        assert e["token"] < newest


def test_the_same_schedules_without_fencing_land_stale_writes():
    off = find_run(SCENARIO, False, lambda run: len(stale_writes(run)) >= 2)
    assert off is not None
    on = simulate(SCENARIO, True, ReplayChoices(off.choices, strict=False))
    assert on.violations == [] and stale_writes(on) == set()


def test_a_check_that_skips_the_heartbeat_fence_is_caught():
    """Fencing on everywhere but a heartbeat that forgets its token: the checker still
    names the zombie's heartbeat (the proof would fail), so the heartbeat's fence is
    covered by this scenario, not assumed."""
    from failfirst.processor import queue

    original = queue.JobQueue.heartbeat

    def unfenced(self, lease, worker):
        saved = self.guard
        self.guard = replace(saved, fencing=False)
        try:
            return original(self, lease, worker)
        finally:
            self.guard = saved

    queue.JobQueue.heartbeat = unfenced
    try:
        broken = explore(SCENARIO, guard=True, stop_at_first=True, shrink_counterexample=False)
    finally:
        queue.JobQueue.heartbeat = original
    assert broken.violating > 0
    assert "heartbeat" in stale_writes(broken.counterexample.result)
