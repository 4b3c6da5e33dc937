"""Partial-order reduction: sleep sets over the explorer's depth-first search.

Two steps of different actors are **independent** when neither writes what the
other reads or writes: executed in either order from the same state they reach the
same state, and neither enables or disables the other. A schedule that differs from
an explored one only by swapping adjacent independent steps is the same history up
to the order of events that touch different jobs: every checker gives it the same
verdict and it ends in the same store state. Sleep sets (Godefroid, 1996; the
stateless form of Flanagan and Godefroid, POPL 2005) skip such schedules: after the
explorer has run every schedule that begins with actor ``a`` at some state, the
sibling branches that begin with another step ``b`` keep ``a`` asleep for as long as
the steps they take are independent of ``a``'s; a state where every ready actor is
asleep is cut off, because everything below it was already seen in another order.

Dependency is taken from what each step actually read and wrote, recorded by
:class:`StoreTracking` (mixed into either backend: :class:`TrackedStore` for SQLite,
:func:`tracked_simulation_store` for any simulation store URL) at the level of the
store's operations, which both backends share, and by the simulated services
through :func:`touch`, and over-approximated:

- ``("row", j)``: job ``j``'s own data (state, token, attempts, its effects, its
  attempt log, its dead letter);
- ``("pend", j)``: whether ``j`` is pending and claimable now — a claim reads every
  one of them (``("pend", ANY)``), because claims compete for the queue's head;
  ``("pend later", j)``: ``j`` made pending to run at a later time (a retry after
  its backoff), which no claim at this instant can find;
- ``("lease", j)``: whether ``j`` is leased and until when — the reaper reads every one;
- ``("owner", w)``: which leases worker ``w`` holds (a crash event names its job);
- ``("jitter",)``: the queue's one backoff-jitter generator, drawn by every jittered
  retry (a policy without jitter draws nothing and touches nothing);
- ``("outbox", m)``: outbox message ``m`` (written with its change, marked by the
  relay); ``("outbox order",)``: the order of the outbox's rows, which decides the
  message the relay takes next — every insert writes it, the relay reads it;
- ``("service", name)``: a downstream's shared memory (the window of a service with
  a capacity); ``("budget", name)``: the retry budget of a service's client;
  ``("resource", name, key)``: one row of a fenced downstream resource;
  ``("consumer", name, m)``: whether the consumer has processed message ``m``;
  ``("provider", name, ref)``: the payment provider's charges for one reference
  (a job) and its idempotency key;
- ``("services",)``: the run's services when one of them does not record what it
  touches (no ``records_footprints``: a reader's own world of HTTP services and a
  database, :mod:`failfirst.tasks`): every step of every actor writes it;
- ``("global",)``: anything not modelled (an unknown store method, an actor that is
  neither a worker, the reaper, the relay nor the recovery): dependent on everything.

Besides reads and writes a footprint has **adds**: updates that commute with each
other but not with a read or a write of the same key — a deposit into the retry
budget (``min(capacity, tokens + ratio)``: two deposits give the same tokens in
either order) or a consumer remembering a message id it does not check.

The event log is the trace. Its global numbering (``seq``, a transaction's ``tx``)
follows the order of the steps, and reordering two independent steps only renumbers
them; but each job's own sequence of events is what the checkers judge (a zombie's
write before or after the new holder's commit), so an event about job ``j`` writes
``("log", j)`` (``("log", None)``: an event about no job, such as a restart). Every
other name a step writes is per job, per key or per message, so that two steps about
different jobs commute (a charge's id is per reference).

A step's fault decisions belong to that step: the footprint of a sibling put to sleep
is the union over every fault variant of its step (every variant runs in the
subtree the explorer has just finished). Fault decisions share one budget, a counter
that only grows; a fault variant that the budget allows after other steps is allowed
before them too, so the budget creates no dependency (see the method chapter).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from failfirst.store import Store, StoreURL, parse_store_url

ANY = "*"
Key = tuple[Any, ...]
GLOBAL: Key = ("global",)


@dataclass(frozen=True)
class Footprint:
    """What one step read, wrote and added to (see the module docstring for the keys)."""

    reads: frozenset[Key] = frozenset()
    writes: frozenset[Key] = frozenset()
    #: Commutative updates: independent of each other, dependent on a read or a write.
    adds: frozenset[Key] = frozenset()

    def __or__(self, other: Footprint) -> Footprint:
        return Footprint(self.reads | other.reads, self.writes | other.writes,
                         self.adds | other.adds)

    def covers(self, other: Footprint) -> bool:
        return other.reads <= self.reads and other.writes <= self.writes and other.adds <= self.adds


EMPTY = Footprint()


def same_thing(x: Key, y: Key) -> bool:
    """Can keys ``x`` and ``y`` name the same thing? ``("global",)`` names everything;
    otherwise the kinds must agree and every further part be equal or ``ANY``. Keys of
    one kind but of different lengths are taken to meet (when in doubt, yes)."""
    if x[0] == "global" or y[0] == "global":
        return True
    if x[0] != y[0]:
        return False
    if len(x) != len(y):
        return True
    return all(a == b or a == ANY or b == ANY for a, b in zip(x[1:], y[1:], strict=True))


def _meets(xs: frozenset[Key], ys: frozenset[Key]) -> bool:
    return any(same_thing(x, y) for x in xs for y in ys)


def dependent(a: Footprint, b: Footprint) -> bool:
    """May the order of two steps with these footprints matter? (Sound: when in doubt, yes.)
    A write meets any access of the same key; an add meets a read or a write, never
    another add. Symmetric: ``dependent(a, b) == dependent(b, a)``."""
    return (_meets(a.writes, b.reads | b.writes | b.adds)
            or _meets(b.writes, a.reads | a.adds)
            or _meets(a.adds, b.reads) or _meets(b.adds, a.reads))


class SleepSetBlocked(Exception):
    """Every ready actor is asleep: each continuation of this state is equivalent to a
    schedule explored already. The run is cut off and not counted as a schedule."""


class StepRecorded(Exception):
    """A probe run stops here: the step it was run for has been recorded."""


# -- recording what a step touches ------------------------------------------------------


class _Recording:
    __slots__ = ("reads", "writes", "adds")

    def __init__(self) -> None:
        self.reads: set[Key] = set()
        self.writes: set[Key] = set()
        self.adds: set[Key] = set()

    def footprint(self) -> Footprint:
        return Footprint(frozenset(self.reads), frozenset(self.writes), frozenset(self.adds))


def touch(store: Any, *, reads: tuple[Key, ...] = (), writes: tuple[Key, ...] = (),
          adds: tuple[Key, ...] = ()) -> None:
    """Record, in the step in progress, an access to something outside the store's
    tables (a simulated service's memory). A no-op on a store that records nothing
    (real runs, runs without sleep sets)."""
    rec = getattr(store, "recording", None)
    if rec is not None:
        rec.reads.update(reads)
        rec.writes.update(writes)
        rec.adds.update(adds)


def _job_keys(job_id: Any) -> tuple[Key, Key, Key]:
    return ("row", job_id), ("pend", job_id), ("lease", job_id)


_ALL_JOBS = _job_keys(ANY)
_OUTBOX_ORDER: Key = ("outbox order",)
_LEASE_COLUMNS = frozenset({"lease_owner", "lease_expires_s"})


class StoreTracking:
    """Mixed into a store class, records the footprint of the step in progress.

    Outside a step (``recording`` None: setting up a run, idle wake-ups recomputed by
    the scheduler, the checkers) it is the plain store. Every public method of the
    backend that is not modelled here counts as a global read and write
    (:func:`tracked_class`), so a method added later is safe by default. The keys come
    from the interface's operations and their arguments, never from a backend's SQL,
    so both backends record the same footprints and prune the same schedules.
    """

    recording: _Recording | None = None

    def begin_step(self) -> None:
        self.recording = _Recording()

    def end_step(self) -> Footprint:
        assert self.recording is not None
        out = self.recording.footprint()
        self.recording = None
        return out

    def touch(self, reads: tuple[Key, ...] = (), writes: tuple[Key, ...] = (),
              adds: tuple[Key, ...] = ()) -> None:
        """Record an access to something outside the store (the jitter, services)."""
        touch(self, reads=reads, writes=writes, adds=adds)

    def _owner_of(self, job_id: int) -> Any:
        job = super().job(job_id)  # type: ignore[misc]  # the backend's, recording nothing
        return None if job is None else job.lease_owner

    def _pend_key(self, job_id: int, from_state: str, to_state: str, columns: Any) -> Key:
        """What a change to a job's place in the queue touches: ``("pend", j)`` when the
        job is claimable now (or was, and is taken), ``("pend later", j)`` when it only
        becomes pending at a later time (a retry after its backoff). No claim at this
        instant can find a job that runs later, so a claim and such a retry commute; the
        idle workers' wake-ups follow from the store after every step (the scheduler's
        ``_wake_idle``), not from either order."""
        run_at_s = columns.get("run_at_s") if isinstance(columns, dict) else None
        if (to_state == "pending" and from_state != "pending" and run_at_s is not None
                and run_at_s > self.clock.now_s()):
            return ("pend later", job_id)
        return ("pend", job_id)

    def _transition(self, rec: _Recording, job_id: int, from_state: str, to_state: str,
                    columns: Any) -> None:
        row, _, lease = _job_keys(job_id)
        rec.reads.add(row)
        rec.writes.add(row)
        names = set(columns)
        if "pending" in (from_state, to_state) or "run_at_s" in names:
            rec.writes.add(self._pend_key(job_id, from_state, to_state, columns))
        if "leased" in (from_state, to_state) or names & _LEASE_COLUMNS:
            rec.writes.add(lease)
            rec.writes.add(("owner", self._owner_of(job_id)))
        if isinstance(columns, dict) and columns.get("lease_owner") is not None:
            rec.writes.add(("owner", columns["lease_owner"]))

    # -- reads of one job -------------------------------------------------------

    def job(self, job_id: int):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.update(_job_keys(job_id))
        return super().job(job_id)

    def job_state(self, job_id: int):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.add(("row", job_id))
        return super().job_state(job_id)

    def attempts(self, job_id: int | None = None):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.add(("row", ANY if job_id is None else job_id))
        return super().attempts(job_id)

    def effects(self, job_id: int | None = None):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.add(("row", ANY if job_id is None else job_id))
        return super().effects(job_id)

    def effect_parts_expected(self, job_id: int):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.add(("row", job_id))
        return super().effect_parts_expected(job_id)

    # -- reads of every job -------------------------------------------------------

    def jobs(self):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.update(_ALL_JOBS)
        return super().jobs()

    def job_states(self):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.add(("row", ANY))
        return super().job_states()

    def counts_by_state(self):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.add(("row", ANY))
        return super().counts_by_state()

    def dead_letters(self):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.add(("row", ANY))
        return super().dead_letters()

    def job_by_key(self, idempotency_key: str):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.add(("row", ANY))
        return super().job_by_key(idempotency_key)

    def has_claimable(self, now_s: float) -> bool:
        if self.recording is not None:
            self.recording.reads.add(("pend", ANY))
        return super().has_claimable(now_s)

    def next_run_at_s(self) -> float | None:
        if self.recording is not None:
            self.recording.reads.add(("pend", ANY))
        return super().next_run_at_s()

    def next_claimable_job(self, now_s: float):  # type: ignore[no-untyped-def]
        job = super().next_claimable_job(now_s)
        if self.recording is not None:
            self.recording.reads.add(("pend", ANY))
            if job is not None:
                self.recording.reads.update(_job_keys(job.id))
        return job

    def next_claimable_jobs(self, now_s: float, limit: int):  # type: ignore[no-untyped-def]
        jobs = super().next_claimable_jobs(now_s, limit)
        if self.recording is not None:
            self.recording.reads.add(("pend", ANY))
            for job in jobs:
                self.recording.reads.update(_job_keys(job.id))
        return jobs

    def has_expired_lease(self, now_s: float) -> bool:
        if self.recording is not None:
            self.recording.reads.add(("lease", ANY))
        return super().has_expired_lease(now_s)

    def next_lease_expiry_s(self) -> float | None:
        if self.recording is not None:
            self.recording.reads.add(("lease", ANY))
        return super().next_lease_expiry_s()

    def expired_leases(self, now_s: float, limit: int):  # type: ignore[no-untyped-def]
        rows = super().expired_leases(now_s, limit)
        if self.recording is not None:
            self.recording.reads.add(("lease", ANY))
            for row in rows:
                self.recording.reads.update(_job_keys(row[0]))
        return rows

    def leases_ending_after(self, until_s: float, limit: int):  # type: ignore[no-untyped-def]
        rows = super().leases_ending_after(until_s, limit)
        if self.recording is not None:
            self.recording.reads.add(("lease", ANY))
            for row in rows:
                self.recording.reads.update(_job_keys(row[0]))
        return rows

    def job_leased_by(self, owner: str):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.add(("owner", owner))
        return super().job_leased_by(owner)

    # -- writes -------------------------------------------------------------------

    def compare_and_set_state(self, job_id, from_state, to_state, token, *,  # type: ignore[no-untyped-def]
                              bump_token, columns):
        if self.recording is not None:
            self._transition(self.recording, job_id, from_state, to_state, columns)
        return super().compare_and_set_state(job_id, from_state, to_state, token,
                                             bump_token=bump_token, columns=columns)

    def compare_and_set_states(self, from_state, to_state, rows, *,  # type: ignore[no-untyped-def]
                               bump_token, columns):
        if self.recording is not None:
            for job_id, _token, values in rows:
                self._transition(self.recording, job_id, from_state, to_state,
                                 dict(zip(columns, values, strict=True)))
        return super().compare_and_set_states(from_state, to_state, rows,
                                              bump_token=bump_token, columns=columns)

    def extend_lease(self, job_id: int, token: int | None, expires_s: float) -> bool:
        rec = self.recording
        if rec is not None:
            rec.reads.add(("row", job_id))
            rec.writes.add(("lease", job_id))
            rec.writes.add(("owner", self._owner_of(job_id)))
        return super().extend_lease(job_id, token, expires_s)

    def insert_attempt(self, job_id, token, worker, claimed_s):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.writes.add(("row", job_id))
        return super().insert_attempt(job_id, token, worker, claimed_s)

    def end_attempt(self, job_id, token, outcome):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.writes.add(("row", job_id))
        return super().end_attempt(job_id, token, outcome)

    def insert_attempts(self, rows):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.writes.update(("row", r[0]) for r in rows)
        return super().insert_attempts(rows)

    def end_attempts(self, rows, outcome):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.writes.update(("row", r[0]) for r in rows)
        return super().end_attempts(rows, outcome)

    def insert_effect(self, job_id, part, token, amount, parts, *, once):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.add(("row", job_id))
            self.recording.writes.add(("row", job_id))
        return super().insert_effect(job_id, part, token, amount, parts, once=once)

    def insert_effects_once(self, rows):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            keys = {("row", r[0]) for r in rows}
            self.recording.reads.update(keys)
            self.recording.writes.update(keys)
        return super().insert_effects_once(rows)

    def delete_effect_part(self, job_id, part, token):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.add(("row", job_id))
            self.recording.writes.add(("row", job_id))
        return super().delete_effect_part(job_id, part, token)

    def insert_dead_letter(self, job_id, reason, t):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.writes.add(("row", job_id))
        return super().insert_dead_letter(job_id, reason, t)

    def delete_dead_letter(self, job_id):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.writes.add(("row", job_id))
        return super().delete_dead_letter(job_id)

    # -- the event log ----------------------------------------------------------------

    def append_event(self, *, actor, job, kind, **fields):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.writes.add(("log", job))
        return super().append_event(actor=actor, job=job, kind=kind, **fields)

    def append_events(self, rows):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.writes.update(("log", row[1]) for row in rows)
        return super().append_events(rows)

    # -- the transactional outbox (FM_009) --------------------------------------------

    def insert_outbox_message(self, message_id, job_id, token, topic, body_json,  # type: ignore[no-untyped-def]
                              created_s):
        if self.recording is not None:
            # A new row, and a place in the order the relay takes rows in.
            self.recording.writes.update({("outbox", message_id), _OUTBOX_ORDER})
        return super().insert_outbox_message(message_id, job_id, token, topic, body_json, created_s)

    def unpublished_outbox(self, limit):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.update({("outbox", ANY), _OUTBOX_ORDER})
        return super().unpublished_outbox(limit)

    def next_outbox_s(self):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.add(("outbox", ANY))
        return super().next_outbox_s()

    def mark_outbox_published(self, message_id, published_s):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.add(("outbox", message_id))
            self.recording.writes.add(("outbox", message_id))
        return super().mark_outbox_published(message_id, published_s)

    def outbox(self):  # type: ignore[no-untyped-def]
        if self.recording is not None:
            self.recording.reads.update({("outbox", ANY), _OUTBOX_ORDER})
        return super().outbox()


#: Methods that touch nothing another step reads: transactions only scope writes.
_UNTRACKED = frozenset({"transaction", "reset", "close"})


def _global_access(method: Any, name: str) -> Any:
    def tracked(self: StoreTracking, *args: Any, **kwargs: Any) -> Any:
        if self.recording is not None:
            self.recording.reads.add(GLOBAL)
            self.recording.writes.add(GLOBAL)
        return method(self, *args, **kwargs)

    tracked.__name__ = name
    tracked.__doc__ = method.__doc__
    return tracked


def tracked_class(backend: type) -> type:
    """``backend`` with :class:`StoreTracking` mixed in. Every other public method
    (``events``, ``image``, ``insert_job`` and any added later) is a global access:
    over-approximating dependency is sound, under-approximating is not."""
    members: dict[str, Any] = {}
    for name in dir(backend):
        raw = inspect.getattr_static(backend, name)
        if (name.startswith("_") or name in _UNTRACKED or name in vars(StoreTracking)
                or isinstance(raw, classmethod | staticmethod | property | type)
                or not callable(raw)):
            continue
        members[name] = _global_access(getattr(backend, name), name)
    cls = type(f"Tracked{backend.__name__}", (StoreTracking, backend), members)
    cls.__module__ = __name__
    cls.__doc__ = f"{backend.__name__}, recording each step's footprint (see StoreTracking)."
    return cls


#: The SQLite store, in memory for the simulator, recording footprints.
TrackedStore = tracked_class(Store)
_TRACKED: dict[type, type] = {Store: TrackedStore}


def tracked_simulation_store(url: str | StoreURL | None, clock: Any, *,
                             owner_pid: int | None = None) -> Any:
    """What ``failfirst.store.simulation_store`` gives, recording footprints: SQLite
    in memory (None) or a private schema on a PostgreSQL server."""
    if url is None:
        return TrackedStore.memory(clock)
    parsed = parse_store_url(url) if isinstance(url, str) else url
    if parsed.kind != "postgresql":
        from failfirst.store.factory import simulation_store

        simulation_store(parsed, clock).close()  # the same refusals (a file is not a simulation)
        return TrackedStore.memory(clock)
    from failfirst.store.factory import require_driver

    require_driver(parsed)
    from failfirst.store.postgresql import PostgresStore

    cls = _TRACKED.setdefault(PostgresStore, tracked_class(PostgresStore))
    return cls.simulation(parsed, clock, owner_pid=owner_pid)


# -- the search ---------------------------------------------------------------------


@dataclass
class Frame:
    """One recorded decision of the current path: its value, its options, and for a
    scheduling decision the options asleep there, the footprints of the options
    explored before ``value`` and the footprint (so far) of ``value``'s step."""

    value: int
    n: int
    schedule: bool
    asleep: frozenset[int] = frozenset()
    done: list[tuple[int, Footprint]] = field(default_factory=list)
    footprint: Footprint = EMPTY


class SleepSetChoices:
    """A choice source that replays the persistent ``frames`` and extends them, taking
    the first option not asleep; the simulator tells it, before each scheduling
    decision, which options are asleep (``offer``) and, after the step, what the
    step touched (``record``)."""

    def __init__(self, frames: list[Frame], *, stop_after: Frame | None = None) -> None:
        self.frames = frames
        self.pos = 0
        self._asleep: frozenset[int] = frozenset()
        self.current: Frame | None = None
        #: A probe: stop the run once this decision's step is recorded.
        self.stop_after = stop_after

    def offer(self, asleep: frozenset[int]) -> None:
        self._asleep = asleep

    def choose(self, n: int, kind: str) -> int:
        schedule = kind == "schedule"
        asleep, self._asleep = (self._asleep if schedule else frozenset()), frozenset()
        i = self.pos
        self.pos += 1
        if i < len(self.frames):
            frame = self.frames[i]
            assert frame.n == n and frame.asleep == asleep and frame.schedule == schedule, \
                "the choice tree changed under the same prefix: nondeterminism"
        else:
            first = next(v for v in range(n) if v not in asleep)
            frame = Frame(first, n, schedule, asleep)
            self.frames.append(frame)
        self.current = frame if schedule else self.current
        return frame.value

    def siblings(self) -> list[tuple[int, Footprint]]:
        """Options explored before this one at the current scheduling decision."""
        assert self.current is not None
        return self.current.done

    def record(self, footprint: Footprint) -> None:
        """The step just taken at the current scheduling decision touched ``footprint``."""
        assert self.current is not None
        self.current.footprint = self.current.footprint | footprint
        if self.current is self.stop_after:
            raise StepRecorded

    @property
    def trail(self) -> list[tuple[int, int]]:
        return [(f.value, f.n) for f in self.frames[:self.pos]]


def _next_option(frame: Frame) -> int | None:
    return next((v for v in range(frame.value + 1, frame.n) if v not in frame.asleep), None)


def next_index(frames: list[Frame], floor: int = 0) -> int | None:
    """The decision :func:`backtrack` would change next (None: the search is over)."""
    return next((i for i in range(len(frames) - 1, floor - 1, -1)
                 if _next_option(frames[i]) is not None), None)


def backtrack(frames: list[Frame], floor: int = 0) -> bool:
    """Move ``frames`` to the next path in depth-first order, skipping options asleep
    where they were offered; False when every path below ``floor`` was taken. The
    option left behind keeps its footprint: its siblings put it to sleep."""
    for i in range(len(frames) - 1, floor - 1, -1):
        frame = frames[i]
        nxt = _next_option(frame)
        if nxt is None:
            continue
        if frame.schedule:
            frame.done = [*frame.done, (frame.value, frame.footprint)]
            frame.footprint = EMPTY
        frame.value = nxt
        del frames[i + 1:]
        return True
    return False


__all__ = ["Footprint", "StoreTracking", "TrackedStore", "tracked_class", "tracked_simulation_store",
           "SleepSetChoices", "SleepSetBlocked", "StepRecorded", "Frame",
           "backtrack", "next_index", "dependent", "same_thing", "touch", "ANY", "GLOBAL"]
