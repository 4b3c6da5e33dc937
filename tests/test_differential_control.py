"""The differential proof's negative control (:mod:`failfirst.proofs.differential`): a
store that disagrees with SQLite while every verdict still agrees must be reported as a
:class:`~failfirst.proofs.differential.Divergence`, or a comparison that quietly checks
less would pass.

The proof takes any store URL, so the control runs on a second SQLite store (``make
test``) and on PostgreSQL (``make test-pg``). Each perturbed store is a real store of
that backend with one planted difference, as a backend with a bug would have it: an
extra event, job ids shifted (as a non-transactional id sequence shifts them), a
different token in the attempt log, a dead letter's reason, an outbox row's body, a
footprint not recorded
(so the other store's search prunes schedules that SQLite's explores). The unperturbed
store is the positive control: the same proof passes on it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from failfirst.proofs import differential
from failfirst.proofs.explorer import with_bounds
from failfirst.proofs.run import simulate
from failfirst.sim import catalogue
from failfirst.sim.choices import RandomChoices, ReplayChoices
from failfirst.sim.reduction import TrackedStore, tracked_class
from failfirst.store import Store, pgtools
from failfirst.store.clock import SimClock
from failfirst.store.postgresql import PostgresStore

#: Small and quick, each at one fault: FM_001 (about 20 schedules each way), FM_005 (dead
#: letters: a poison job), FM_004 (heartbeats: the footprint one store omits), FM_009
#: without its relay (outbox rows that stay unpublished, bodies and all).
CASES = {"FM_001": 1, "FM_005": 1, "FM_004": 1, "FM_009-no-relay": 1}


def scenario_of(case: str):
    fm, _, variant = case.partition("-")
    scenario = with_bounds(catalogue.load(fm), CASES[case])
    return dataclasses.replace(scenario, relay=False) if variant == "no-relay" else scenario


class ExtraEvent:
    """Logs one more event with every enqueue: an event no checker reads."""

    def append_event(self, **fields: Any) -> None:
        super().append_event(**fields)
        if fields["kind"] == "enqueue":
            super().append_event(actor=fields["actor"], job=None, kind="note")


class ShiftedIds:
    """Hands out job ids from 101: what a sequence that is not reset, or that a rolled-back
    insert used up, does. Every verdict is blind to a job's number."""

    def insert_job(self, *args: Any) -> int:
        job_id = super().insert_job(*args)
        self._write_shift(job_id)
        return job_id + 100


class AttemptToken:
    """Logs each attempt under the next token: the history and the jobs are right, the
    attempt log (what reconciliation reads) is not."""

    def insert_attempt(self, job_id: int, token: int, worker: str, claimed_s: float) -> None:
        super().insert_attempt(job_id, token + 1, worker, claimed_s)


class DeadLetterReason:
    """Files every dead letter under another reason."""

    def insert_dead_letter(self, job_id: int, reason: str, t: float) -> None:
        super().insert_dead_letter(job_id, "unknown", t)


class OutboxBody:
    """Writes every outbox row with another body: no event carries a body."""

    def insert_outbox_message(self, message_id: str, job_id: int, token: int, topic: str,
                              body_json: str, created_s: float) -> None:
        super().insert_outbox_message(message_id, job_id, token, topic, '{"other": 1}', created_s)


class UntrackedHeartbeat:
    """Records no footprint for a heartbeat's lease extension: the search over this store
    takes heartbeats for independent of the reaper and prunes schedules SQLite explores."""

    def extend_lease(self, job_id: int, token: int | None, expires_s: float) -> bool:
        backend = next(c for c in type(self).__mro__ if c in (Store, PostgresStore))
        return backend.extend_lease(self, job_id, token, expires_s)


def _shift_sqlite(self: Any, job_id: int) -> None:
    self._write("UPDATE jobs SET id = id + 100 WHERE id = ?", (job_id,))


def _shift_postgresql(self: Any, job_id: int) -> None:
    self._write("UPDATE jobs SET id = id + 100 WHERE id = %s", (job_id,))


#: name -> (the perturbation, a failure mode and guard whose runs it acts on, what the
#: Divergence says).
PERTURBATIONS = {
    "extra-event": (ExtraEvent, "FM_001", False, "the stores disagree"),
    "shifted-ids": (ShiftedIds, "FM_001", False, "the stores disagree"),
    "attempt-token": (AttemptToken, "FM_001", False, "end in different states"),
    "dead-letter-reason": (DeadLetterReason, "FM_005", True, "end in different states"),
    "outbox-body": (OutboxBody, "FM_009-no-relay", True, "end in different states"),
    "untracked-heartbeat": (UntrackedHeartbeat, "FM_004", True, "counts"),
}


def _perturbed(base: type, perturbation: type) -> type:
    shift = _shift_postgresql if issubclass(base, PostgresStore) else _shift_sqlite
    return type(f"{perturbation.__name__}{base.__name__}", (perturbation, base),
                {"_write_shift": shift})


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def other_store(request: pytest.FixtureRequest) -> Iterator[tuple[str, type, Any]]:
    """(the URL the proof is given, the tracked store class of that backend, how to open one)."""
    if request.param == "sqlite":
        yield "sqlite::memory:", TrackedStore, lambda cls, url, clock: cls.memory(clock)
        return
    with pgtools.throwaway_database(request.getfixturevalue("pg_admin_url"), tag="ff_diffctl") as url:
        yield url, tracked_class(PostgresStore), lambda cls, url, clock: cls.simulation(url, clock)


def _use(monkeypatch: pytest.MonkeyPatch, cls: type, opener: Any) -> None:
    """The proof's other store is ``cls`` (opened as that backend opens its simulation store)."""
    monkeypatch.setattr(differential, "tracked_simulation_store",
                        lambda url, clock, **_: opener(cls, url, clock))


@pytest.mark.parametrize("fm", sorted(CASES))
@pytest.mark.parametrize("guard", [False, True], ids=["guard-off", "guard-on"])
def test_the_unperturbed_store_passes_the_proof(monkeypatch, other_store, fm, guard):
    url, tracked, opener = other_store
    _use(monkeypatch, tracked, opener)
    row = differential.differential(scenario_of(fm), guard, url)
    assert row["same_digest"] == row["schedules"] > 0
    if fm in catalogue.bundles():  # the catalogue's own: the guardrail holds, and only it
        assert (row["violating"] == 0) == guard


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_a_perturbed_store_whose_verdicts_agree_is_a_divergence(monkeypatch, other_store, name):
    perturbation, fm, guard, said = PERTURBATIONS[name]
    url, tracked, opener = other_store
    scenario = scenario_of(fm)
    perturbed = _perturbed(tracked, perturbation)
    _acts_unseen_by_the_verdicts(scenario, guard, opener(perturbed, url, SimClock()))
    _use(monkeypatch, perturbed, opener)
    with pytest.raises(differential.Divergence, match=said):
        differential.differential(scenario, guard, url)


def _acts_unseen_by_the_verdicts(scenario, guard: bool, store: Any) -> None:
    """On a few schedules, the perturbed store and SQLite reach the same verdicts and
    ``reached``; on some, the perturbation shows in the history or the final rows."""
    acted = False
    try:
        for seed in range(4):
            there = simulate(scenario, guard, RandomChoices(seed), store=store)
            here = simulate(scenario, guard, ReplayChoices(there.choices))
            assert (there.invariants_violated, there.reached) == (here.invariants_violated, here.reached)
            acted |= (there.digest, differential.final_state(there.store)) != (
                here.digest, differential.final_state(here.store))
    finally:
        store.close()
    assert acted or isinstance(store, UntrackedHeartbeat), "the perturbation never acted"
