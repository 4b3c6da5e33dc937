"""Is the judge's input well-formed? The one place that validates an event's shape.

The checkers read fields of events and rows and assume their types: a claim's token
is an integer, every job an event names was enqueued before, an effect names its part.
A history read back from a file can break any of that (a hand edit, a damaged row, a
deleted enqueue event), and a checker that trips over it would crash instead of
judging. So before any invariant is judged, :func:`judgeable` checks every event
against :data:`EVENT_SHAPES` (exactly the fields the checkers read, kind by kind) and
every row the checkers read from the store, and returns:

- one INV_000 finding per problem ("the history is malformed at seq N: ..."), naming
  the job where there is one;
- the events the checkers may judge: the well-formed ones, without any event of a job
  whose history is malformed (a job whose enqueue was deleted, or with one damaged
  event, is judged only as malformed: its other events no longer tell its story);
- a view of the store without those jobs' rows, nor rows that are malformed.

Histories the simulator records are well-formed by construction; the check costs one
pass over the events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from failfirst.processor.transitions import LEASE_HOLDER_EVENTS, STATES, TRANSITIONS
from failfirst.store.interface import ATTEMPT_OUTCOMES
from failfirst.store.rows import MALFORMED

WELL_FORMED = "INV_000"
Event = dict[str, Any]
Test = Callable[[Any], bool]
_MISSING = object()
_NONE = type(None)


@dataclass(frozen=True)
class Field:
    """What one field of an event holds: a value of one of ``types`` that passes ``test``
    (if given); ``None`` only if ``NoneType`` is among the types; the field may be left
    out only if ``optional``."""

    types: frozenset[type]
    test: Test | None = None
    optional: bool = False


def _finite(v: Any) -> bool:
    return v == v and v not in (float("inf"), float("-inf"))


def _is_state(v: Any) -> bool:
    return v in STATES


_INT = Field(frozenset({int}))
_COUNT = Field(frozenset({int}), lambda v: v >= 1)
_NUMBER = Field(frozenset({int, float}), _finite)
_TEXT = Field(frozenset({str}))
_STATE = Field(frozenset({str}), _is_state)
_OR_NULL_INT = Field(frozenset({int, _NONE}))
_OR_NULL_STATE = Field(frozenset({str, _NONE}), _is_state)
_OPTIONAL_INT = Field(frozenset({int, _NONE}), optional=True)
_OPTIONAL_NUMBER = Field(frozenset({int, float, _NONE}), _finite, optional=True)
_OPTIONAL_FLAG = Field(frozenset({bool, _NONE}), optional=True)
_OPTIONAL_POSITIVE = Field(frozenset({int, float, _NONE}), lambda v: _finite(v) and v > 0,
                           optional=True)

#: What every event carries: the event log's columns.
BASE_SHAPE: dict[str, Field] = {
    "seq": _INT, "t": _NUMBER, "actor": _TEXT, "kind": _TEXT, "job": _OR_NULL_INT,
    "from": _OR_NULL_STATE, "to": _OR_NULL_STATE, "token": _OR_NULL_INT,
}
_TRANSITION: dict[str, Field] = {"job": _INT, "from": _STATE, "to": _STATE}
#: Kind -> the fields the checkers read from events of that kind, and what each holds
#: (beyond :data:`BASE_SHAPE`). A kind not listed needs only the base fields.
EVENT_SHAPES: dict[str, dict[str, Field]] = {
    "enqueue": {"job": _INT, "to": _STATE, "max_attempts": _COUNT},
    "claim": {**_TRANSITION, "token": _INT},
    **{kind: {**_TRANSITION, "token": _INT} for kind in LEASE_HOLDER_EVENTS},
    **{kind: _TRANSITION for _, kind in TRANSITIONS if kind != "claim"
       and kind not in LEASE_HOLDER_EVENTS},
    "effect": {"job": _INT, "token": _INT, "part": _TEXT, "parts": _COUNT, "tx": _INT,
               "messages": _OPTIONAL_INT},
    "heartbeat": {"job": _INT},
    "write": {"key": _TEXT, "token": _INT},
    "restore": {"key": _TEXT, "token": _INT},
    "charge": {"job": _INT, "charge": _TEXT},
    "refund": {"job": _INT},
    "consume": {"job": _INT, "token": _INT, "message": _TEXT},
    "call": {"retry": _OPTIONAL_FLAG, "at_s": _OPTIONAL_NUMBER},
    "repair": {"job": _INT, "part": _TEXT},
    "start": {"progress_bound_s": _OPTIONAL_NUMBER, "max_calls_per_job": _OPTIONAL_INT,
              "max_calls_total": _OPTIONAL_INT, "max_retries_per_window": _OPTIONAL_INT,
              "retry_window_s": _OPTIONAL_POSITIVE},
    "end": {"reason": _TEXT, "last_fault_s": _OPTIONAL_NUMBER},
}
_Spec = tuple[tuple[str, frozenset[type], "Test | None", bool], ...]


def _spec(fields: dict[str, Field]) -> _Spec:
    return tuple((name, f.types, f.test, f.optional) for name, f in fields.items())


#: The shapes flattened for the hot loop (the judge runs after every explored schedule).
_SPECS: dict[str, _Spec] = {kind: _spec({**BASE_SHAPE, **fields})
                            for kind, fields in EVENT_SHAPES.items()}
_BASE_SPEC = _spec(BASE_SHAPE)


def _shape_problem(e: Event) -> str | None:
    """Why the event is malformed, in a phrase; None if it is not."""
    kind = e.get("kind")
    spec = _SPECS.get(kind, _BASE_SPEC) if type(kind) is str else _BASE_SPEC
    for name, types, test, optional in spec:
        value = e.get(name, _MISSING)
        if value is _MISSING:
            if optional:
                continue
        elif type(value) in types and (test is None or value is None or test(value)):
            continue
        if MALFORMED in e:
            return str(e[MALFORMED])
        shown = "missing" if value is _MISSING else repr(value)[:40]
        what = f"a {kind[:20]} event" if type(kind) is str else "an event"
        return f"{what} with {name} {shown}"
    if MALFORMED in e:
        return str(e[MALFORMED])
    if kind == "call" and e.get("retry") and e.get("at_s") is None:
        return "a retried call without its arrival time at_s"
    if kind == "start" and e.get("max_retries_per_window") is not None \
            and e.get("retry_window_s") is None:
        return "a start event bounding retries per window without retry_window_s"
    return None


@dataclass(frozen=True)
class Finding:
    """One malformed thing: the job it concerns (None: none or unknown), the events (by
    seq) and what is wrong."""

    job: int | None
    events: tuple[int, ...]
    detail: str


def malformed_events(events: list[Event]) -> tuple[list[Finding], list[Event], set[int]]:
    """(findings, the well-formed events, the jobs whose history is malformed)."""
    findings: list[Finding] = []
    quarantined: set[int] = set()
    enqueued: set[int] = set()
    kept: list[Event] = []
    last_seq = 0
    for e in events:
        why = _shape_problem(e)
        if why is None:
            seq, job = e["seq"], e["job"]
            if seq <= last_seq:
                why = f"seq {seq} does not follow seq {last_seq}"
            elif job is not None:
                if e["kind"] == "enqueue":
                    if job in enqueued:
                        why = f"job {job} is enqueued a second time"
                    enqueued.add(job)
                elif job not in enqueued and job not in quarantined:
                    why = f"it names job {job}, which was never enqueued before it"
            if why is None:
                last_seq = seq
                kept.append(e)
                continue
        seq, job = e.get("seq"), e.get("job")
        where = f"at seq {seq}" if type(seq) is int else f"at an event with seq {repr(seq)[:20]}"
        job = job if type(job) is int else None
        findings.append(Finding(job, (seq,) if type(seq) is int else (),
                                f"the history is malformed {where}: {why}"))
        if job is not None:
            quarantined.add(job)
    if quarantined:
        kept = [e for e in kept if e["job"] is None or e["job"] not in quarantined]
    return findings, kept, quarantined


#: The columns of the rows the checkers read, as :class:`Field` s.
_OUTCOME = Field(frozenset({str, _NONE}), lambda v: v in ATTEMPT_OUTCOMES)
ROW_SHAPES: dict[str, tuple[Field, ...]] = {
    "effects": (_INT, _TEXT, _INT, _INT),  # job_id, part, token, amount
    "dead_letters": (_INT, _TEXT, _NUMBER),  # job_id, reason, t
    "attempts": (_INT, _INT, _TEXT, _NUMBER, _OUTCOME),  # job_id, token, worker, claimed_s, outcome
}


def _bad_column(row: tuple, fields: tuple[Field, ...]) -> int | None:
    for i, (value, f) in enumerate(zip(row, fields, strict=True)):
        if type(value) not in f.types or (f.test is not None and value is not None
                                          and not f.test(value)):
            return i
    return None


class SoundStore:
    """A read-only view of a store for the checkers: the rows they read, without the
    malformed ones and without the rows of jobs whose history is malformed. Every other
    attribute is the store's own."""

    def __init__(self, store: Any, quarantined: set[int], findings: list[Finding]) -> None:
        self._store = store
        self._records = []
        for job_id, state, token, payload in store.job_records():
            if not (type(job_id) is int and type(token) is int and state in STATES):
                findings.append(Finding(job_id if type(job_id) is int else None, (),
                                        f"the store is malformed: the jobs row of id {job_id!r} "
                                        f"holds state {state!r}, token {token!r}"))
                continue
            if payload is not None:
                findings.append(Finding(job_id, (), f"the store is malformed: job {job_id}'s "
                                                    f"payload {payload}"))
            if job_id not in quarantined:
                self._records.append((job_id, state, token, payload))
        self._tables = {table: self._rows(getattr(store, table)(), table, quarantined, findings)
                        for table in ROW_SHAPES}

    @staticmethod
    def _rows(rows: list[tuple], table: str, quarantined: set[int],
              findings: list[Finding]) -> list[tuple]:
        kept = []
        for row in rows:
            bad = _bad_column(row, ROW_SHAPES[table])
            if bad is not None:
                job = row[0] if type(row[0]) is int else None
                findings.append(Finding(job, (), f"the store is malformed: a row of {table} "
                                                 f"holds {repr(row[bad])[:40]} in column {bad + 1}"))
            elif row[0] not in quarantined:
                kept.append(row)
        return kept

    def job_records(self) -> list[tuple[int, str, int, str | None]]:
        return list(self._records)

    def job_states(self) -> dict[int, str]:
        return {job_id: state for job_id, state, _, _ in self._records}

    def effects(self, job_id: int | None = None) -> list[tuple]:
        return [r for r in self._tables["effects"] if job_id is None or r[0] == job_id]

    def dead_letters(self) -> list[tuple]:
        return list(self._tables["dead_letters"])

    def attempts(self, job_id: int | None = None) -> list[tuple]:
        return [r for r in self._tables["attempts"] if job_id is None or r[0] == job_id]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def judgeable(events: list[Event], store: Any) -> tuple[list[Finding], list[Event], SoundStore]:
    """(every finding, the events the checkers may judge, the store view they may read)."""
    findings, kept, quarantined = malformed_events(events)
    return findings, kept, SoundStore(store, quarantined, findings)
