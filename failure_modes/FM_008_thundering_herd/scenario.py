"""FM_008 — thundering herd: jobs that failed together retry together, and the herd
keeps a recovering dependency down.

A nightly fan-out enqueues eight jobs at once; each pushes one record to a shared
inventory API. The API is down when they first run, so they all fail at the same
instant. Back from its outage it serves at most ``CAPACITY`` calls per
``WINDOW_S`` and answers 503 to the rest, as an overloaded service sheds load. With
plain capped exponential backoff every job computes the same wait, so the retries
arrive together, wave after wave: the API sheds most of each wave and the jobs burn
their attempts against it. With the guardrail — capped exponential backoff with
jitter, and a retry budget — the retries are spread out and their number bounded.

Declared bounds (checked by INV_005 from the history): one call per attempt, the
run's total within first calls plus what the budget lets through, and no more
retries reaching the API within any ``WINDOW_S`` than it can serve (``CAPACITY``).

``figure_scenario(policy)`` is the longer run behind the chapter's figure: many more
jobs against the same kind of outage, under one named backoff policy.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from failfirst.processor import backoff
from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import HandlerContext, QueueConfig
from failfirst.processor.worker import WorkerConfig
from failfirst.sim.scenario import FaultPlan, JobSpec, Scenario
from failfirst.sim.services import Client, Downstream, Outage, RetryBudget
from failfirst.sim.sometimes import BUDGET_REFUSED_A_RETRY, CRASHED_JOB_TRIED_AGAIN
from failfirst.store import Store

SERVICE = "inventory-api"
JOBS = 8
MAX_ATTEMPTS = 5
#: The queue's backoff: the first retry within 1 s, doubling, capped at 16 s.
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 32.0
#: The API back from its outage serves this many calls per window; the rest get 503.
CAPACITY = 4
WINDOW_S = 0.0625
#: The retry budget: a first call deposits half a token; a retry spends one; four at most.
BUDGET_RATIO = 0.5
BUDGET_CAPACITY = 16.0
#: A crashed worker process is back this fast; its job returns when its lease expires.
RESTART_S = 0.05
#: The outage: the API is down for the first five seconds.
OUTAGE = Outage(0.0, 2.0)


def push_inventory(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """Push one warehouse's stock to the inventory API: one call; the queue retries."""
    client: Client = ctx.services[SERVICE]
    client.call(ctx)
    return [("pushed", 1)]


def services(outage: Outage, capacity: int, window_s: float):
    """The per-run services: the inventory API, called through a client that does not
    retry itself (retries happen at one layer, the queue) and spends a retry budget."""

    def make(store: Store, guard: Guardrails) -> dict[str, Any]:
        api = Downstream(store, SERVICE, (outage,), capacity=capacity, window_s=window_s)
        return {SERVICE: Client(api, RetryBudget(BUDGET_RATIO, BUDGET_CAPACITY), retries=0)}

    return make


def failed_together_and_retried(events: list[dict[str, Any]]) -> bool:
    """Two or more jobs failed at the same instant, and both tried again (sent or refused):
    the start of a herd."""
    failed_at: dict[float, set[int]] = {}
    tried_again: set[int] = set()
    seen_failed: set[int] = set()
    for e in events:
        tried = e["kind"] == "call" or (e["kind"] == "refused" and e.get("attempted") == "call")
        if tried and e["job"] in seen_failed:
            tried_again.add(e["job"])
        if e["kind"] == "call" and not e["ok"]:
            failed_at.setdefault(e["at_s"], set()).add(e["job"])
            seen_failed.add(e["job"])
    return any(len(jobs & tried_again) >= 2 for jobs in failed_at.values())


def make_scenario(jobs: int = JOBS, *, workers: int = 1, policy: str = backoff.FULL_JITTER,
                  outage: Outage = OUTAGE, capacity: int = CAPACITY, window_s: float = WINDOW_S,
                  max_faults: int = 2) -> Scenario:
    """``jobs`` jobs enqueued together, retried by the queue under backoff ``policy``."""
    specs = tuple(JobSpec("push_inventory", {"warehouse": f"W{i:02d}"}, max_attempts=MAX_ATTEMPTS)
                  for i in range(jobs))
    budget = RetryBudget(BUDGET_RATIO, BUDGET_CAPACITY)
    return Scenario(
        id="FM_008",
        title="Thundering herd",
        guardrail="backoff_jitter",
        companions=("retry_budget",),
        invariants=("INV_004", "INV_005"),
        handlers={"push_inventory": push_inventory},
        jobs=specs,
        workers=workers,
        faults=FaultPlan(points={"claimed": ("crash",)}, max_faults=max_faults,
                         restart_s=RESTART_S),
        queue=QueueConfig(lease_s=10.0, heartbeat_s=3.0, backoff_base_s=BACKOFF_BASE_S,
                          backoff_cap_s=BACKOFF_CAP_S, backoff=policy),
        worker=WorkerConfig(work_s=0.0),
        progress_bound_s=120.0,
        max_steps=200 + 60 * jobs,
        reached=failed_together_and_retried,
        sometimes=(BUDGET_REFUSED_A_RETRY, CRASHED_JOB_TRIED_AGAIN),
        max_calls_per_job=MAX_ATTEMPTS,  # one call per attempt
        max_calls_total=budget.bound(jobs),  # first calls + what the budget lets through
        max_retries_per_window=capacity,  # no more retries at once than the API can serve
        retry_window_s=window_s,
        services=services(outage, capacity, window_s),
        description=__doc__ or "",
    )


SCENARIO = make_scenario()

#: The figure's run: 60 jobs, an outage of ten seconds, an API that then serves 5 calls
#: per 0.25 s (20 a second).
FIGURE_JOBS = 60
FIGURE_OUTAGE = Outage(0.0, 10.0)
FIGURE_CAPACITY = 5
FIGURE_WINDOW_S = 0.25
#: The figure compares the backoff policies alone: the retry budget is off.
FIGURE_GUARDRAILS = Guardrails().without("retry_budget")


def figure_scenario(policy: str, jobs: int = FIGURE_JOBS) -> Scenario:
    """Many jobs failing together under backoff ``policy``, without faults; run it under
    ``FIGURE_GUARDRAILS``, so that only the policy spreads (or does not spread) the herd."""
    scenario = make_scenario(jobs, workers=4, policy=policy, outage=FIGURE_OUTAGE,
                             capacity=FIGURE_CAPACITY, window_s=FIGURE_WINDOW_S, max_faults=0)
    return replace(scenario, max_steps=100 * jobs * MAX_ATTEMPTS, progress_bound_s=600.0)
