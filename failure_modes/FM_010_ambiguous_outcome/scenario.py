"""FM_010 — ambiguous external outcome: a timed-out payment call is retried, and the
customer is charged twice.

Two workers, two payment jobs, a reaper, and a payment provider behind a client
library with a 2 s timeout. The charge call can go wrong in three ways that look the
same to the client — the request is lost before the provider sees it, the response
is lost after the provider charged, or the provider charges only after the client
gave up — and a worker can crash or pause after the call. Each is a timeout or a
redelivery: the job is tried again. Without an idempotency key the retry is a new
charge. With the key (derived from the job, the same on every attempt) and a status
query by key before any retry, the provider charges each job once.
"""

from __future__ import annotations

from typing import Any

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import HandlerContext, QueueConfig
from failfirst.processor.worker import WorkerConfig
from failfirst.sim.scenario import FaultPlan, JobSpec, Scenario, Sometimes
from failfirst.sim.services import PaymentClient, PaymentProvider
from failfirst.store import Store

PROVIDER = "payments"
TIMEOUT_S = 2.0
#: A slow provider finishes this long after the request: past the client's timeout.
SLOW_S = 5.0
MAX_ATTEMPTS = 5


def take_payment(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """Charge the order through the payment client; record the payment locally."""
    client: PaymentClient = ctx.services[PROVIDER]
    charge = client.charge(ctx, int(payload["amount_cents"]))
    return [("payment", charge.amount_cents)]


def services(store: Store, guard: Guardrails) -> dict[str, Any]:
    """A fresh provider per run, behind the client library."""
    return {PROVIDER: PaymentClient(PaymentProvider(store, PROVIDER), timeout_s=TIMEOUT_S,
                                    slow_s=SLOW_S)}


def retried_after_a_charge(events: list[dict[str, Any]]) -> bool:
    """The fault under study: a job was tried again after a call whose charge the
    provider had made (or was making) — the retry had to decide without knowing."""
    charged: set[int] = set()
    for e in events:
        if e["kind"] == "charge":
            charged.add(e["job"])
        elif e["kind"] == "claim" and e["job"] in charged:
            return True
    return False


def retry_found_the_charge(events: list[dict[str, Any]]) -> bool:
    """A retry asked the provider for its key's status and found the earlier charge."""
    return any(e["kind"] == "status" and str(e.get("found", "")).startswith("ch_") for e in events)


def retry_met_a_charge_in_progress(events: list[dict[str, Any]]) -> bool:
    """A retry met a charge the slow provider was still processing (status processing,
    or a conflict): it waited instead of charging again."""
    return any((e["kind"] == "status" and e.get("found") == "processing") or e["kind"] == "conflict"
               for e in events)


SCENARIO = Scenario(
    id="FM_010",
    title="Ambiguous external outcome",
    guardrail="idempotency_key",
    invariants=("INV_001",),
    handlers={"take_payment": take_payment},
    jobs=(JobSpec("take_payment", {"order": "B-1", "amount_cents": 2599},
                  max_attempts=MAX_ATTEMPTS),
          JobSpec("take_payment", {"order": "B-2", "amount_cents": 750},
                  max_attempts=MAX_ATTEMPTS)),
    workers=2,
    faults=FaultPlan(
        points={
            "charge": ("request_lost", "response_lost", "slow_response"),
            "claimed": ("crash", "pause"),
        },
        max_faults=3,
        pause_s=15.0,
        restart_s=1.0,
    ),
    queue=QueueConfig(lease_s=10.0, heartbeat_s=4.0, backoff_base_s=2.0, backoff_cap_s=20.0),
    worker=WorkerConfig(work_s=1.0),
    progress_bound_s=120.0,
    max_steps=200,
    reached=retried_after_a_charge,
    sometimes=(Sometimes("a retry found the earlier charge by its key", retry_found_the_charge),
               Sometimes("a retry met a charge still processing", retry_met_a_charge_in_progress)),
    services=services,
    description=__doc__ or "",
)


def run_keeping_provider(scenario: Scenario, guard: bool, choices: list[int]):
    """Replay one schedule and keep the run's provider, whose ledger recovery reads.
    Returns (the run's store, the provider, the queue)."""
    from failfirst.sim.choices import ReplayChoices
    from failfirst.sim.scheduler import Simulation

    sim = Simulation(scenario, scenario.guardrails(guard), ReplayChoices(choices))
    outcome = sim.run()
    return outcome.store, sim.queue.services[PROVIDER].provider, sim.queue
