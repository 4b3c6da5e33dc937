"""Invariant checkers: they judge a run from its history and final store alone.

Like a history checker judging a database from outside, nothing here reads the
processor's own counters. Each violation names the invariant, the job, the
events involved (by ``seq``) and one sentence of explanation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from failfirst.processor.transitions import (
    INITIAL_STATE,
    LEASE_HOLDER_EVENTS,
    TERMINAL_STATES,
    TRANSITIONS,
)
from failfirst.proofs.wellformed import WELL_FORMED, judgeable
from failfirst.proofs.words import plural
from failfirst.store import Store

Event = dict[str, Any]

INVARIANTS: dict[str, str] = {
    "INV_000": "the judge's input is well-formed: every event has the fields its kind needs and "
               "names a job enqueued before it, every stored row holds what its columns say; "
               "what is malformed is named and left out of the other judgements",
    "INV_001": "a job's effect is applied at most once; every succeeded job has exactly one",
    "INV_002": "effects are all-or-nothing: no partial write is ever visible after a step",
    "INV_003": "every state change follows the transition table and carries the current fencing token",
    "INV_004": "progress: once faults stop, every job reaches succeeded or dead within a stated bound",
    "INV_005": "bounded work: attempts per job and downstream calls per job stay within declared bounds",
    "INV_006": "recovery restores INV_001 to INV_005, and running recovery twice equals running it once",
    "INV_007": "every violation is visible: the processor's own records agree with the history",
    "INV_008": "liveness: a job ends dead only when each of its attempts ended in a handled failure "
               "or in a crash, pause, lost acknowledgement or expiry that a fault caused",
}
#: History events that record a fault injected into (or suffered by) an actor.
FAULT_KINDS = frozenset({"crash", "pause", "lost_ack", "skew"})
#: How an attempt (a lease) ends: the lease holder's own verdict, or the reaper's.
_HANDLED_ENDS = frozenset({"retry", "dead"})
_EXPIRY_ENDS = frozenset({"expire", "expire_dead"})
_TRANSITION_EVENTS = frozenset(event for _, event in TRANSITIONS)


@dataclass(frozen=True)
class Violation:
    invariant: str
    job: int | None
    events: tuple[int, ...]
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"invariant": self.invariant, "job": self.job, "events": list(self.events),
                "detail": self.detail}

    def __str__(self) -> str:
        return f"{self.invariant} job {self.job}: {self.detail} (events {list(self.events)})"


def _by_job(events: list[Event], kinds: set[str] | frozenset[str]) -> dict[int, list[Event]]:
    out: dict[int, list[Event]] = defaultdict(list)
    for e in events:
        if e["kind"] in kinds and e["job"] is not None:
            out[e["job"]].append(e)
    return out


def _replayed_states(events: list[Event]) -> dict[int, str]:
    states: dict[int, str] = {}
    for e in events:
        if e["kind"] == "enqueue":
            states[e["job"]] = INITIAL_STATE
        elif e["kind"] in _TRANSITION_EVENTS:
            states[e["job"]] = e["to"]
    return states


def _replayed_tokens(events: list[Event]) -> dict[int, int]:
    """Job -> its fencing token as the history issued it (enqueue's, then each claim's)."""
    tokens: dict[int, int] = {}
    for e in events:
        if e["kind"] == "enqueue" or e["kind"] == "claim":
            tokens[e["job"]] = e["token"] or 0
    return tokens


def check_inv000_well_formed(events: list[Event], store: Store) -> list[Violation]:
    """INV_000: the history and the store's rows have the shape the other checkers read
    (:mod:`failfirst.proofs.wellformed`); one finding per malformed event or row."""
    findings, _, _ = judgeable(events, store)
    return [Violation(WELL_FORMED, f.job, f.events, f.detail) for f in findings]


def check_inv001_effect_once(events: list[Event], store: Store) -> list[Violation]:
    """INV_001: no (job, part) effect twice; every succeeded job has its effect."""
    out = []
    effects = _by_job(events, {"effect"})
    for job, evs in sorted(effects.items()):
        per_part: dict[str, list[Event]] = defaultdict(list)
        for e in evs:
            per_part[e["part"]].append(e)
        for part, applied in sorted(per_part.items()):
            if len(applied) > 1:
                tokens = sorted({e["token"] for e in applied})
                out.append(Violation(
                    "INV_001", job, tuple(e["seq"] for e in applied),
                    f"effect {part!r} was applied {len(applied)} times, by leases {tokens}",
                ))
    # An external effect (FM_010): the provider's own ledger of `charge` events. A
    # refund does not undo a double charge: the customer saw it (recovery: INV_006).
    charges = _by_job(events, {"charge"})
    for job, applied in sorted(charges.items()):
        if len(applied) > 1:
            out.append(Violation(
                "INV_001", job, tuple(e["seq"] for e in applied),
                f"the provider charged the job {len(applied)} times "
                f"({', '.join(e['charge'] for e in applied)}): an external effect applied twice",
            ))
    out.extend(_deliveries_once(events))
    for job, state in sorted(_replayed_states(events).items()):
        if state == "succeeded" and job not in effects and job not in charges:
            done = [e["seq"] for e in events if e["job"] == job and e["kind"] == "complete"]
            out.append(Violation("INV_001", job, tuple(done),
                                 "the job succeeded but no effect was ever applied"))
    return out


def _announced(events: list[Event]) -> dict[tuple[int, int], int]:
    """(job, lease token) of every committed change that announces messages -> how many
    (FM_009: an ``effect`` event carries ``messages`` when its change has some)."""
    out: dict[tuple[int, int], int] = {}
    for e in events:
        if e["kind"] == "effect" and e.get("messages"):
            out[(e["job"], e["token"])] = e["messages"]
    return out


def _deliveries_once(events: list[Event]) -> list[Violation]:
    """INV_001 for messages (FM_009): every committed change that announces messages
    has exactly that many processed by the consumer (``consume`` events) — more is a
    duplicate; fewer, once the run has ended, a lost message."""
    announced = _announced(events)
    ended = any(e["kind"] == "end" for e in events)
    consumed: dict[tuple[int, int], list[int]] = defaultdict(list)
    for e in events:
        if e["kind"] == "consume":
            consumed[(e["job"], e["token"])].append(e["seq"])
    out = []
    for (job, token), n in sorted(announced.items()):
        got = consumed.get((job, token), [])
        if len(got) > n or (ended and len(got) < n):
            effect = [e["seq"] for e in events if e["kind"] == "effect" and e["job"] == job
                      and e["token"] == token]
            out.append(Violation(
                "INV_001", job, tuple(effect[:1] + got),
                f"the change committed under lease {token} announced {plural(n, 'message')}; the "
                f"consumer processed {len(got)}" + (": a message was lost" if len(got) < n
                                                    else ": a message was delivered twice"),
            ))
    return out


def check_inv002_all_or_nothing(events: list[Event], store: Store) -> list[Violation]:
    """INV_002: the parts of one attempt's effect commit together, in one transaction."""
    out = []
    attempts: dict[tuple[int, int], list[Event]] = defaultdict(list)
    for e in events:
        if e["kind"] == "effect":
            attempts[(e["job"], e["token"])].append(e)
    for (job, token), evs in sorted(attempts.items()):
        expected = max(e["parts"] for e in evs)
        seqs = tuple(e["seq"] for e in evs)
        transactions = {e["tx"] for e in evs}
        if len({e["part"] for e in evs}) < expected:
            out.append(Violation("INV_002", job, seqs,
                                 f"lease {token} applied {len(evs)} of {expected} effect parts: "
                                 "the effect is torn"))
        elif len(transactions) > 1:
            out.append(Violation("INV_002", job, seqs,
                                 f"lease {token}'s effect parts committed in {len(transactions)} "
                                 "transactions, so a partial effect was visible between them"))
    # A message is part of the change it announces (FM_009): one the consumer processed
    # for a change that never committed is half of an effect, visible without the rest.
    announced = _announced(events)
    for e in events:
        if e["kind"] == "consume" and (e["job"], e["token"]) not in announced:
            out.append(Violation(
                "INV_002", e["job"], (e["seq"],),
                f"the consumer processed {e['message']}, announcing a change under lease "
                f"{e['token']} that never committed",
            ))
    return out


def check_inv003_transitions(events: list[Event], store: Store) -> list[Violation]:
    """INV_003: replay every state change against the table and the current token."""
    out = []
    state: dict[int, str] = {}
    token: dict[int, int] = {}
    newest_write: dict[str, int] = {}  # downstream row -> newest token that wrote it
    for e in events:
        job, kind = e["job"], e["kind"]
        if kind == "enqueue":
            state[job], token[job] = INITIAL_STATE, e["token"] or 0
            continue
        if kind == "write":  # a fenced downstream resource (FM_006): never back in time
            newest = newest_write.get(e["key"], 0)
            if e["token"] < newest:
                out.append(Violation(
                    "INV_003", job, (e["seq"],),
                    f"{e['actor']} accepted a write to {e['key']!r} with lease {e['token']} after "
                    f"one with lease {newest}: a stale write, the newer value is lost",
                ))
            newest_write[e["key"]] = max(newest, e["token"])
            continue
        if kind == "heartbeat" and job in state and (
                state[job] != "leased" or e["token"] != token[job]):
            out.append(Violation(
                "INV_003", job, (e["seq"],),
                f"{e['actor']} extended the lease with lease {e['token']} while the job was "
                f"{state[job]} under lease {token[job]}: a zombie's heartbeat was accepted",
            ))
            continue
        if kind not in _TRANSITION_EVENTS and kind != "effect":
            continue
        if job not in state:
            out.append(Violation("INV_003", job, (e["seq"],), f"{kind} on a job never enqueued"))
            continue
        if kind == "effect":
            if e["token"] != token[job] or state[job] != "leased":
                out.append(Violation(
                    "INV_003", job, (e["seq"],),
                    f"{e['actor']} wrote an effect with lease {e['token']} while the job was "
                    f"{state[job]} under lease {token[job]}: a stale write",
                ))
            continue
        expected = TRANSITIONS.get((state[job], kind))
        if expected is None or e["from"] != state[job] or e["to"] != expected:
            out.append(Violation(
                "INV_003", job, (e["seq"],),
                f"{kind} took the job from {e['from']} to {e['to']}, but it was {state[job]} "
                f"and the table allows {expected}",
            ))
        if kind == "claim":
            # A claim is the only change that issues a token, and it issues the next one:
            # a token not above the last is reused, one further above skipped or forged.
            if e["token"] != token[job] + 1:
                out.append(Violation(
                    "INV_003", job, (e["seq"],),
                    f"claim issued token {e['token']}, but the job's token was {token[job]}, "
                    f"so the next is {token[job] + 1}"
                    + (": a token reused" if e["token"] <= token[job] else ": tokens skipped"),
                ))
            token[job] = e["token"]
        elif kind in LEASE_HOLDER_EVENTS and e["token"] != token[job]:
            out.append(Violation(
                "INV_003", job, (e["seq"],),
                f"{e['actor']} made {kind} with lease {e['token']}, but the current lease is "
                f"{token[job]}: a zombie write was accepted",
            ))
        state[job] = e["to"]
    return out


def check_inv004_progress(events: list[Event], store: Store) -> list[Violation]:
    """INV_004: when the run ends, every job is terminal (the run ends at the latest
    ``progress_bound_s`` after the last fault)."""
    start = next((e for e in events if e["kind"] == "start"), None)
    end = next((e for e in reversed(events) if e["kind"] == "end"), None)
    if end is None:
        return []  # a run still going (or a real run checked mid-way): no verdict yet
    bound_s = start["progress_bound_s"] if start else None
    out = []
    for job, state in sorted(_replayed_states(events).items()):
        if state in TERMINAL_STATES:
            continue
        last = [e["seq"] for e in events if e["job"] == job][-3:]
        why = {"quiescent": "no actor will ever move it",
               "horizon": f"the progress bound of {bound_s} s after the last fault ran out",
               "max_steps": "the run's step bound ran out"}.get(end["reason"], end["reason"])
        since = ("with no fault in the run" if end.get("last_fault_s") is None
                 else f"{end['t'] - end['last_fault_s']:g} s after the last fault")
        out.append(Violation("INV_004", job, tuple(last),
                             f"the job is still {state} at t={end['t']:g} s, {since}: {why}"))
    return out


def check_inv005_bounded_work(events: list[Event], store: Store) -> list[Violation]:
    """INV_005: claims per job within max_attempts, downstream calls per job within the
    declared bound (both counted afresh after a redrive), all downstream calls of the
    run within the declared total, and the retries that reach the dependency within any
    window of ``retry_window_s`` seconds within the declared peak."""
    out = []
    start = next((e for e in events if e["kind"] == "start"), {})
    max_attempts: dict[int, int] = {}
    claims: dict[int, list[int]] = defaultdict(list)
    calls: dict[int, list[int]] = defaultdict(list)
    all_calls: list[int] = []
    retries: list[tuple[float, int]] = []  # (arrival time, seq) of every retried call
    for e in events:
        job, kind = e["job"], e["kind"]
        if kind == "call":
            all_calls.append(e["seq"])
            if e.get("retry"):
                retries.append((e["at_s"], e["seq"]))
        if kind == "enqueue":
            max_attempts[job] = e["max_attempts"]
        elif kind == "redrive":
            claims[job] = []
            calls[job] = []
        elif kind == "claim":
            claims[job].append(e["seq"])
            if len(claims[job]) == max_attempts.get(job, 0) + 1:
                out.append(Violation(
                    "INV_005", job, tuple(claims[job]),
                    f"the job was attempted {len(claims[job])} times; max_attempts is "
                    f"{max_attempts[job]}",
                ))
        elif kind == "call" and job is not None:
            calls[job].append(e["seq"])
    bound = start.get("max_calls_per_job")
    if bound is not None:
        for job, seqs in sorted(calls.items()):
            if len(seqs) > bound:
                out.append(Violation("INV_005", job, tuple(seqs[:3]) + tuple(seqs[-3:]),
                                     f"the job made {len(seqs)} downstream calls; the bound is {bound}"))
    total = start.get("max_calls_total")
    if total is not None and len(all_calls) > total:
        out.append(Violation("INV_005", None, tuple(all_calls[:3]) + tuple(all_calls[-3:]),
                             f"the run made {len(all_calls)} downstream calls in all; the bound "
                             f"is {total}"))
    peak = start.get("max_retries_per_window")
    if peak is not None:
        out.extend(_retry_peak(retries, peak, start["retry_window_s"]))
    return out


def _retry_peak(retries: list[tuple[float, int]], bound: int, window_s: float) -> list[Violation]:
    """The busiest window of ``window_s`` seconds: one violation when more than ``bound``
    retries arrived in it (a herd), naming the window's calls."""
    retries = sorted(retries)
    most, first = 0, 0
    lo = 0
    for hi, (at_s, _) in enumerate(retries):  # two pointers: each call enters and leaves once
        while retries[lo][0] <= at_s - window_s:
            lo += 1
        if hi - lo + 1 > most:
            most, first = hi - lo + 1, lo
    if most <= bound:
        return []
    herd = retries[first:first + most]
    return [Violation("INV_005", None, tuple(seq for _, seq in herd[:3] + herd[-3:]),
                      f"{most} retries reached the dependency within {window_s:g} s "
                      f"(from t={herd[0][0]:g} s); the bound is {bound}")]


def check_inv007_records_agree(events: list[Event], store: Store) -> list[Violation]:
    """INV_007: the store's own records (jobs, effects, dead letters) match the history."""
    out = []
    replayed = _replayed_states(events)
    tokens = _replayed_tokens(events)
    for job_id, state, token, _ in store.job_records():
        if replayed.get(job_id) != state:
            out.append(Violation("INV_007", job_id, (),
                                 f"the store says {state}, the history says {replayed.get(job_id)}"))
        elif token != tokens.get(job_id):
            out.append(Violation("INV_007", job_id, (),
                                 f"the store says lease {token}, the history's newest is "
                                 f"{tokens.get(job_id)}"))
    stored: dict[tuple[int, str], int] = defaultdict(int)
    for job_id, part, _token, _amount in store.effects():
        stored[(job_id, part)] += 1
    logged: dict[tuple[int, str], int] = defaultdict(int)
    for e in events:
        if e["kind"] == "effect":
            logged[(e["job"], e["part"])] += 1
        elif e["kind"] == "repair":
            logged[(e["job"], e["part"])] -= 1
    for key in sorted(set(stored) | set(logged)):
        if stored[key] != logged[key]:
            out.append(Violation("INV_007", key[0], (),
                                 f"effect {key[1]!r}: {stored[key]} rows stored, {logged[key]} logged"))
    dead_letters = {job_id for job_id, _, _ in store.dead_letters()}
    for job_id, state in sorted(replayed.items()):
        if (state == "dead") != (job_id in dead_letters):
            out.append(Violation("INV_007", job_id, (),
                                 f"the job is {state} but its dead-letter record "
                                 f"{'is missing' if state == 'dead' else 'remains'}"))
    return out


def check_inv006_recovered(events: list[Event], store: Store) -> list[Violation]:
    """INV_006, judged after a recovery: the *net* effect of every job — its ``effect``
    events minus the ``repair`` events that removed parts — is all-or-nothing and
    applied at most once per part, a succeeded job has it whole, and the ``effects``
    table holds exactly that. (The history keeps the violations that happened before
    the recovery; this asks whether recovery left the state as if they had not.)"""
    out = []
    net: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    expected: dict[int, int] = {}
    seqs: dict[int, list[int]] = defaultdict(list)
    for e in events:
        if e["kind"] in ("effect", "repair"):
            net[e["job"]][e["part"]] += 1 if e["kind"] == "effect" else -1
            seqs[e["job"]].append(e["seq"])
            if e["kind"] == "effect":
                expected[e["job"]] = max(expected.get(e["job"], 0), e["parts"])
    # External charges (FM_010): net of refunds, at most one per job, and one for a
    # succeeded job that was ever charged (the provider's charge is then its effect).
    charged: dict[int, int] = defaultdict(int)
    for e in events:
        if e["kind"] in ("charge", "refund"):
            charged[e["job"]] += 1 if e["kind"] == "charge" else -1
    states = _replayed_states(events)
    for job in sorted(set(states) | set(net)):
        parts = {part: n for part, n in net[job].items() if n}
        where = tuple(seqs[job][-4:])
        for part, n in sorted(parts.items()):
            if n > 1 or n < 0:
                out.append(Violation("INV_006", job, where,
                                     f"after recovery, effect {part!r} stands applied {n} times"))
        if 0 < len(parts) < expected.get(job, 0):
            out.append(Violation("INV_006", job, where,
                                 f"after recovery, {len(parts)} of {expected[job]} effect parts "
                                 "stand: the effect is still torn"))
        if states.get(job) == "succeeded" and not parts and job not in charged:
            out.append(Violation("INV_006", job, where,
                                 "after recovery, the job is succeeded but no effect stands"))
    out.extend(downstream_lost_updates(events))
    stored: dict[tuple[int, str], int] = defaultdict(int)
    for job_id, part, _token, _amount in store.effects():
        stored[(job_id, part)] += 1
    for job, parts in sorted(net.items()):
        for part, n in sorted(parts.items()):
            if stored.pop((job, part), 0) != n:
                out.append(Violation("INV_006", job, (),
                                     f"effect {part!r}: the store and the history disagree"))
    for (job, part), n in sorted(stored.items()):
        out.append(Violation("INV_006", job, (), f"effect {part!r}: {n} rows with no history"))
    for job, n in sorted(charged.items()):
        if n > 1 or n < 0 or (n == 0 and states.get(job) == "succeeded"):
            out.append(Violation("INV_006", job, (),
                                 f"after recovery, the provider holds {n} live charges for the job"))
    return out


def downstream_lost_updates(events: list[Event]) -> list[Violation]:
    """After recovery, every downstream row holds the value of the newest lease that
    wrote it: its last ``write`` or ``restore`` carries the newest token ever written."""
    last: dict[str, Event] = {}
    newest: dict[str, int] = {}
    for e in events:
        if e["kind"] in ("write", "restore"):
            last[e["key"]] = e
            newest[e["key"]] = max(newest.get(e["key"], 0), e["token"])
    return [Violation("INV_006", e["job"], (e["seq"],),
                      f"after recovery, row {key!r} holds the value of lease {e['token']}, "
                      f"not of the newest, {newest[key]}: the lost update stands")
            for key, e in sorted(last.items()) if e["token"] < newest[key]]


def check_inv008_dead_only_for_cause(events: list[Event], store: Store) -> list[Violation]:
    """INV_008: a dead letter needs a cause. INV_004 counts ``dead`` as progress, so a
    lease or heartbeat bug that lets healthy jobs expire until their attempts run out
    would pass it; this names every job that ends dead although one of its attempts
    (since its last redrive) ended in an expiry with no fault of its holder in between,
    or ended in neither a handled failure nor an expiry."""
    out = []
    claims: dict[int, list[Event]] = defaultdict(list)  # job -> attempts since its last redrive
    ends: dict[tuple[int, int], Event] = {}  # (job, claim seq) -> the event that ended it
    open_claim: dict[int, Event] = {}
    faults: dict[str, list[int]] = defaultdict(list)  # actor -> seqs of its faults
    # A skewed clock stays skewed (it is the machine's, across restarts): it excuses
    # every later expiry of its worker's leases, not only the attempt it struck in.
    skewed_at: dict[str, int] = {}  # actor -> seq of its first skew
    final: dict[int, str] = {}
    for e in events:
        kind, job = e["kind"], e["job"]
        if kind in FAULT_KINDS:
            faults[e["actor"]].append(e["seq"])
            if kind == "skew":
                skewed_at.setdefault(e["actor"], e["seq"])
            continue
        if job is None or kind not in _TRANSITION_EVENTS:
            continue
        final[job] = e["to"]
        if kind == "redrive":
            claims[job] = []
        elif kind == "claim":
            claims[job].append(e)
            open_claim[job] = e
        elif job in open_claim and kind in _HANDLED_ENDS | _EXPIRY_ENDS | {"complete"}:
            ends[(job, open_claim.pop(job)["seq"])] = e
    for job, state in sorted(final.items()):
        if state != "dead":
            continue
        for n, claim in enumerate(claims[job], start=1):
            end = ends.get((job, claim["seq"]))
            if end is not None and end["kind"] in _HANDLED_ENDS:
                continue
            if end is not None and end["kind"] in _EXPIRY_ENDS and (any(
                    claim["seq"] < seq < end["seq"] for seq in faults[claim["actor"]])
                    or skewed_at.get(claim["actor"], end["seq"]) < end["seq"]):
                continue
            how = "never ended" if end is None else f"ended in {end['kind']}"
            out.append(Violation(
                "INV_008", job, (claim["seq"],) + (() if end is None else (end["seq"],)),
                f"the job was dead-lettered, but attempt {n} (lease {claim['token']}, "
                f"{claim['actor']}) {how} with no fault of its holder: a healthy job was "
                "dead-lettered",
            ))
            break  # one violation names the job
    return out


CHECKERS: dict[str, Callable[[list[Event], Store], list[Violation]]] = {
    "INV_000": check_inv000_well_formed,
    "INV_001": check_inv001_effect_once,
    "INV_002": check_inv002_all_or_nothing,
    "INV_003": check_inv003_transitions,
    "INV_004": check_inv004_progress,
    "INV_005": check_inv005_bounded_work,
    "INV_007": check_inv007_records_agree,
    "INV_008": check_inv008_dead_only_for_cause,
}


def check(events: list[Event], store: Store) -> list[Violation]:
    """Every invariant, in id order: first INV_000, the shape of the input; then every
    other on what is well-formed (a malformed event, or any event of a job whose history
    is malformed, is named by INV_000 and judged by nothing else)."""
    findings, sound, view = judgeable(events, store)
    out = [Violation(WELL_FORMED, f.job, f.events, f.detail) for f in findings]
    for invariant, checker in CHECKERS.items():
        if invariant != WELL_FORMED:
            out.extend(checker(sound, view))
    return out
