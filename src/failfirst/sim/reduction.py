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
store's operations, which both backends share, and over-approximated:

- ``("row", j)``: job ``j``'s own data (state, token, attempts, its effects, its
  attempt log, its dead letter);
- ``("pend", j)``: whether ``j`` is pending and when it runs — a claim reads every
  one of them (``("pend", ANY)``), because claims compete for the queue's head;
- ``("lease", j)``: whether ``j`` is leased and until when — the reaper reads every one;
- ``("owner", w)``: which leases worker ``w`` holds (a crash event names its job);
- ``("jitter",)``: the queue's one backoff-jitter generator, drawn by every retry;
- ``("services",)``: per-run services handlers call (a downstream, a retry budget):
  every worker step in a scenario that has them touches them;
- ``("global",)``: anything not modelled (an unknown store method, an actor that is
  neither a worker nor the reaper): dependent on everything.

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
    """What one step read and wrote (see the module docstring for the keys)."""

    reads: frozenset[Key] = frozenset()
    writes: frozenset[Key] = frozenset()

    def __or__(self, other: Footprint) -> Footprint:
        return Footprint(self.reads | other.reads, self.writes | other.writes)

    def covers(self, other: Footprint) -> bool:
        return other.reads <= self.reads and other.writes <= self.writes


EMPTY = Footprint()


def _meets(xs: frozenset[Key], ys: frozenset[Key]) -> bool:
    for x in xs:
        for y in ys:
            if x[0] == "global" or y[0] == "global":
                return True
            if x[0] == y[0] and (len(x) == 1 or x[1] == y[1] or x[1] == ANY or y[1] == ANY):
                return True
    return False


def dependent(a: Footprint, b: Footprint) -> bool:
    """May the order of two steps with these footprints matter? (Sound: when in doubt, yes.)"""
    return _meets(a.writes, b.reads) or _meets(a.writes, b.writes) or _meets(b.writes, a.reads)


class SleepSetBlocked(Exception):
    """Every ready actor is asleep: each continuation of this state is equivalent to a
    schedule explored already. The run is cut off and not counted as a schedule."""


class StepRecorded(Exception):
    """A probe run stops here: the step it was run for has been recorded."""


# -- recording what a step touches ------------------------------------------------------


class _Recording:
    __slots__ = ("reads", "writes")

    def __init__(self) -> None:
        self.reads: set[Key] = set()
        self.writes: set[Key] = set()

    def footprint(self) -> Footprint:
        return Footprint(frozenset(self.reads), frozenset(self.writes))


def _job_keys(job_id: Any) -> tuple[Key, Key, Key]:
    return ("row", job_id), ("pend", job_id), ("lease", job_id)


_ALL_JOBS = _job_keys(ANY)
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

    def touch(self, reads: tuple[Key, ...] = (), writes: tuple[Key, ...] = ()) -> None:
        """Record an access to something outside the store (the jitter, services)."""
        rec = self.recording
        if rec is not None:
            rec.reads.update(reads)
            rec.writes.update(writes)

    def _owner_of(self, job_id: int) -> Any:
        job = super().job(job_id)  # type: ignore[misc]  # the backend's, recording nothing
        return None if job is None else job.lease_owner

    def _transition(self, rec: _Recording, job_id: int, from_state: str, to_state: str,
                    columns: Any) -> None:
        row, pend, lease = _job_keys(job_id)
        rec.reads.add(row)
        rec.writes.add(row)
        names = set(columns)
        if "pending" in (from_state, to_state) or "run_at_s" in names:
            rec.writes.add(pend)
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


#: Methods that touch nothing another step reads: the event log is the trace itself
#: (reordering independent steps reorders its events), transactions only scope writes.
_UNTRACKED = frozenset({"append_event", "append_events", "transaction", "reset", "close"})


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
           "backtrack", "next_index", "dependent", "ANY"]
