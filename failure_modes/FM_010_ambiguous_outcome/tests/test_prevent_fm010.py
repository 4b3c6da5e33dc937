"""FM_010 prevented: with an idempotency key derived from the job and a status query
by key before any retry, no schedule within the bounds charges a job twice, and every
job ends succeeded with exactly one charge at the provider — while the same
exploration without the key finds the double charge."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import HandlerContext
from failfirst.proofs.explorer import every_schedule, explore
from failfirst.proofs.prove import prove
from failfirst.sim.services import PaymentProvider, ProviderConflict
from failfirst.store import Store
from failfirst.store.clock import SimClock
from failure_modes.FM_010_ambiguous_outcome.scenario import SCENARIO


def test_exhaustive_proof_at_default_bounds(check_pinned):
    result = prove(SCENARIO)
    proof, control = result.proof, result.control
    check_pinned(proof)
    assert proof.reached > 0
    assert "INV_001" in control.counterexample.result.invariants_violated


def test_every_job_ends_succeeded_with_exactly_one_charge_in_every_schedule():
    runs = 0
    for run in every_schedule(SCENARIO, True):
        runs += 1
        charges = Counter(e["job"] for e in run.events if e["kind"] == "charge")
        jobs = run.store.jobs()
        assert {j.state for j in jobs} == {"succeeded"}, run.schedule
        assert charges == dict.fromkeys((j.id for j in jobs), 1), run.schedule
    assert runs >= 100


def test_the_batched_path_is_proved_too():
    batched = dataclasses.replace(SCENARIO, worker=dataclasses.replace(SCENARIO.worker, batch=2))
    proof = explore(batched, guard=True)
    assert proof.exhaustive and proof.violating == 0 and proof.reached > 0
    assert explore(batched, guard=False, stop_at_first=True, shrink_counterexample=False).violating


def _ctx(clock, job=1, attempt=1):
    return HandlerContext(job, attempt, clock.now_s, guard=Guardrails())


def test_the_provider_honours_keys_as_a_payment_api_does():
    clock = SimClock()
    provider = PaymentProvider(Store.memory(clock))
    ctx = _ctx(clock)
    first = provider.charge(ctx, 500, reference="job-1", idempotency_key="job-1")
    again = provider.charge(_ctx(clock, attempt=2), 500, reference="job-1", idempotency_key="job-1")
    assert again is first and len(provider.charges) == 1, "same key, same result, no charge"
    with pytest.raises(ValueError, match="other parameters"):
        provider.charge(ctx, 501, reference="job-1", idempotency_key="job-1")
    slow = provider.charge(_ctx(clock, job=2), 700, reference="job-2", idempotency_key="job-2",
                           processing_s=5.0)
    with pytest.raises(ProviderConflict):
        provider.status(_ctx(clock, job=2), "job-2")
    with pytest.raises(ProviderConflict):
        provider.charge(_ctx(clock, job=2), 700, reference="job-2", idempotency_key="job-2")
    clock.advance_to(5.0)
    assert provider.status(_ctx(clock, job=2), "job-2") is slow
    assert provider.status(_ctx(clock, job=3), "job-3") is None
    kinds = [e["kind"] for e in provider.store.events()]
    assert kinds.count("charge") == 2 and "replayed" in kinds and "conflict" in kinds


def test_a_slow_provider_is_asked_again_until_it_answers():
    # The slow provider is still processing when the client gives up: the status query
    # says so (a conflict), and the client asks again a timeout later, in the same attempt.
    for run in every_schedule(SCENARIO, True):
        if any(e["kind"] == "slow_response" for e in run.events):
            break
    else:
        raise AssertionError("no schedule had a slow provider")
    slow = next(e for e in run.events if e["kind"] == "slow_response")
    found = [e["found"] for e in run.events
             if e["kind"] == "status" and e["job"] == slow["job"] and e["seq"] > slow["seq"]]
    assert found[0] == "processing" and found[-1].startswith("ch_")
    asked = [e for e in run.events if e["kind"] == "status" and e["seq"] > slow["seq"]]
    assert {e["attempt"] for e in asked} == {slow["attempt"]}, "answered in the same attempt"
    assert run.violations == []
