"""FM_003 — retry amplification: retries at three layers multiply the load on a
failing dependency.

Two workers and three jobs that each sync exchange rates from a downstream service,
which is down for the whole default run. The call goes through three layers that
each retry three times: the client library (tenacity, 4 tries 0.2 s apart), the
handler's own loop (4 tries 1 s apart) and the queue's redelivery (4 attempts with
capped exponential backoff). Without the guardrail one job sends 4 x 4 x 4 = 64
requests to a service that is already failing. With it, only the queue retries, a
token-bucket retry budget caps retries at about 10% of first calls, and the queue's
backoff is jittered: at most one request per attempt, and a bounded total.

``figure_scenario()`` is the longer run behind the chapter's figure: a steady stream
of jobs, more workers, and an outage window in the middle.
"""

from __future__ import annotations

from typing import Any

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import HandlerContext, QueueConfig
from failfirst.processor.worker import WorkerConfig
from failfirst.sim.scenario import FaultPlan, JobSpec, Scenario
from failfirst.sim.services import Client, Downstream, DownstreamError, Outage, RetryBudget
from failfirst.sim.sometimes import BUDGET_REFUSED_A_RETRY, CRASHED_JOB_TRIED_AGAIN
from failfirst.store import Store

#: Retries at each layer: 3, so 4 tries per layer.
CLIENT_RETRIES = 3
HANDLER_RETRIES = 3
MAX_ATTEMPTS = 4
CLIENT_WAIT_S = 0.2
HANDLER_WAIT_S = 1.0
BUDGET_RATIO = 0.1
BUDGET_CAPACITY = 2.0
SERVICE = "rates-api"


def sync_rates(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """Fetch the day's exchange rates for one currency, retrying in the handler too."""
    client: Client = ctx.services[SERVICE]
    tries = 1 + ctx.inner_retries(HANDLER_RETRIES)
    for i in range(tries):
        try:
            client.call(ctx)
            return [("rates", 1)]
        except DownstreamError:
            if i == tries - 1:
                raise
            ctx.sleep(HANDLER_WAIT_S)
    raise AssertionError("unreachable")


def services(outages: tuple[Outage, ...]):
    """The per-run services: the rates API behind its client library and a retry budget."""

    def make(store: Store, guard: Guardrails) -> dict[str, Any]:
        service = Downstream(store, SERVICE, outages)
        budget = RetryBudget(BUDGET_RATIO, BUDGET_CAPACITY)
        return {SERVICE: Client(service, budget, retries=CLIENT_RETRIES, wait_s=CLIENT_WAIT_S)}

    return make


def retried_a_failed_call(events: list[dict[str, Any]]) -> bool:
    """A call failed during the outage and its job tried again (sent or refused)."""
    failed = set()
    for e in events:
        tried = e["kind"] == "call" or (e["kind"] == "refused" and e.get("attempted") == "call")
        if tried and e["job"] in failed:
            return True
        if e["kind"] == "call" and not e["ok"]:
            failed.add(e["job"])
    return False


#: The default run's outage: the dependency is down from the start to past the end.
WHOLE_RUN = Outage(0.0, 300.0)


def make_scenario(jobs: int = 3, *, workers: int = 2, arrival_s: float = 0.0,
                  outage: Outage = WHOLE_RUN, max_faults: int = 2) -> Scenario:
    """The scenario with ``jobs`` jobs arriving every ``arrival_s`` seconds."""
    specs = tuple(JobSpec("sync_rates", {"currency": f"C{i:02d}"}, max_attempts=MAX_ATTEMPTS,
                          delay_s=round(i * arrival_s, 6)) for i in range(jobs))
    budget = RetryBudget(BUDGET_RATIO, BUDGET_CAPACITY)
    return Scenario(
        id="FM_003",
        title="Retry amplification",
        guardrail="single_layer_retry",
        companions=("retry_budget", "backoff_jitter"),
        invariants=("INV_005",),
        handlers={"sync_rates": sync_rates},
        jobs=specs,
        workers=workers,
        faults=FaultPlan(points={"claimed": ("crash", "pause")}, max_faults=max_faults,
                         pause_s=40.0, restart_s=1.0),
        queue=QueueConfig(lease_s=30.0, heartbeat_s=10.0, backoff_base_s=2.0,
                          backoff_cap_s=30.0),
        worker=WorkerConfig(work_s=0.5),
        progress_bound_s=300.0,
        max_steps=100 + 40 * jobs,
        reached=retried_a_failed_call,
        sometimes=(BUDGET_REFUSED_A_RETRY, CRASHED_JOB_TRIED_AGAIN),
        max_calls_per_job=MAX_ATTEMPTS,  # one request per attempt
        max_calls_total=budget.bound(jobs),  # first calls + what the budget lets through
        services=services((outage,)),
        description=__doc__ or "",
    )


SCENARIO = make_scenario()


#: The figure's outage: ten seconds in the middle of a thirty-second stream of jobs.
SHORT_OUTAGE = Outage(10.0, 20.0)


def figure_scenario(jobs: int = 60, workers: int = 8) -> Scenario:
    """A steady stream (two jobs a second for 30 s) against an outage from 10 s to 20 s."""
    return make_scenario(jobs, workers=workers, arrival_s=0.5, outage=SHORT_OUTAGE, max_faults=0)
