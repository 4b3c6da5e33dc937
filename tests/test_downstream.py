"""The simulated dependency, its client library (tenacity, simulated sleeps) and the
retry budget: every request is a `call` event; a refused retry is never sent."""

from __future__ import annotations

import time

import pytest

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import HandlerContext
from failfirst.sim.services import (
    Client,
    Downstream,
    DownstreamError,
    Outage,
    RetryBudget,
    RetryBudgetExhausted,
)
from failfirst.store import Store
from failfirst.store.clock import SimClock

LAYERED = Guardrails().without("single_layer_retry").without("retry_budget")


ALWAYS_DOWN = (Outage(0.0, 100.0),)


def _setup(outages=ALWAYS_DOWN):
    store = Store.memory(SimClock())
    return store, Downstream(store, "svc", outages)


def _ctx(guard, attempt=1):
    return HandlerContext(7, attempt, lambda: 0.0, guard=guard)


def test_the_client_retries_with_simulated_sleeps_and_every_try_is_a_call():
    store, svc = _setup()
    ctx = _ctx(LAYERED)
    started = time.perf_counter()  # real-time: only to show that nothing really slept
    with pytest.raises(DownstreamError):
        Client(svc, retries=3, wait_s=5.0).call(ctx)
    assert time.perf_counter() - started < 1.0
    calls = [e for e in store.events() if e["kind"] == "call"]
    assert [e["at_s"] for e in calls] == [0.0, 5.0, 10.0, 15.0] and ctx.elapsed_s == 15.0
    assert [e["retry"] for e in calls] == [False, True, True, True]


def test_under_single_layer_retry_the_client_tries_once():
    store, svc = _setup()
    with pytest.raises(DownstreamError):
        Client(svc, retries=3).call(_ctx(Guardrails()))
    assert sum(e["kind"] == "call" for e in store.events()) == 1


def test_outside_the_outage_the_call_succeeds():
    store, svc = _setup((Outage(10.0, 20.0),))
    assert Client(svc).call(_ctx(Guardrails())) == {"status": 200}
    [call] = [e for e in store.events() if e["kind"] == "call"]
    assert call["ok"] and call["job"] == 7


def test_the_budget_refuses_retries_beyond_its_tokens_and_records_the_refusal():
    store, svc = _setup()
    budget = RetryBudget(ratio=0.1, capacity=2.0)
    client = Client(svc, budget, retries=0)
    refused = 0
    for attempt in range(1, 6):  # one job's queue attempts: all but the first are retries
        try:
            client.call(_ctx(Guardrails(), attempt=attempt))
        except RetryBudgetExhausted:
            refused += 1
        except DownstreamError:
            pass
    calls = [e for e in store.events() if e["kind"] == "call"]
    assert len(calls) == budget.bound(1) == 3, "one first call, two retries from the burst"
    assert refused == 2
    assert [e["kind"] for e in store.events() if e["kind"] == "refused"] == ["refused"] * 2


def test_the_budget_bound():
    budget = RetryBudget(ratio=0.1, capacity=2.0)
    assert budget.bound(3) == 5 and budget.bound(60) == 68
    for _ in range(100):
        budget.first_call()
    assert budget.tokens == 2.0, "deposits never exceed the capacity"
