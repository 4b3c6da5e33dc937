"""Every checker judged on small hand-built histories: for each kind of violation it
knows, a history with exactly that one violation, which it must name, and a near miss
(the same history one step from it), which it must accept. The checkers are the
judge: a judge that cannot convict proves nothing."""

from __future__ import annotations

from typing import Any

import pytest

from failfirst.proofs import checkers
from failfirst.store import Store
from failfirst.store.clock import SimClock


class History:
    """A hand-built history: events in order, seq from 1, as the processor logs them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, kind: str, job: int | None = 1, *, actor: str = "w1", frm: str | None = None,
            to: str | None = None, token: int | None = None, **data: Any) -> History:
        self.events.append({"seq": len(self.events) + 1, "t": float(len(self.events)), "actor": actor,
                            "job": job, "kind": kind, "from": frm, "to": to, "token": token, **data})
        return self

    def enqueue(self, job: int = 1, max_attempts: int = 3) -> History:
        return self.add("enqueue", job, actor="client", to="pending", token=0, type="t",
                        max_attempts=max_attempts)

    def claim(self, job: int = 1, token: int = 1, actor: str = "w1") -> History:
        return self.add("claim", job, actor=actor, frm="pending", to="leased", token=token)

    def effect(self, job: int = 1, token: int = 1, part: str = "p", parts: int = 1, tx: int = 1,
               actor: str = "w1") -> History:
        return self.add("effect", job, actor=actor, token=token, part=part, amount=1, parts=parts, tx=tx)

    def complete(self, job: int = 1, token: int = 1, actor: str = "w1") -> History:
        return self.add("complete", job, actor=actor, frm="leased", to="succeeded", token=token)

    def expire(self, job: int = 1, token: int = 1, dead: bool = False) -> History:
        return self.add("expire_dead" if dead else "expire", job, actor="reaper", frm="leased",
                        to="dead" if dead else "pending", token=token)

    def fail(self, job: int = 1, token: int = 1, dead: bool = False, actor: str = "w1") -> History:
        return self.add("dead" if dead else "retry", job, actor=actor, frm="leased",
                        to="dead" if dead else "pending", token=token, reason="boom")

    def end(self, reason: str = "quiescent") -> History:
        return self.add("end", None, actor="sim", reason=reason, last_fault_s=0.0, faults=0)


def _store(jobs: dict[int, str] | None = None, effects: list[tuple[int, str, int]] = (),
           dead_letters: tuple[int, ...] = ()) -> Store:
    """A real in-memory store holding exactly these rows (a job past pending holds the
    token of one claim, as the histories here give it)."""
    store = Store.memory(SimClock())
    with store.transaction():
        for job_id, state in sorted((jobs or {}).items()):
            assert store.insert_job("t", "{}", None, 0.0, 3) == job_id
            if state != "pending":
                store._write("UPDATE jobs SET state = ?, token = 1 WHERE id = ?", (state, job_id))
        for job_id, part, token in effects:
            store.insert_effect(job_id, part, token, 1, 1, once=False)
        for job_id in dead_letters:
            store.insert_dead_letter(job_id, "boom", 0.0)
    return store


def _names(checker, history: History, store: Store | None = None) -> list[tuple[str, int | None]]:
    return [(v.invariant, v.job) for v in checker(history.events, store or _store())]


def _done() -> History:
    return History().enqueue().claim().effect().complete()


# -- INV_001 ---------------------------------------------------------------------------

def test_inv001_names_an_effect_applied_twice_and_accepts_once():
    assert _names(checkers.check_inv001_effect_once, _done()) == []
    twice = History().enqueue().claim().effect().expire().claim(token=2, actor="w2") \
        .effect(token=2, actor="w2", tx=2).complete(token=2, actor="w2")
    assert _names(checkers.check_inv001_effect_once, twice) == [("INV_001", 1)]


def test_inv001_names_a_success_without_effect():
    bare = History().enqueue().claim().complete()
    assert _names(checkers.check_inv001_effect_once, bare) == [("INV_001", 1)]


def test_inv001_names_an_external_charge_made_twice():
    once = _done().add("charge", 1, actor="provider", charge="ch_1")
    assert _names(checkers.check_inv001_effect_once, once) == []
    twice = History().enqueue().claim().add("charge", 1, actor="provider", charge="ch_1") \
        .add("charge", 1, actor="provider", charge="ch_2").complete()
    assert _names(checkers.check_inv001_effect_once, twice) == [("INV_001", 1)]


# -- INV_002 ---------------------------------------------------------------------------

def test_inv002_names_a_torn_effect_and_accepts_a_whole_one():
    whole = History().enqueue().claim().effect(part="a", parts=2).effect(part="b", parts=2).complete()
    assert _names(checkers.check_inv002_all_or_nothing, whole) == []
    torn = History().enqueue().claim().effect(part="a", parts=2)
    assert _names(checkers.check_inv002_all_or_nothing, torn) == [("INV_002", 1)]


def test_inv002_names_parts_committed_in_two_transactions():
    apart = History().enqueue().claim().effect(part="a", parts=2, tx=1).effect(part="b", parts=2, tx=2)
    assert _names(checkers.check_inv002_all_or_nothing, apart) == [("INV_002", 1)]


# -- INV_003 ---------------------------------------------------------------------------

def test_inv003_accepts_a_clean_history():
    ok = History().enqueue().claim().add("heartbeat", 1, token=1, until=5.0).effect().complete()
    assert _names(checkers.check_inv003_transitions, ok) == []


def test_inv003_names_a_change_on_a_job_never_enqueued():
    assert _names(checkers.check_inv003_transitions, History().claim()) == [("INV_003", 1)]


def test_inv003_names_a_transition_the_table_forbids():
    illegal = History().enqueue().add("complete", 1, frm="pending", to="succeeded", token=0)
    assert ("INV_003", 1) in _names(checkers.check_inv003_transitions, illegal)


def test_inv003_names_an_effect_with_a_stale_token():
    """Surviving bug: INV_003 ignoring the token of effect events."""
    stale = History().enqueue().claim().expire().claim(token=2, actor="w2").effect(token=1)
    assert _names(checkers.check_inv003_transitions, stale) == [("INV_003", 1)]
    fresh = History().enqueue().claim().expire().claim(token=2, actor="w2").effect(token=2, actor="w2")
    assert _names(checkers.check_inv003_transitions, fresh) == []


def test_inv003_names_a_claim_that_reuses_the_current_token():
    """Surviving bug: INV_003 accepting a claim whose token is not strictly newer."""
    reused = History().enqueue().claim(token=1).expire(token=1).claim(token=1, actor="w2")
    assert _names(checkers.check_inv003_transitions, reused) == [("INV_003", 1)]
    newer = History().enqueue().claim(token=1).expire(token=1).claim(token=2, actor="w2")
    assert _names(checkers.check_inv003_transitions, newer) == []


def test_inv003_names_a_zombie_completion():
    zombie = History().enqueue().claim().expire().claim(token=2, actor="w2").complete(token=1)
    assert _names(checkers.check_inv003_transitions, zombie) == [("INV_003", 1)]


def test_inv003_names_a_zombie_heartbeat():
    zombie = History().enqueue().claim().expire().claim(token=2, actor="w2") \
        .add("heartbeat", 1, token=1, until=9.0)
    assert _names(checkers.check_inv003_transitions, zombie) == [("INV_003", 1)]


def test_inv003_names_a_downstream_write_older_than_the_newest():
    newest_last = History().enqueue().add("write", 1, actor="db", token=1, key="k") \
        .add("write", 1, actor="db", token=2, key="k")
    assert _names(checkers.check_inv003_transitions, newest_last) == []
    lost_update = History().enqueue().add("write", 1, actor="db", token=2, key="k") \
        .add("write", 1, actor="db", token=1, key="k")
    assert _names(checkers.check_inv003_transitions, lost_update) == [("INV_003", 1)]


# -- INV_004 ---------------------------------------------------------------------------

def test_inv004_names_a_job_left_pending_at_the_end():
    assert _names(checkers.check_inv004_progress, _done().end()) == []
    stuck = History().enqueue().enqueue(job=2).claim().effect().complete().end()
    assert _names(checkers.check_inv004_progress, stuck) == [("INV_004", 2)]


def test_inv004_gives_no_verdict_on_a_run_still_going():
    assert _names(checkers.check_inv004_progress, History().enqueue()) == []


# -- INV_005 ---------------------------------------------------------------------------

def test_inv005_names_one_attempt_too_many_and_accepts_the_bound():
    """Surviving bug: INV_005's attempt bound off by one."""
    at_bound = History().enqueue(max_attempts=2).claim().expire().claim(token=2).expire(token=2, dead=True)
    assert _names(checkers.check_inv005_bounded_work, at_bound) == []
    over = History().enqueue(max_attempts=2).claim().expire().claim(token=2).expire(token=2) \
        .claim(token=3)
    assert _names(checkers.check_inv005_bounded_work, over) == [("INV_005", 1)]


def test_inv005_counts_afresh_after_a_redrive():
    again = History().enqueue(max_attempts=1).claim().fail(dead=True) \
        .add("redrive", 1, actor="operator", frm="dead", to="pending", token=1).claim(token=2)
    assert _names(checkers.check_inv005_bounded_work, again) == []


def test_inv005_names_too_many_downstream_calls():
    def calls(n: int, per_job: int, total: int) -> History:
        h = History().add("start", None, actor="sim", max_calls_per_job=per_job, max_calls_total=total)
        h.enqueue()
        for _ in range(n):
            h.add("call", 1, actor="w1", attempt=1)
        return h
    assert _names(checkers.check_inv005_bounded_work, calls(3, 3, 10)) == []
    assert _names(checkers.check_inv005_bounded_work, calls(4, 3, 10)) == [("INV_005", 1)]
    assert _names(checkers.check_inv005_bounded_work, calls(3, 5, 2)) == [("INV_005", None)]


# -- INV_006 ---------------------------------------------------------------------------

def test_inv006_accepts_a_repaired_torn_effect():
    repaired = History().enqueue().claim().effect(part="a", parts=2) \
        .add("repair", 1, actor="recovery", token=1, part="a")
    assert _names(checkers.check_inv006_recovered, repaired, _store({1: "leased"})) == []


def test_inv006_names_a_repair_that_removes_more_than_was_applied():
    """Surviving bug: a repair removing an effect part more often than it was applied."""
    over = History().enqueue().claim().effect(part="a", parts=2) \
        .add("repair", 1, actor="recovery", token=1, part="a") \
        .add("repair", 1, actor="recovery", token=1, part="a")
    found = checkers.check_inv006_recovered(over.events, _store({1: "leased"}))
    assert any(v.job == 1 and "stands applied -1 times" in v.detail for v in found), found


def test_inv006_names_an_effect_standing_twice():
    twice = History().enqueue().claim().effect().effect(tx=2)
    store = _store({1: "leased"}, effects=[(1, "p", 1), (1, "p", 1)])
    assert ("INV_006", 1) in _names(checkers.check_inv006_recovered, twice, store)


def test_inv006_names_a_torn_effect_left_standing():
    torn = History().enqueue().claim().effect(part="a", parts=2)
    store = _store({1: "leased"}, effects=[(1, "a", 1)])
    assert _names(checkers.check_inv006_recovered, torn, store) == [("INV_006", 1)]


def test_inv006_names_a_success_with_no_effect_standing():
    bare = History().enqueue().claim().complete()
    assert _names(checkers.check_inv006_recovered, bare, _store({1: "succeeded"})) == [("INV_006", 1)]


def test_inv006_names_rows_the_history_does_not_explain():
    store = _store({1: "succeeded"}, effects=[(1, "p", 1), (1, "q", 1)])
    assert ("INV_006", 1) in _names(checkers.check_inv006_recovered, _done(), store)
    assert _names(checkers.check_inv006_recovered, _done(), _store({1: "succeeded"}, [(1, "p", 1)])) == []


def test_inv006_names_a_downstream_row_left_with_an_old_value():
    lost = History().enqueue().add("write", 1, actor="db", token=2, key="k") \
        .add("write", 1, actor="db", token=1, key="k")
    assert ("INV_006", 1) in _names(checkers.check_inv006_recovered, lost, _store({1: "pending"}))
    restored = lost.add("restore", 1, actor="recovery", token=2, key="k")
    assert _names(checkers.check_inv006_recovered, restored, _store({1: "pending"})) == []


# -- INV_007 ---------------------------------------------------------------------------

def test_inv007_accepts_records_that_agree():
    assert _names(checkers.check_inv007_records_agree, _done(),
                  _store({1: "succeeded"}, [(1, "p", 1)])) == []


def test_inv007_names_a_state_the_history_does_not_give():
    assert _names(checkers.check_inv007_records_agree, _done(),
                  _store({1: "pending"}, [(1, "p", 1)])) == [("INV_007", 1)]


def test_inv007_names_effect_rows_that_disagree_with_the_log():
    assert _names(checkers.check_inv007_records_agree, _done(),
                  _store({1: "succeeded"}, [(1, "p", 1), (1, "p", 1)])) == [("INV_007", 1)]


def test_inv007_names_a_dead_job_without_its_dead_letter():
    dead = History().enqueue().claim().fail(dead=True)
    assert _names(checkers.check_inv007_records_agree, dead, _store({1: "dead"})) == [("INV_007", 1)]
    assert _names(checkers.check_inv007_records_agree, dead,
                  _store({1: "dead"}, dead_letters=(1,))) == []


def test_inv007_names_a_dead_letter_without_a_dead_job():
    """Surviving bug: INV_007 checking only one direction."""
    pending = History().enqueue()
    assert _names(checkers.check_inv007_records_agree, pending,
                  _store({1: "pending"}, dead_letters=(1,))) == [("INV_007", 1)]


# -- INV_008 ---------------------------------------------------------------------------

def test_inv008_names_a_healthy_job_dead_lettered_by_expiries():
    """A lease that expires with no fault of its holder, until the attempts run out:
    the bug INV_004 cannot see (it counts dead as progress)."""
    healthy = History().enqueue(max_attempts=2).claim().expire() \
        .claim(token=2, actor="w2").expire(token=2, dead=True)
    assert _names(checkers.check_inv008_dead_only_for_cause, healthy) == [("INV_008", 1)]


def test_inv008_accepts_expiries_that_a_fault_caused():
    crashed = History().enqueue(max_attempts=2).claim().add("crash", 1, point="claimed").expire() \
        .claim(token=2, actor="w2").add("pause", 1, actor="w2", point="working", pause_s=9) \
        .expire(token=2, dead=True)
    assert _names(checkers.check_inv008_dead_only_for_cause, crashed) == []


def test_inv008_accepts_handled_failures_and_needs_the_fault_inside_the_attempt():
    handled = History().enqueue(max_attempts=2).claim().fail().claim(token=2).fail(token=2, dead=True)
    assert _names(checkers.check_inv008_dead_only_for_cause, handled) == []
    # The holder's crash came before this attempt began: it did not cause this expiry.
    earlier = History().add("crash", None, point="idle").enqueue(max_attempts=1).claim() \
        .expire(dead=True)
    assert _names(checkers.check_inv008_dead_only_for_cause, earlier) == [("INV_008", 1)]
    # Another worker's fault does not excuse this holder's expiry.
    other = History().enqueue(max_attempts=1).claim().add("crash", None, actor="w2", point="idle") \
        .expire(dead=True)
    assert _names(checkers.check_inv008_dead_only_for_cause, other) == [("INV_008", 1)]


def test_inv008_a_skewed_clock_excuses_every_later_expiry_of_its_worker():
    """A skew is the worker machine's clock running slow from then on: the expiries of
    its later leases are its fault too (FM_006 at two faults: both workers skewed, every
    attempt expires). Another worker's skew, or none, excuses nothing."""
    skewed = History().enqueue(max_attempts=2).claim() \
        .add("skew", None, point="claimed", rate=0.25).fail(dead=False) \
        .claim(token=2).expire(token=2, dead=True)
    assert _names(checkers.check_inv008_dead_only_for_cause, skewed) == []
    other = History().enqueue(max_attempts=2).claim() \
        .add("skew", None, actor="w2", point="claimed", rate=0.25).fail(dead=False) \
        .claim(token=2).expire(token=2, dead=True)
    assert _names(checkers.check_inv008_dead_only_for_cause, other) == [("INV_008", 1)]


def test_inv008_judges_attempts_since_the_last_redrive():
    redriven = History().enqueue(max_attempts=1).claim().expire(dead=True) \
        .add("redrive", 1, actor="operator", frm="dead", to="pending", token=1) \
        .claim(token=2).fail(token=2, dead=True)
    assert _names(checkers.check_inv008_dead_only_for_cause, redriven) == []


@pytest.mark.parametrize("inv", sorted(checkers.CHECKERS))
def test_every_checker_accepts_a_plain_successful_run(inv):
    store = _store({1: "succeeded"}, [(1, "p", 1)])
    assert checkers.CHECKERS[inv](_done().end().events, store) == []


# -- INV_000: a malformed history is a finding, never a crash (#23) --------------------


def _broken(edit) -> History:
    """A plain successful run with one event edited by ``edit(event)``."""
    h = _done().end()
    edit(h.events)
    return h


@pytest.mark.parametrize(("name", "edit"), [
    ("data not JSON", lambda ev: ev[2].update({"malformed": "its data is not JSON"})),
    ("a NULL claim token", lambda ev: ev[1].update(token=None)),
    ("a text token", lambda ev: ev[3].update(token="1")),
    ("a boolean token", lambda ev: ev[1].update(token=True)),
    ("a missing part", lambda ev: ev[2].pop("part")),
    ("a text time", lambda ev: ev[3].update(t="later")),
    ("an infinite time", lambda ev: ev[3].update(t=float("inf"))),
    ("a state not in the table", lambda ev: ev[3].update(to="done")),
    ("an enqueue without max_attempts", lambda ev: ev[0].pop("max_attempts")),
    ("a seq out of order", lambda ev: ev[3].update(seq=1)),
])
def test_a_malformed_event_is_named_not_a_crash(name, edit):
    found = checkers.check(_broken(edit).events, _store({1: "succeeded"}, [(1, "p", 1)]))
    assert found, name
    assert found[0].invariant == "INV_000" and "the history is malformed at" in found[0].detail
    # The job whose history is malformed is judged by nothing else (its story is broken).
    assert [(v.invariant, v.job) for v in found] == [("INV_000", 1)], found


def test_a_malformed_event_of_no_job_is_named_and_the_rest_judged():
    """A claim whose job is NULL names no job to set aside: it is left out, and what the
    rest of the history then says (a completion of a job never claimed) is judged."""
    found = checkers.check(_broken(lambda ev: ev[1].update(job=None)).events,
                           _store({1: "succeeded"}, [(1, "p", 1)]))
    assert found[0].invariant == "INV_000" and found[0].job is None and found[0].events == (2,)
    assert "INV_003" in {v.invariant for v in found[1:]}


def test_events_of_a_job_never_enqueued_are_named_once():
    """Enqueue events deleted: every later event names a job the history never enqueued
    (a KeyError in INV_005 before); one finding per job, at its first event."""
    h = History().enqueue(job=1).enqueue(job=2)
    h.claim(job=1).effect(job=1).complete(job=1).claim(job=2).effect(job=2).complete(job=2).end()
    del h.events[1]  # job 2's enqueue
    found = checkers.check(h.events, _store({1: "succeeded", 2: "succeeded"}, [(1, "p", 1), (2, "p", 1)]))
    assert [(v.invariant, v.job) for v in found] == [("INV_000", 2)], found
    assert "never enqueued" in found[0].detail and found[0].events == (6,)


def test_an_event_naming_a_job_that_does_not_exist_is_named():
    """A TypeError in INV_004 before."""
    h = _done().add("complete", 99, frm="leased", to="succeeded", token=1).end()
    found = checkers.check(h.events, _store({1: "succeeded"}, [(1, "p", 1)]))
    assert [(v.invariant, v.job) for v in found] == [("INV_000", 99)], found


def test_a_claim_token_far_beyond_the_history_is_named():
    forged = History().enqueue().claim(token=10**12).effect(token=10**12).complete(token=10**12)
    assert _names(checkers.check_inv003_transitions, forged) == [("INV_003", 1)]
    assert "tokens skipped" in checkers.check_inv003_transitions(forged.events, _store())[0].detail


def test_a_stored_token_far_beyond_the_history_is_named():
    store = _store({1: "succeeded"}, [(1, "p", 1)])
    with store.transaction():
        store._write("UPDATE jobs SET token = ? WHERE id = 1", (10**12,))
    assert _names(checkers.check_inv007_records_agree, _done(), store) == [("INV_007", 1)]


def test_an_unknown_attempt_outcome_is_named():
    store = _store({1: "succeeded"}, [(1, "p", 1)])
    with store.transaction():
        store.insert_attempt(1, 1, "w1", 0.0)
        store.end_attempt(1, 1, "vanished")
    found = checkers.check(_done().end().events, store)
    assert [(v.invariant, v.job) for v in found] == [("INV_000", 1)]
    assert "'vanished'" in found[0].detail


def test_a_payload_that_is_not_json_is_named_and_cannot_be_read():
    from failfirst.store.rows import MalformedPayload

    store = _store({1: "succeeded"}, [(1, "p", 1)])
    with store.transaction():
        store._write("UPDATE jobs SET payload = '{oops' WHERE id = 1")
    payload = store.job(1).payload
    assert isinstance(payload, MalformedPayload)
    with pytest.raises(ValueError, match="payload is not JSON"):
        payload.get("amount")
    found = checkers.check(_done().end().events, store)
    assert [(v.invariant, v.job) for v in found] == [("INV_000", 1)]


def test_every_attempt_outcome_the_processor_writes_is_known():
    """ATTEMPT_OUTCOMES is the one list: every outcome literal passed to end_attempt(s) in
    the library is in it, so the checker never calls the processor's own rows unknown."""
    import ast
    from pathlib import Path

    import failfirst
    from failfirst.store.interface import ATTEMPT_OUTCOMES

    written = set()
    for path in Path(failfirst.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            called = getattr(node, "func", None)
            if isinstance(node, ast.Call) and getattr(called, "attr", "") in ("end_attempt",
                                                                              "end_attempts"):
                written.update(a.value for a in node.args if isinstance(a, ast.Constant)
                               and isinstance(a.value, str))
    assert written and written <= ATTEMPT_OUTCOMES, written - ATTEMPT_OUTCOMES


def test_a_well_formed_run_has_no_finding_on_every_failure_mode():
    from failfirst.proofs.run import run_scenario
    from failfirst.sim import catalogue

    for scenario in catalogue.all_scenarios():
        for guard in (True, False):
            result = run_scenario(scenario, guard=guard, seed=1)
            assert "INV_000" not in {v.invariant for v in result.violations}, (scenario.id, guard)


# -- a damaged file, judged by `failfirst check` -----------------------------------------

#: Hand edits of a finished run's file, each with what the verdict must name.
FILE_DAMAGES = {
    "events.data not JSON": (["UPDATE events SET data = '{oops' WHERE seq = "
                              "(SELECT min(seq) FROM events WHERE kind = 'effect')"], "INV_000"),
    "events.data not an object": (["UPDATE events SET data = '[1, 2]' WHERE seq = "
                                   "(SELECT min(seq) FROM events WHERE kind = 'claim')"], "INV_000"),
    "events.data repeating a column": (["UPDATE events SET data = '{\"seq\": 1}' WHERE seq = "
                                        "(SELECT max(seq) FROM events WHERE kind = 'complete')"],
                                       "INV_000"),
    "jobs.payload not JSON": (["UPDATE jobs SET payload = 'not json' WHERE id = 2"], "INV_000"),
    "enqueue events deleted": (["DELETE FROM events WHERE kind = 'enqueue' AND job IN (2, 3)"],
                               "INV_000"),
    "a NULL claim token": (["UPDATE events SET token = NULL WHERE kind = 'claim' AND job = 1"],
                           "INV_000"),
    "an event naming a job that does not exist": (
        ["INSERT INTO events (t, actor, job, kind, \"from\", \"to\", token, data) "
         "VALUES (1.0, 'w9', 999, 'complete', 'leased', 'succeeded', 1, '{}')"], "INV_000"),
    "a text time": (["UPDATE events SET t = 'yesterday' WHERE seq = 2"], "INV_000"),
    "a stored token far beyond the history's": (["UPDATE jobs SET token = 1000000000000 WHERE id = 1"],
                                                "INV_007"),
    "a claim token far beyond the history's": (
        ["UPDATE events SET token = 1000000000000 WHERE kind = 'claim' AND job = 1"], "INV_003"),
    "an unknown attempt outcome": (["UPDATE attempts SET outcome = 'vanished' WHERE job_id = 1"],
                                   "INV_000"),
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from failfirst.realrun.driver import stress

    path = tmp_path_factory.mktemp("run") / "run.db"
    result = stress(str(path), jobs=6, workers=1)
    assert result["violations"] == {} and result["succeeded"] == 6
    return path


@pytest.mark.parametrize("damage", sorted(FILE_DAMAGES))
def test_check_of_a_damaged_file_is_a_verdict_not_a_traceback(finished_run, tmp_path, capsys, damage):
    import json
    import shutil
    import sqlite3

    from failfirst.cli import main

    path = tmp_path / "damaged.db"
    shutil.copy(finished_run, path)
    statements, invariant = FILE_DAMAGES[damage]
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()
    code = main(["check", "--db", str(path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "", err
    verdict = json.loads(out)
    assert invariant in verdict["violations"], verdict
    if invariant == "INV_000":
        assert any("malformed" in v["detail"] for v in verdict["violation_examples"]), verdict
    code = main(["check", "--db", str(path)])  # the text report too
    out, err = capsys.readouterr()
    assert code == 0 and err == "" and invariant in out
