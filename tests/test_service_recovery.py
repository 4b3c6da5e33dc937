"""Recovery of the services a run calls (:mod:`failfirst.sim.service_recovery`), branch by
branch, on a real in-memory store: the provider's charges (FM_010) and a fenced
resource's rows (FM_006). The states are built by hand with the services' own public
operations; each repair is run twice to show that twice equals once."""

from __future__ import annotations

from failfirst.processor.queue import HandlerContext, JobQueue, QueueConfig
from failfirst.sim.service_recovery import reconcile_charges, restore_newest
from failfirst.sim.services import PaymentProvider, VersionedResource, payment_reference
from failfirst.store import Store
from failfirst.store.clock import SimClock

CONFIG = QueueConfig(lease_s=10.0, heartbeat_s=4.0)


def charge_handler(payload, ctx):
    return [("charged", payload["cents"])]


def _ctx(clock: SimClock, job: int, attempt: int = 1, token: int | None = None) -> HandlerContext:
    return HandlerContext(job, attempt, clock.now_s, token=token)


# -- FM_010: the provider's charges ------------------------------------------------------------


class Shop:
    """A queue and a payment provider on one store, each job in a state of the test's choosing."""

    def __init__(self) -> None:
        self.clock = SimClock()
        self.store = Store.memory(self.clock)
        self.queue = JobQueue(self.store, {"charge": charge_handler}, config=CONFIG)
        self.provider = PaymentProvider(self.store)

    def job(self, *, charges: int, state: str) -> int:
        # A job meant to stay pending is not due, so the claims below take the others.
        job = self.queue.enqueue("charge", {"cents": 500}, max_attempts=1,
                                 delay_s=1e6 if state == "pending" else 0.0)
        for attempt in range(1, charges + 1):  # each without a key: a new charge every time
            self.provider.charge(_ctx(self.clock, job, attempt), 500,
                                 reference=payment_reference(job), idempotency_key=None)
        if state == "pending":
            return job
        lease = self.queue.claim("w1")
        assert lease is not None and lease.job_id == job
        if state == "dead":
            assert self.queue.fail(lease, "timeout from the provider", "w1") == "dead"
        elif state == "succeeded":
            assert self.queue.commit(lease, [("charged", 500)], "w1")
        else:
            assert state == "leased"
        return job

    def live(self, job: int) -> list[str]:
        return [c.id for c in self.provider.charges_for(payment_reference(job))]


def test_a_job_charged_twice_keeps_its_first_charge_and_the_later_is_refunded():
    shop = Shop()
    pending = shop.job(charges=3, state="pending")
    done = shop.job(charges=2, state="succeeded")
    first_pending, *later_pending = shop.live(pending)
    first_done, later_done = shop.live(done)
    report = reconcile_charges(shop.queue, shop.provider)
    assert report.refunded == ((pending, later_pending[0]), (pending, later_pending[1]),
                               (done, later_done))
    assert shop.live(pending) == [first_pending] and shop.live(done) == [first_done]
    refunds = [(e["job"], e["charge"], e["by"]) for e in shop.store.events() if e["kind"] == "refund"]
    assert refunds == [(pending, c, "recovery") for c in later_pending] + [(done, later_done, "recovery")]
    assert all(f"{first_pending} stands" in e["reason"] for e in shop.store.events()
               if e["kind"] == "refund" and e["job"] == pending)


def test_a_pending_job_the_provider_charged_is_recorded_as_succeeded():
    shop = Shop()
    job = shop.job(charges=1, state="pending")
    report = reconcile_charges(shop.queue, shop.provider)
    assert report.completed == (job,) and report.refunded == ()
    assert shop.store.job(job).state == "succeeded"
    [event] = [e for e in shop.store.events() if e["kind"] == "reconcile"]
    assert (event["actor"], event["charge"], event["from"]) == ("recovery", shop.live(job)[0], "pending")


def test_a_dead_job_the_provider_charged_is_redriven_then_recorded_as_succeeded():
    shop = Shop()
    job = shop.job(charges=1, state="dead")
    assert [j for j, *_ in shop.store.dead_letters()] == [job]
    report = reconcile_charges(shop.queue, shop.provider)
    assert report.completed == (job,)
    assert shop.store.job(job).state == "succeeded" and shop.store.dead_letters() == []
    moves = [(e["kind"], e["from"], e["to"]) for e in shop.store.events()
             if e["job"] == job and e["actor"] == "recovery"]
    assert moves == [("redrive", "dead", "pending"), ("reconcile", "pending", "succeeded")]


def test_a_leased_job_and_a_job_never_charged_are_left_alone():
    shop = Shop()
    leased = shop.job(charges=2, state="leased")
    never = shop.job(charges=0, state="pending")
    dead = shop.job(charges=0, state="dead")
    ledger, image = shop.provider.ledger(), shop.store.image()
    report = reconcile_charges(shop.queue, shop.provider)
    assert report.refunded == () and report.completed == ()
    assert shop.provider.ledger() == ledger and shop.store.image() == image
    assert [shop.store.job(j).state for j in (leased, never, dead)] == ["leased", "pending", "dead"]


def test_reconciling_charges_twice_equals_once():
    shop = Shop()
    for charges, state in ((2, "pending"), (1, "dead"), (2, "succeeded"), (0, "pending")):
        shop.job(charges=charges, state=state)
    reconcile_charges(shop.queue, shop.provider)
    ledger, image, events = shop.provider.ledger(), shop.store.image(), shop.store.events()
    again = reconcile_charges(shop.queue, shop.provider)
    assert again.refunded == () and again.completed == ()
    assert (shop.provider.ledger(), shop.store.image(), shop.store.events()) == (ledger, image, events)


# -- FM_006: a fenced resource's rows ----------------------------------------------------------


def _resource(name: str = "documents", store: Store | None = None) -> tuple[SimClock, VersionedResource]:
    clock = SimClock() if store is None else store.clock
    store = store or Store.memory(clock)
    return clock, VersionedResource(store, name, fencing=False)


def test_a_zombies_late_write_is_replaced_by_the_newest_leases_value():
    clock, docs = _resource()
    docs.write(_ctx(clock, 1, token=1), "report", "draft")  # the zombie's lease
    docs.write(_ctx(clock, 1, token=2), "report", "final")  # the new holder
    docs.write(_ctx(clock, 1, token=1), "report", "draft")  # the zombie lands late
    assert restore_newest(docs) == ("report",)
    assert docs.rows["report"] == (2, "final")
    [event] = [e for e in docs.store.events() if e["kind"] == "restore"]
    assert (event["actor"], event["key"], event["value"], event["token"], event["stale"]) == (
        "recovery", "report", "final", 2, 1)


def test_a_tie_between_two_writes_of_one_lease_goes_to_the_later():
    clock, docs = _resource()
    docs.write(_ctx(clock, 1, token=3), "row", "first")
    docs.write(_ctx(clock, 1, token=3), "row", "second")
    docs.write(_ctx(clock, 1, token=2), "row", "stale")
    assert restore_newest(docs) == ("row",)
    assert docs.rows["row"] == (3, "second")


def test_rows_at_their_newest_value_are_left_alone_and_keys_come_back_sorted():
    clock, docs = _resource()
    for key in ("b", "a", "c"):
        docs.write(_ctx(clock, 1, token=2), key, f"{key}-new")
        docs.write(_ctx(clock, 1, token=1), key, f"{key}-old")
    docs.write(_ctx(clock, 2, token=5), "ok", "fine")
    assert restore_newest(docs) == ("a", "b", "c")
    assert [e["key"] for e in docs.store.events() if e["kind"] == "restore"] == ["a", "b", "c"]
    assert docs.rows["ok"] == (5, "fine")
    events = docs.store.events()
    assert restore_newest(docs) == () and docs.store.events() == events  # twice equals once


def test_each_resource_is_judged_by_its_own_writes_only():
    clock, docs = _resource("documents")
    _, accounts = _resource("accounts", store=docs.store)
    docs.write(_ctx(clock, 1, token=1), "row", "doc")
    accounts.write(_ctx(clock, 2, token=9), "row", "account")
    assert restore_newest(docs) == () and restore_newest(accounts) == ()
    assert docs.rows["row"] == (1, "doc") and accounts.rows["row"] == (9, "account")
