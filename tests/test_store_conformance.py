"""Two stores, one set of edge cases: every operation of the store interface
(:mod:`failfirst.store.interface`), run against each backend the same way.

Backends: SQLite in memory (the simulator's store: events in memory, wake-up times
memoised) and in a file (events in a table, every read goes to SQL); PostgreSQL as a
simulation store (a private schema, events in memory) and as a real store (a schema
of a throwaway database, events in a table). The PostgreSQL half is marked
``postgresql``: ``make test`` runs the SQLite half, ``make test-pg`` the other.

Beside the ordinary cases, the cases that only recovery or a guardrail switched off
produce: leases without a deadline (NULL, or infinite with lease expiry off), an
effect part already written by another path, ties (between deadlines, between copies
written by one token), empty batches, batch limits, dead letters and redrive, the
outbox, the attempt log, reset. Where the backends disagree, the test says so with a
strict ``xfail`` naming the difference: it is reported, not papered over, and the
mark fails once the difference is gone.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from failfirst.store import Job, Store, pgtools
from failfirst.store.clock import SimClock
from failfirst.store.postgresql import PostgresStore
from failfirst.store.rows import NOT_JSON, NOT_OBJECT, MalformedPayload

SQLITE = ("sqlite-memory", "sqlite-file")
POSTGRESQL = ("pg-simulation", "pg-schema")
#: What each backend raises when a constraint refuses a row (the interface wraps none).
CONSTRAINT_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)
INF = float("inf")


@dataclass
class Backend:
    kind: str
    store: Any
    clock: SimClock

    @property
    def events_in_memory(self) -> bool:
        return self.kind in ("sqlite-memory", "pg-simulation")


@pytest.fixture(scope="module")
def pg_database(pg_admin_url: str) -> Iterator[str]:
    with pgtools.throwaway_database(pg_admin_url, tag="ff_conform") as url:
        yield url


def _open(kind: str, clock: SimClock, request: pytest.FixtureRequest, tmp_path) -> Any:
    if kind == "sqlite-memory":
        return Store.memory(clock)
    if kind == "sqlite-file":
        return Store.open_file(str(tmp_path / "conformance.db"), clock)
    url = request.getfixturevalue("pg_database")
    if kind == "pg-simulation":
        return PostgresStore.simulation(url, clock)
    return PostgresStore.open(f"{url}?schema=c_{secrets.token_hex(6)}", clock)


@pytest.fixture(params=[
    *SQLITE, *(pytest.param(kind, marks=pytest.mark.postgresql) for kind in POSTGRESQL)])
def backend(request: pytest.FixtureRequest, tmp_path) -> Iterator[Backend]:
    clock = SimClock()
    store = _open(request.param, clock, request, tmp_path)
    yield Backend(request.param, store, clock)
    store.close()


def differs_on(request: pytest.FixtureRequest, kinds: tuple[str, ...], reason: str) -> None:
    """Mark this test, on the backends ``kinds``, as a known difference (strict xfail)."""
    if request.node.callspec.params["backend"] in kinds:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


# -- helpers: every write inside a transaction, as the interface requires ---------------------


def add_job(store: Any, *, run_at_s: float = 0.0, key: str | None = None, max_attempts: int = 3,
            type_: str = "deliver", payload: dict[str, Any] | None = None) -> int:
    with store.transaction():
        return store.insert_job(type_, json.dumps(payload or {"n": 1}), key, run_at_s, max_attempts)


def take_lease(store: Any, job_id: int, owner: str, expires_s: float | None) -> int:
    """Claim ``job_id`` for ``owner`` (pending -> leased, a new token), as the queue does."""
    with store.transaction():
        state, token = store.job_state(job_id)
        assert state == "pending"
        new = store.compare_and_set_state(
            job_id, "pending", "leased", token, bump_token=True,
            columns={"lease_owner": owner, "lease_expires_s": expires_s})
    assert new == token + 1
    return new


def kinds(store: Any) -> list[str]:
    return [e["kind"] for e in store.events()]


# -- transactions and the event log ---------------------------------------------------------


def test_a_committed_transaction_keeps_its_rows_and_its_events(backend):
    store = backend.store
    with store.transaction():
        assert store.in_transaction
        job = store.insert_job("deliver", '{"n":1}', None, 0.0, 3)
        store.append_event(actor="client", job=job, kind="enqueue", to_state="pending", token=0)
    assert not store.in_transaction
    assert [j.id for j in store.jobs()] == [job] and kinds(store) == ["enqueue"]


def test_an_exception_rolls_back_every_table_and_the_events_with_it(backend):
    store = backend.store
    job = add_job(store)
    before = (store.jobs(), store.events(), store.image())
    version = store.version
    with pytest.raises(RuntimeError, match="crash"), store.transaction():
        store.insert_job("deliver", "{}", "k", 0.0, 1)
        store.compare_and_set_state(job, "pending", "leased", 0, bump_token=True, columns={})
        store.insert_attempt(job, 1, "w1", 0.0)
        store.insert_effect(job, "a", 1, 5, 1, once=True)
        store.insert_dead_letter(job, "why", 0.0)
        store.insert_outbox_message("m1", job, 1, "topic", "{}", 0.0)
        store.append_event(actor="w1", job=job, kind="claim", token=1)
        store.append_events([("w1", job, "effect", None, None, 1, {"part": "a"})])
        raise RuntimeError("crash inside the transaction")
    assert not store.in_transaction and store.version > version
    assert (store.jobs(), store.events(), store.image()) == before
    assert (store.attempts(), store.effects(), store.dead_letters(), store.outbox()) == ([], [], [], [])


def test_transactions_do_not_nest_and_no_table_is_written_outside_one(backend):
    store = backend.store
    job = add_job(store)
    with store.transaction(), pytest.raises(AssertionError):
        with store.transaction():
            pass  # pragma: no cover
    writes = [
        lambda: store.insert_job("deliver", "{}", None, 0.0, 1),
        lambda: store.compare_and_set_state(job, "pending", "leased", 0, bump_token=True, columns={}),
        lambda: store.compare_and_set_states("pending", "leased", [(job, 0, ())], bump_token=True,
                                             columns=()),
        lambda: store.extend_lease(job, None, 5.0),
        lambda: store.insert_attempt(job, 1, "w1", 0.0),
        lambda: store.insert_attempts([(job, 1, "w1", 0.0)]),
        lambda: store.end_attempt(job, 1, "failed"),
        lambda: store.end_attempts([(job, 1)], "failed"),
        lambda: store.insert_effect(job, "a", 1, 1, 1, once=True),
        lambda: store.insert_effects_once([(job, "a", 1, 1, 1)]),
        lambda: store.delete_effect_part(job, "a", 1),
        lambda: store.insert_dead_letter(job, "why", 0.0),
        lambda: store.delete_dead_letter(job),
        lambda: store.insert_outbox_message("m1", job, 1, "t", "{}", 0.0),
        lambda: store.mark_outbox_published("m1", 1.0),
    ]
    for write in writes:
        with pytest.raises(AssertionError):
            write()
    assert [(j.state, j.token) for j in store.jobs()] == [("pending", 0)]
    assert (store.attempts(), store.effects(), store.dead_letters(), store.outbox()) == ([], [], [], [])


def test_events_outside_a_transaction_are_written_at_once_and_survive_a_rollback(backend):
    store = backend.store
    store.append_event(actor="w1", job=None, kind="crash", point="claimed")
    with pytest.raises(RuntimeError), store.transaction():
        store.append_event(actor="w1", job=None, kind="claim")
        raise RuntimeError
    store.append_events([("w2", None, "pause", None, None, None, {}),
                         ("w3", None, "restart", None, None, None, {})])
    assert kinds(store) == ["crash", "pause", "restart"]


def test_an_event_reads_back_with_every_field_seq_from_one_and_time_from_the_clock(backend):
    store, clock = backend.store, backend.clock
    job = add_job(store)
    clock.advance_to(2.5)
    data = {"reason": "lease expired: ünïcode \"quoted\"", "n": 3, "ratio": 0.1 + 0.2,
            "nested": {"b": [1, None, True], "a": "x"}, "none": None}
    with store.transaction():
        store.append_event(actor="reaper", job=job, kind="expire", from_state="leased",
                           to_state="pending", token=7, **data)
    clock.advance_to(4.0)
    store.append_event(actor="sim", job=None, kind="end")
    first, second = store.events()
    assert first == {"seq": 1, "t": 2.5, "actor": "reaper", "job": job, "kind": "expire",
                     "from": "leased", "to": "pending", "token": 7, **data}
    assert second == {"seq": 2, "t": 4.0, "actor": "sim", "job": None, "kind": "end",
                      "from": None, "to": None, "token": None}


def test_append_events_writes_each_row_in_order_with_one_time_and_nothing_for_none(backend):
    store, clock = backend.store, backend.clock
    job = add_job(store)
    clock.advance_to(1.0)
    with store.transaction():
        store.append_events([])
        store.append_events([("w1", job, "claim", "pending", "leased", 1, {"attempt": 1}),
                             ("w1", job, "effect", None, None, 1, {}),
                             ("w1", job, "complete", "leased", "succeeded", 1, {"tx": 4})])
    store.append_events([])
    events = store.events()
    assert [(e["seq"], e["t"], e["kind"], e["from"], e["to"], e["token"]) for e in events] == [
        (1, 1.0, "claim", "pending", "leased", 1), (2, 1.0, "effect", None, None, 1),
        (3, 1.0, "complete", "leased", "succeeded", 1)]
    assert events[0]["attempt"] == 1 and events[2]["tx"] == 4 and "attempt" not in events[1]


def test_tx_count_counts_every_transaction_begun_rolled_back_or_not(backend):
    store = backend.store
    start = store.tx_count
    add_job(store)
    with pytest.raises(RuntimeError), store.transaction():
        raise RuntimeError
    with store.transaction():
        assert store.tx_count == start + 3
    assert store.tx_count == start + 3


def test_a_rolled_back_job_leaves_no_gap_in_job_ids(backend, request):
    differs_on(request, POSTGRESQL, "a PostgreSQL identity is not transactional: a rolled-back "
               "insert uses up its id (SQLite reuses it)")
    store = backend.store
    add_job(store)
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_job("deliver", "{}", None, 0.0, 1)
        raise RuntimeError
    assert add_job(store) == 2


def test_a_rolled_back_event_leaves_no_gap_in_seq(backend, request):
    differs_on(request, ("pg-schema",), "a PostgreSQL identity is not transactional: the events "
               "table's seq skips the rolled-back event (SQLite's file and both in-memory logs do not)")
    store = backend.store
    store.append_event(actor="a", job=None, kind="one")
    with pytest.raises(RuntimeError), store.transaction():
        store.append_event(actor="a", job=None, kind="rolled back")
        raise RuntimeError
    store.append_event(actor="a", job=None, kind="two")
    assert [(e["seq"], e["kind"]) for e in store.events()] == [(1, "one"), (2, "two")]


def test_a_refused_row_rolls_back_the_whole_transaction(backend):
    store = backend.store
    add_job(store, key="order-1")
    with pytest.raises(CONSTRAINT_ERRORS), store.transaction():
        store.insert_job("deliver", "{}", "order-2", 0.0, 1)
        store.insert_job("deliver", "{}", "order-1", 0.0, 1)  # the key is taken
    assert [j.idempotency_key for j in store.jobs()] == ["order-1"]
    assert not store.in_transaction
    add_job(store, key="order-2")  # the store is usable afterwards
    assert store.job_by_key("order-2") is not None


def test_a_row_for_a_job_that_does_not_exist_is_refused(backend, request):
    differs_on(request, SQLITE, "SQLite does not enforce the schema's REFERENCES clauses "
               "(PRAGMA foreign_keys is off); PostgreSQL refuses the row")
    store = backend.store
    with pytest.raises(CONSTRAINT_ERRORS), store.transaction():
        store.insert_effect(99, "a", 1, 1, 1, once=False)
    assert store.effects() == []


# -- jobs --------------------------------------------------------------------------------------


def test_a_job_reads_back_with_every_column(backend):
    store = backend.store
    backend.clock.advance_to(3.0)
    first = add_job(store, run_at_s=4.5, key="order-7", max_attempts=2, type_="charge",
                    payload={"cents": 500, "to": "ünïcode", "items": [1, 2]})
    second = add_job(store)
    assert (first, second) == (1, 2)
    assert store.job(first) == Job(1, "charge", {"cents": 500, "to": "ünïcode", "items": [1, 2]},
                                   "order-7", "pending", 4.5, 0, 2, 0, None, None, None)
    assert [j.id for j in store.jobs()] == [1, 2]
    assert store.job(3) is None and store.job_state(3) is None
    assert store.job_state(first) == ("pending", 0)
    assert store.job_by_key("order-7") == first and store.job_by_key("order-8") is None
    assert store.job_states() == {1: "pending", 2: "pending"}
    assert store.counts_by_state() == {"pending": 2}


#: A payload as a damaged store may hold it -> why it is not a JSON object (None: it is one).
PAYLOADS = {
    '{"a": 1}': None, "{}": None, ' {"a": [1, "\\u00e9"]}\n': None, '{"a": 1, "a": 2}': None,
    '{"a": 1e999}': None,  # a number too large for a float is still JSON (read as inf)
    "[1, 2]": NOT_OBJECT, '"x"': NOT_OBJECT, "3": NOT_OBJECT, "null": NOT_OBJECT,
    "not json": NOT_JSON, '{"a":': NOT_JSON, "": NOT_JSON, '{"a": "\x01"}': NOT_JSON,
    # Python's json reads these constants; JSON (and SQLite's json_valid) has none of them
    '{"a": NaN}': NOT_JSON, '{"a": Infinity}': NOT_JSON, '{"a": -Infinity}': NOT_JSON,
}


def test_a_payload_is_judged_alike_by_the_checkers_read_and_by_the_handlers(backend):
    store = backend.store
    with store.transaction():
        ids = [store.insert_job("deliver", text, None, 0.0, 1) for text in PAYLOADS]
    take_lease(store, ids[0], "w1", 5.0)
    assert store.job_records() == [(job_id, "leased" if job_id == ids[0] else "pending",
                                    int(job_id == ids[0]), why)
                                   for job_id, why in zip(ids, PAYLOADS.values(), strict=True)]
    for job_id, why in zip(ids, PAYLOADS.values(), strict=True):
        payload = store.job(job_id).payload
        if why is None:
            assert isinstance(payload, dict)
        else:
            assert payload == MalformedPayload(why)


def test_claim_order_is_fifo_by_run_at_then_id_within_the_limit(backend):
    store = backend.store
    ids = [add_job(store, run_at_s=t) for t in (5.0, 1.0, 1.0, 0.0, 9.0)]
    backend.clock.advance_to(5.0)
    with store.transaction():  # PostgreSQL selects and row-locks in the claim's transaction
        assert store.next_claimable_job(5.0).id == ids[3]
        assert [j.id for j in store.next_claimable_jobs(5.0, 3)] == [ids[3], ids[1], ids[2]]
        assert [j.id for j in store.next_claimable_jobs(5.0, 10)] == [ids[3], ids[1], ids[2], ids[0]]
        assert [j.id for j in store.next_claimable_jobs(0.5, 10)] == [ids[3]]
        assert store.next_claimable_jobs(-1.0, 10) == [] and store.next_claimable_job(-1.0) is None


def test_a_job_due_exactly_now_is_claimable_and_a_leased_one_is_not(backend):
    store = backend.store
    job = add_job(store, run_at_s=2.0)
    assert store.next_run_at_s() == 2.0
    assert not store.has_claimable(1.999) and store.has_claimable(2.0)
    take_lease(store, job, "w1", 12.0)
    assert not store.has_claimable(100.0) and store.next_run_at_s() is None
    with store.transaction():
        assert store.next_claimable_jobs(100.0, 5) == []


def test_an_empty_store_answers_every_read_with_nothing(backend):
    store = backend.store
    assert store.jobs() == [] and store.job_states() == {} and store.counts_by_state() == {}
    assert store.next_run_at_s() is None and store.next_lease_expiry_s() is None
    assert not store.has_claimable(1e9) and not store.has_expired_lease(1e9)
    with store.transaction():
        assert store.next_claimable_jobs(1e9, 10) == [] and store.next_claimable_job(1e9) is None
    assert store.expired_leases(1e9, 10) == [] and store.leases_ending_after(0.0, 10) == []
    assert store.job_leased_by("w1") is None
    assert store.attempts() == [] and store.effects() == [] and store.dead_letters() == []
    assert store.outbox() == [] and store.unpublished_outbox(10) == [] and store.next_outbox_s() is None
    assert store.effect_parts_expected(1) == {} and store.events() == []


# -- the fenced compare-and-set ----------------------------------------------------------------


def test_compare_and_set_moves_a_job_only_from_its_state_with_its_token(backend):
    store = backend.store
    job = add_job(store)
    with store.transaction():
        assert store.compare_and_set_state(job, "leased", "succeeded", 0, bump_token=False,
                                           columns={}) is None  # wrong state
        assert store.compare_and_set_state(job, "pending", "leased", 1, bump_token=True,
                                           columns={}) is None  # stale token
        assert store.compare_and_set_state(99, "pending", "leased", 0, bump_token=True,
                                           columns={}) is None  # no such job
    assert store.job_state(job) == ("pending", 0)
    version = store.version
    with store.transaction():
        assert store.compare_and_set_state(
            job, "pending", "leased", 0, bump_token=True,
            columns={"attempts": 1, "lease_owner": "w1", "lease_expires_s": 10.0}) == 1
    assert store.version > version
    got = store.job(job)
    assert (got.state, got.token, got.attempts, got.lease_owner, got.lease_expires_s) == (
        "leased", 1, 1, "w1", 10.0)
    with store.transaction():  # no token: the job's own is kept and read back (recovery, redrive)
        assert store.compare_and_set_state(job, "leased", "pending", None, bump_token=False,
                                           columns={"lease_owner": None, "lease_expires_s": None}) == 1
    got = store.job(job)
    assert (got.state, got.token, got.lease_owner, got.lease_expires_s) == ("pending", 1, None, None)


def test_a_refused_compare_and_set_changes_nothing(backend):
    store = backend.store
    job = add_job(store)
    take_lease(store, job, "w2", 10.0)  # token 1
    image = store.image()
    with store.transaction():
        assert store.compare_and_set_state(job, "leased", "succeeded", 0, bump_token=False,
                                           columns={"lease_owner": None, "last_error": "zombie"}) is None
    assert store.image() == image


def test_compare_and_set_many_moves_exactly_the_rows_that_match(backend):
    store = backend.store
    a, b, c = (add_job(store) for _ in range(3))
    take_lease(store, c, "w9", 10.0)
    with store.transaction():
        assert store.compare_and_set_states("pending", "leased", [], bump_token=True, columns=()) == 0
        moved = store.compare_and_set_states(
            "pending", "leased",
            [(a, 0, (1, "w1", 10.0)), (b, 5, (1, "w1", 10.0)), (c, 1, (1, "w1", 10.0))],
            bump_token=True, columns=("attempts", "lease_owner", "lease_expires_s"))
    assert moved == 1  # b: stale token; c: not pending (the caller then rolls back)
    assert [(j.state, j.token, j.attempts, j.lease_owner) for j in store.jobs()] == [
        ("leased", 1, 1, "w1"), ("pending", 0, 0, None), ("leased", 1, 0, "w9")]


# -- leases: expiry, heartbeats, leases without a deadline --------------------------------------


def test_expired_leases_come_by_deadline_then_id_within_the_limit(backend):
    store = backend.store
    ids = [add_job(store, max_attempts=4) for _ in range(5)]
    for job, expires_s in zip(ids, (7.0, 5.0, 5.0, 9.0, None), strict=True):
        take_lease(store, job, "w1", expires_s)
    assert store.expired_leases(4.999, 10) == [] and not store.has_expired_lease(4.999)
    assert store.has_expired_lease(5.0)
    assert store.expired_leases(5.0, 10) == [(ids[1], 1, 0, 4), (ids[2], 1, 0, 4)]
    assert store.expired_leases(100.0, 2) == [(ids[1], 1, 0, 4), (ids[2], 1, 0, 4)]
    assert [row[0] for row in store.expired_leases(100.0, 10)] == [ids[1], ids[2], ids[0], ids[3]]
    assert store.next_lease_expiry_s() == 5.0


def test_a_lease_without_a_deadline_never_expires(backend):
    store = backend.store
    null, infinite = add_job(store), add_job(store)
    take_lease(store, null, "w1", None)  # a lease written without one
    take_lease(store, infinite, "w2", INF)  # lease expiry off: the claim writes now + inf
    assert store.job(infinite).lease_expires_s == INF and store.job(null).lease_expires_s is None
    assert store.expired_leases(1e300, 10) == [] and not store.has_expired_lease(1e300)
    assert store.next_lease_expiry_s() == INF


def test_leases_ending_after_finds_leases_without_a_deadline_by_id_within_the_limit(backend):
    store = backend.store
    ids = [add_job(store) for _ in range(5)]
    for job, expires_s in zip(ids, (INF, 15.0, 20.0, None, 25.0), strict=True):
        take_lease(store, job, "w1", expires_s)
    add_job(store)  # pending: never a lease
    assert store.leases_ending_after(20.0, 10) == [(ids[0], 1), (ids[3], 1), (ids[4], 1)]
    assert store.leases_ending_after(20.0, 2) == [(ids[0], 1), (ids[3], 1)]
    assert store.leases_ending_after(1e300, 10) == [(ids[0], 1), (ids[3], 1)]


def test_extend_lease_is_fenced_by_the_token_and_only_for_a_leased_job(backend):
    store = backend.store
    job, idle = add_job(store), add_job(store)
    take_lease(store, job, "w1", 10.0)
    version = store.version
    with store.transaction():
        assert store.extend_lease(job, 0, 50.0) is False  # a stale token
        assert store.extend_lease(idle, None, 50.0) is False  # not leased
    assert store.job(job).lease_expires_s == 10.0 and store.next_lease_expiry_s() == 10.0
    with store.transaction():
        assert store.extend_lease(job, 1, 14.0) is True
    assert store.version > version
    assert store.job(job).lease_expires_s == 14.0 and store.next_lease_expiry_s() == 14.0
    with store.transaction():
        assert store.extend_lease(job, None, 18.0) is True  # unfenced (fencing off)
    assert store.job(job).lease_expires_s == 18.0 and store.next_lease_expiry_s() == 18.0
    assert store.job(idle).lease_expires_s is None


def test_job_leased_by_finds_the_owners_newest_lease(backend):
    store = backend.store
    old, new, tie, other = (add_job(store) for _ in range(4))
    take_lease(store, old, "w1", 5.0)  # the lease of a restarted worker, not yet expired
    take_lease(store, new, "w1", 9.0)
    take_lease(store, other, "w2", 50.0)
    assert store.job_leased_by("w1") == new
    take_lease(store, tie, "w1", 9.0)  # the same deadline: the higher id is the newer
    assert store.job_leased_by("w1") == tie
    assert store.job_leased_by("w3") is None


def test_a_lease_without_a_deadline_is_never_taken_for_the_newest(backend):
    store = backend.store
    dated, undated = add_job(store), add_job(store)
    take_lease(store, dated, "w1", 9.0)
    take_lease(store, undated, "w1", None)
    assert store.job_leased_by("w1") == dated


def test_counts_and_states_follow_every_move(backend):
    store = backend.store
    a, b, c = (add_job(store) for _ in range(3))
    take_lease(store, a, "w1", 10.0)
    take_lease(store, b, "w1", 10.0)
    with store.transaction():
        store.compare_and_set_state(b, "leased", "dead", 1, bump_token=False, columns={})
    assert store.counts_by_state() == {"leased": 1, "dead": 1, "pending": 1}
    assert store.job_states() == {a: "leased", b: "dead", c: "pending"}


# -- what the simulator memoises must follow every write and every rollback ---------------------


def test_wake_up_times_follow_writes_inside_a_transaction_and_forget_a_rollback(backend):
    store = backend.store
    assert store.next_run_at_s() is None
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_job("deliver", "{}", None, 1.0, 1)
        assert store.has_claimable(1.0) and store.next_run_at_s() == 1.0  # reads its own write
        raise RuntimeError
    assert not store.has_claimable(1.0) and store.next_run_at_s() is None
    job = add_job(store, run_at_s=3.0)
    assert store.next_run_at_s() == 3.0 and store.next_lease_expiry_s() is None
    take_lease(store, job, "w1", 8.0)
    assert store.next_run_at_s() is None and store.next_lease_expiry_s() == 8.0
    with pytest.raises(RuntimeError), store.transaction():
        store.extend_lease(job, 1, 30.0)
        raise RuntimeError
    assert store.next_lease_expiry_s() == 8.0 and store.has_expired_lease(8.0)


# -- the attempt log ----------------------------------------------------------------------------


def test_the_attempt_log_records_each_claim_and_its_first_outcome(backend):
    store = backend.store
    a, b = add_job(store), add_job(store)
    with store.transaction():
        store.insert_attempts([])
        store.insert_attempt(b, 1, "w1", 0.5)
        store.insert_attempts([(a, 2, "w2", 3.0), (a, 1, "w1", 1.0)])
    with store.transaction():
        store.end_attempt(a, 1, "expired")
        store.end_attempts([], "succeeded")
        store.end_attempts([(a, 1), (a, 2)], "succeeded")  # a's first attempt already ended
        store.end_attempt(a, 2, "reconciled")  # and now its second
        store.end_attempt(b, 7, "failed")  # no such attempt: nothing
    assert store.attempts() == [(a, 1, "w1", 1.0, "expired"), (a, 2, "w2", 3.0, "succeeded"),
                                (b, 1, "w1", 0.5, None)]
    assert store.attempts(a) == [(a, 1, "w1", 1.0, "expired"), (a, 2, "w2", 3.0, "succeeded")]
    assert store.attempts(99) == []
    with pytest.raises(CONSTRAINT_ERRORS), store.transaction():
        store.insert_attempt(b, 1, "w3", 9.0)  # one attempt per (job, token)
    assert store.attempts(b) == [(b, 1, "w1", 0.5, None)]


# -- effects: once per part, copies, another path, repair --------------------------------------


def test_a_keyed_effect_part_is_written_once_whichever_token_writes_it(backend):
    store = backend.store
    job = add_job(store)
    with store.transaction():
        assert store.insert_effect(job, "debit", 1, -5, 2, once=True) is True
        assert store.insert_effect(job, "debit", 1, -5, 2, once=True) is False
        assert store.insert_effect(job, "debit", 2, -5, 2, once=True) is False
        assert store.insert_effect(job, "credit", 2, 5, 2, once=True) is True
    assert store.effects(job) == [(job, "debit", 1, -5), (job, "credit", 2, 5)]


def test_an_effect_part_written_by_another_path_is_not_written_again_keyed(backend):
    store = backend.store
    job = add_job(store)
    with store.transaction():  # a worker without the commit boundary wrote it, unkeyed
        assert store.insert_effect(job, "report", 1, 12, 1, once=False) is True
    with store.transaction():  # the keyed completion of another attempt finds it there
        assert store.insert_effect(job, "report", 2, 12, 1, once=True) is False
        assert store.insert_effects_once([(job, "report", 3, 12, 1)]) == 0
    assert store.effects(job) == [(job, "report", 1, 12)]
    with store.transaction():  # and an unkeyed write is never refused, keyed copy or not
        assert store.insert_effect(job, "report", 4, 12, 1, once=False) is True
    assert [t for _, _, t, _ in store.effects(job)] == [1, 4]


def test_insert_effects_once_counts_only_new_parts_within_and_across_batches(backend):
    store = backend.store
    a, b = add_job(store), add_job(store)
    with store.transaction():
        assert store.insert_effects_once([]) == 0
        assert store.insert_effects_once([(a, "x", 1, 1, 2), (a, "x", 1, 1, 2), (b, "x", 1, 7, 1)]) == 2
        assert store.insert_effects_once([(a, "x", 2, 1, 2), (a, "y", 2, 1, 2)]) == 1
    assert store.effects() == [(a, "x", 1, 1), (b, "x", 1, 7), (a, "y", 2, 1)]


def test_effect_parts_expected_is_per_token_the_most_any_part_declared(backend):
    store = backend.store
    job, other = add_job(store), add_job(store)
    with store.transaction():
        store.insert_effect(job, "debit", 1, -5, 2, once=False)
        store.insert_effect(job, "debit", 3, -5, 3, once=False)
        store.insert_effect(job, "credit", 3, 5, 1, once=False)
        store.insert_effect(other, "x", 1, 1, 9, once=False)
    assert store.effect_parts_expected(job) == {1: 2, 3: 3}
    assert store.effects(job) == [(job, "debit", 1, -5), (job, "debit", 3, -5), (job, "credit", 3, 5)]


def test_delete_effect_part_removes_every_copy_of_that_token_and_nothing_else(backend):
    store = backend.store
    job, other = add_job(store), add_job(store)
    with store.transaction():
        for token in (1, 2, 2):  # two copies written by one token: a tie
            store.insert_effect(job, "debit", token, -5, 1, once=False)
        store.insert_effect(job, "credit", 2, 5, 1, once=False)
        store.insert_effect(other, "debit", 2, -5, 1, once=False)
    with store.transaction():
        assert store.delete_effect_part(job, "debit", 2) == 2
        assert store.delete_effect_part(job, "debit", 2) == 0
        assert store.delete_effect_part(job, "debit", 9) == 0
    assert store.effects() == [(job, "debit", 1, -5), (job, "credit", 2, 5), (other, "debit", 2, -5)]
    with store.transaction():  # a part removed may be written again, keyed
        assert store.delete_effect_part(job, "debit", 1) == 1
        assert store.insert_effect(job, "debit", 3, -5, 1, once=True) is True


# -- dead letters and redrive ------------------------------------------------------------------


def test_dead_letters_keep_their_order_and_a_redrive_removes_the_jobs_own(backend):
    store = backend.store
    a, b = add_job(store), add_job(store)
    with store.transaction():
        store.insert_dead_letter(b, "poison", 2.0)
        store.insert_dead_letter(a, "lease expired after 3 of 3 attempts", 1.0)
        store.insert_dead_letter(b, "again", 3.0)
    assert store.dead_letters() == [(b, "poison", 2.0), (a, "lease expired after 3 of 3 attempts", 1.0),
                                    (b, "again", 3.0)]
    with store.transaction():
        store.delete_dead_letter(b)
        store.delete_dead_letter(99)
    assert store.dead_letters() == [(a, "lease expired after 3 of 3 attempts", 1.0)]


def test_a_redrive_is_a_compare_and_set_from_dead_with_a_fresh_budget(backend):
    store = backend.store
    job = add_job(store, max_attempts=2)
    take_lease(store, job, "w1", 5.0)
    with store.transaction():
        store.compare_and_set_state(job, "leased", "dead", None, bump_token=False,
                                    columns={"attempts": 2, "last_error": "poison",
                                             "lease_owner": None, "lease_expires_s": None})
        store.insert_dead_letter(job, "poison", 1.0)
    with store.transaction():
        assert store.compare_and_set_state(
            job, "dead", "pending", None, bump_token=False,
            columns={"attempts": 0, "run_at_s": 30.0, "max_attempts": 4, "last_error": None}) == 1
        store.delete_dead_letter(job)
    got = store.job(job)
    assert (got.state, got.attempts, got.max_attempts, got.run_at_s, got.last_error, got.token) == (
        "pending", 0, 4, 30.0, None, 1)
    assert store.dead_letters() == [] and store.next_run_at_s() == 30.0


# -- the transactional outbox -------------------------------------------------------------------


def test_the_outbox_hands_out_unpublished_rows_oldest_first_and_marks_each_once(backend):
    store = backend.store
    job = add_job(store)
    with store.transaction():
        store.insert_outbox_message("m1.1.0", job, 1, "orders", '{"id": 1, "é": [1, 2]}', 4.0)
        store.insert_outbox_message("m1.1.1", job, 1, "mail", "{}", 4.0)
        store.insert_outbox_message("m1.2.0", job, 2, "orders", '{"id": 1}', 6.0)
    assert store.next_outbox_s() == 4.0
    assert store.unpublished_outbox(2) == [
        {"id": "m1.1.0", "job": job, "token": 1, "topic": "orders", "body": {"id": 1, "é": [1, 2]}},
        {"id": "m1.1.1", "job": job, "token": 1, "topic": "mail", "body": {}}]
    with store.transaction():
        assert store.mark_outbox_published("m1.1.0", 7.0) is True
        assert store.mark_outbox_published("m1.1.0", 8.0) is False  # already marked
        assert store.mark_outbox_published("m9", 8.0) is False  # no such message
        assert store.mark_outbox_published("m1.1.1", 8.0) is True
    assert [m["id"] for m in store.unpublished_outbox(10)] == ["m1.2.0"]
    assert store.next_outbox_s() == 6.0
    assert store.outbox() == [("m1.1.0", job, 1, "orders", 7.0), ("m1.1.1", job, 1, "mail", 8.0),
                              ("m1.2.0", job, 2, "orders", None)]
    with pytest.raises(CONSTRAINT_ERRORS), store.transaction():
        store.insert_outbox_message("m1.2.0", job, 2, "orders", "{}", 9.0)  # one row per message id
    assert len(store.outbox()) == 3


# -- reset and image ----------------------------------------------------------------------------


def _fill(store: Any) -> None:
    job = add_job(store, key="k")
    take_lease(store, job, "w1", 10.0)
    with store.transaction():
        store.insert_attempt(job, 1, "w1", 0.0)
        store.insert_effect(job, "a", 1, 1, 1, once=True)
        store.insert_dead_letter(job, "why", 0.0)
        store.insert_outbox_message("m1", job, 1, "t", "{}", 0.0)
        store.append_event(actor="w1", job=job, kind="claim", token=1)


def test_reset_empties_every_table_and_starts_ids_and_seq_again_at_one(backend):
    store = backend.store
    _fill(store)
    add_job(store)
    later = SimClock(50.0)
    store.reset(later)
    assert store.clock is later and store.tx_count == 0
    assert store.jobs() == [] and store.events() == [] and store.attempts() == []
    assert store.effects() == [] and store.dead_letters() == [] and store.outbox() == []
    assert store.next_run_at_s() is None and store.next_lease_expiry_s() is None
    assert not store.has_claimable(1e9) and store.job_by_key("k") is None
    _fill(store)
    assert [j.id for j in store.jobs()] == [1] and [e["seq"] for e in store.events()] == [1]
    assert store.events()[0]["t"] == 50.0 and store.tx_count == 3


def test_the_same_contents_give_the_same_image(backend, request):
    differs_on(request, ("sqlite-memory",), "the in-memory SQLite image is the database's bytes, "
               "whose header counts committed write transactions: the same rows reached by "
               "another path give another image (a file's header waits for the checkpoint; "
               "PostgreSQL's image is the rows)")
    store = backend.store
    _fill(store)
    store.reset(SimClock())
    _fill(store)
    filled = store.image()
    store.reset(SimClock())
    _fill(store)
    assert store.image() == filled


def test_reads_and_refused_writes_leave_the_image_as_it_was(backend):
    store = backend.store
    _fill(store)
    image = store.image()
    store.jobs(), store.events(), store.expired_leases(1e9, 10), store.unpublished_outbox(5)
    with store.transaction():
        store.next_claimable_jobs(1e9, 10)
        assert store.extend_lease(1, 0, 99.0) is False
        assert store.insert_effect(1, "a", 2, 1, 1, once=True) is False
        assert store.mark_outbox_published("nope", 1.0) is False
    assert store.image() == image


def test_the_image_sees_every_table(backend):
    store = backend.store
    _fill(store)
    changes = [
        lambda: store.end_attempt(1, 1, "failed"),
        lambda: store.insert_effect(1, "a", 1, 1, 1, once=False),
        lambda: store.delete_dead_letter(1),
        lambda: store.mark_outbox_published("m1", 3.0),
        lambda: store.extend_lease(1, 1, 11.0),
    ]
    for change in changes:
        image = store.image()
        with store.transaction():
            change()
        assert store.image() != image, change


@pytest.mark.parametrize("value", [0.1 + 0.2, 1e-7, 123456789.123456, 1e15 + 0.5])
def test_times_read_back_exactly(backend, value):
    store = backend.store
    job = add_job(store, run_at_s=value)
    take_lease(store, job, "w1", value + 1.0)
    got = store.job(job)
    assert got.run_at_s == value and got.lease_expires_s == value + 1.0


def test_a_claim_selects_its_jobs_inside_the_transaction_that_moves_them(backend, request):
    differs_on(request, SQLITE, "SQLite answers next_claimable_jobs outside a transaction (no row is "
               "locked, so two callers may read the same job); PostgreSQL refuses the call")
    store = backend.store
    add_job(store)
    with pytest.raises(AssertionError):
        store.next_claimable_jobs(1.0, 1)


def test_a_refused_row_that_the_caller_catches_still_spoils_its_transaction(backend, request):
    differs_on(request, SQLITE, "SQLite goes on after a refused statement that the caller catches, "
               "and commits the rest; PostgreSQL aborts the transaction: every later statement fails")
    store = backend.store
    add_job(store, key="order-1")
    with pytest.raises(psycopg.errors.InFailedSqlTransaction), store.transaction():
        with pytest.raises(CONSTRAINT_ERRORS):
            store.insert_job("deliver", "{}", "order-1", 0.0, 1)
        store.insert_job("deliver", "{}", "order-2", 0.0, 1)
    assert store.job_by_key("order-2") is None
