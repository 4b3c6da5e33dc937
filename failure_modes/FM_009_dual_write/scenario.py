"""FM_009 — dual write: the database and the message disagree.

Two workers, two order jobs (the second a little later), a reaper, a message broker with one consumer (the
service that emails the customer), and — with the guardrail — the outbox relay.
Each handler marks its order shipped (its effect) and publishes an
``order.shipped`` message. Without the transactional outbox the worker sends the
message to the broker itself, a step apart from the commit: after it (an on-commit
hook; ``SCENARIO``), so a crash between the two loses the message, or before it
(``publish_first_scenario()``), so the message announces a change that then does
not commit. With the outbox, the message is a row written in the commit's own
transaction; the relay publishes it at least once and marks it, and the consumer
drops repeats by message id. Crashes strike the worker around its commit and the
relay between publishing and marking, and inside the marking transaction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import BROKER_SERVICE, HandlerContext, QueueConfig
from failfirst.processor.worker import WorkerConfig
from failfirst.sim.scenario import FaultPlan, JobSpec, Scenario, Sometimes
from failfirst.sim.services import Broker, Consumer
from failfirst.store import Store


def ship_order(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
    """Mark the order shipped, and tell the customer-email service about it."""
    ctx.publish("order.shipped", {"order": payload["order"]})
    return [("shipped", 1)]


def services(store: Store, guard: Guardrails) -> dict[str, Any]:
    """A fresh broker and consumer per run; the consumer de-duplicates under the guardrail."""
    return {BROKER_SERVICE: Broker(store, Consumer(store, dedup=guard.idempotent_consumer))}


#: Fault points between a change and its message: the worker's (around its commit,
#: and between the commit and a direct publish) and the relay's.
GAP_POINTS = frozenset({"commit", "committed", "message_sent", "relayed", "mark"})


def struck_between_change_and_message(events: list[dict[str, Any]]) -> bool:
    """The fault under study: a crash or a lost acknowledgement at a point between a
    change and its message."""
    return any(e["kind"] in ("crash", "lost_ack") and e.get("point") in GAP_POINTS
               for e in events)


def repeat_dropped(events: list[dict[str, Any]]) -> bool:
    """A message was delivered twice (the relay died between publishing and marking) and
    the consumer dropped the repeat by its id."""
    return any(e["kind"] == "duplicate" for e in events)


def relayed_after_a_lost_ack(events: list[dict[str, Any]]) -> bool:
    """A commit's acknowledgement was lost, yet its message was relayed: the outbox row
    committed with the change, whatever the worker heard."""
    lost = {e["job"] for e in events if e["kind"] == "lost_ack"}
    return any(e["kind"] == "publish" and e["job"] in lost for e in events)


SCENARIO = Scenario(
    id="FM_009",
    title="Dual write",
    guardrail="transactional_outbox",
    companions=("idempotent_consumer",),
    invariants=("INV_001", "INV_002"),
    handlers={"ship_order": ship_order},
    # The second order arrives a little later: fewer interleavings to explore, and still
    # a second job whose message can meet the first one's faults.
    jobs=(JobSpec("ship_order", {"order": "C-1"}),
          JobSpec("ship_order", {"order": "C-2"}, delay_s=3.0)),
    workers=2,
    relay=True,
    faults=FaultPlan(
        points={
            "commit": ("crash", "lost_ack"),
            "committed": ("crash",),
            "message_sent": ("crash",),
            "relayed": ("crash",),
            "mark": ("crash",),
        },
        max_faults=3,
        pause_s=15.0,
        restart_s=1.0,
    ),
    queue=QueueConfig(lease_s=10.0, heartbeat_s=4.0),
    worker=WorkerConfig(work_s=1.0),
    progress_bound_s=60.0,
    max_steps=200,
    reached=struck_between_change_and_message,
    sometimes=(Sometimes("a repeated message dropped by the consumer", repeat_dropped),
               Sometimes("a message relayed after a lost acknowledgement", relayed_after_a_lost_ack)),
    services=services,
    description=__doc__ or "",
)


def publish_first_scenario() -> Scenario:
    """The other naive order: the worker publishes, then commits."""
    return dataclasses.replace(SCENARIO, queue=dataclasses.replace(SCENARIO.queue,
                                                                   dual_write="publish_first"))


def run_keeping_queue(scenario: Scenario, guard: bool, choices: list[int]):
    """Replay one schedule and keep the run's queue, with its broker and consumer, for
    the recovery sweep. Returns (the run's store, the queue)."""
    from failfirst.sim.choices import ReplayChoices
    from failfirst.sim.scheduler import Simulation

    sim = Simulation(scenario, scenario.guardrails(guard), ReplayChoices(choices))
    outcome = sim.run()
    return outcome.store, sim.queue
