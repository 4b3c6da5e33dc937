"""FM_010 reproduced: without an idempotency key, a payment call whose outcome the
client never learnt (a lost response, a slow provider, a worker that died after the
call) is retried as a new charge, and the checker names the job and both charges
from the provider's own ledger."""

from __future__ import annotations

import pytest

from failfirst.proofs.explorer import depth_first, with_bounds
from failfirst.proofs.prove import reproduce
from failfirst.proofs.run import simulate
from failure_modes.FM_010_ambiguous_outcome.scenario import SCENARIO

ONE_FAULT = with_bounds(SCENARIO, max_faults=1)


def _first_run_with(fault, point):
    for run in depth_first(lambda source: simulate(ONE_FAULT, False, source), limit=1000):
        hit = [e for e in run.events if (e["kind"], e.get("point")) == (fault, point)]
        if hit:
            return run, hit[0]
    raise AssertionError(f"no schedule injected {fault} at {point}")


def test_exploration_finds_inv001_and_its_minimal_counterexample_replays():
    cx = reproduce(SCENARIO)  # shrunk, and replayed to the same digest and violations
    assert "INV_001" in {v["invariant"] for v in cx.violations}
    assert cx.faults == 1, "one ambiguous call is enough to charge twice"


@pytest.mark.parametrize("fault, point", [("response_lost", "charge"),
                                          ("slow_response", "charge"),
                                          ("crash", "claimed")])
def test_an_ambiguous_outcome_retried_without_a_key_charges_twice(fault, point):
    run, hit = _first_run_with(fault, point)
    job = hit["job"]
    [v] = [v for v in run.violations if v.invariant == "INV_001"]
    assert v.job == job and "charged the job 2 times" in v.detail
    by_seq = {e["seq"]: e for e in run.events}
    first, second = (by_seq[s] for s in v.events)
    assert first["kind"] == second["kind"] == "charge" and first["key"] is None
    claims = [e["seq"] for e in run.events if e["kind"] == "claim" and e["job"] == job]
    assert first["seq"] < claims[1] < second["seq"], "the second charge came from a retry"
    assert run.store.job(job).state == "succeeded" and len(run.store.effects(job)) == 1, \
        "the queue's own record is exactly-once: only the provider's is doubled"


def test_a_lost_request_is_safe_to_retry_even_without_a_key():
    run, hit = _first_run_with("request_lost", "charge")
    charges = [e for e in run.events if e["kind"] == "charge" and e["job"] == hit["job"]]
    assert len(charges) == 1 and charges[0]["seq"] > hit["seq"]
    assert run.violations == []
