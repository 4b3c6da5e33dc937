"""What a scenario declares beyond its jobs: the guardrails --guard switches (with
companions and a baseline), delayed arrivals, per-run services, the INV_005 bounds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import HandlerContext
from failfirst.proofs import checkers
from failfirst.proofs.run import simulate
from failfirst.sim.choices import RandomChoices
from failfirst.sim.scenario import JobSpec, Scenario


def once(payload, ctx):
    return [("done", 1)]


def calling(payload, ctx):
    ctx.services["log"].append((ctx.job_id, ctx.attempt, ctx.now_s()))
    ctx.services["store"].append_event(actor="downstream", job=ctx.job_id, kind="call")
    return [("done", 1)]


BASE = Scenario(id="FM_900", title="t", guardrail="retry_budget", invariants=("INV_005",),
                handlers={"once": once, "calling": calling}, jobs=(JobSpec("once", {}),))


def test_guard_off_switches_the_guardrail_and_its_companions_only():
    sc = replace(BASE, companions=("single_layer_retry", "backoff_jitter"))
    assert sc.guardrails(True) == Guardrails()
    assert set(sc.guardrails(False).off()) == {"retry_budget", "single_layer_retry", "backoff_jitter"}


def test_a_baseline_keeps_its_own_policies_under_both_switch_positions():
    sc = replace(BASE, guardrail="heartbeat", baseline=Guardrails(idempotent_commit=False))
    assert sc.guardrails(True).off() == ["idempotent_commit"]
    assert sc.guardrails(False).off() == ["idempotent_commit", "heartbeat"]
    with pytest.raises(AssertionError):
        replace(BASE, baseline=Guardrails(retry_budget=False))


def test_delayed_jobs_are_claimed_no_earlier_than_their_delay():
    sc = replace(BASE, jobs=(JobSpec("once", {}), JobSpec("once", {}, delay_s=25.0)), workers=1)
    run = simulate(sc, True, RandomChoices(0, fault_rate=0.0))
    claims = {e["job"]: e["t"] for e in run.events if e["kind"] == "claim"}
    assert claims[1] == 0.0 and claims[2] == 25.0
    assert run.violations == []


def test_services_are_made_fresh_for_every_run():
    made = []

    def services(store, guard):
        made.append(guard)
        return {"log": [], "store": store}

    sc = replace(BASE, jobs=(JobSpec("calling", {}),), services=services)
    a = simulate(sc, True, RandomChoices(0, fault_rate=0.0))
    b = simulate(sc, True, RandomChoices(0, fault_rate=0.0))
    assert len(made) == 2
    assert a.digest == b.digest
    assert [e["kind"] for e in a.events].count("call") == 1


def test_inv005_bounds_calls_per_job_and_in_total():
    jobs = tuple(JobSpec("calling", {}) for _ in range(3))
    sc = replace(BASE, jobs=jobs, max_calls_per_job=1, max_calls_total=2,
                 services=lambda store, guard: {"log": [], "store": store})
    run = simulate(sc, True, RandomChoices(0, fault_rate=0.0))
    found = [v for v in run.violations if v.invariant == "INV_005"]
    assert [v.job for v in found] == [None] and "3 downstream calls in all" in found[0].detail


def test_inv005_counts_calls_afresh_after_a_redrive():
    events = [
        {"seq": 1, "kind": "start", "job": None, "max_calls_per_job": 1},
        {"seq": 2, "kind": "enqueue", "job": 1, "max_attempts": 1},
        {"seq": 3, "kind": "claim", "job": 1},
        {"seq": 4, "kind": "call", "job": 1},
        {"seq": 5, "kind": "redrive", "job": 1},
        {"seq": 6, "kind": "claim", "job": 1},
        {"seq": 7, "kind": "call", "job": 1},
    ]
    assert checkers.check_inv005_bounded_work(events, None) == []
    assert len(checkers.check_inv005_bounded_work(events[:4] + events[6:], None)) == 1


def test_inner_layers_retry_only_without_single_layer_retry():
    ctx = HandlerContext(1, 1, lambda: 0.0)
    assert ctx.inner_retries(3) == 0
    ctx = HandlerContext(1, 1, lambda: 0.0, guard=Guardrails().without("single_layer_retry"))
    assert ctx.inner_retries(3) == 3
