"""The reduction's dependency relation, tested where it is defined (issue 26).

- every store operation records the footprint the module docstring of
  :mod:`failfirst.sim.reduction` promises (reads and writes by key, wildcards
  included), on SQLite and on PostgreSQL, and a method the tracking does not model is
  a global access;
- :func:`~failfirst.sim.reduction.dependent` on hand-built footprints, in both
  argument orders;
- commutativity: for steps the reduction calls independent, sampled over explored
  states of every failure mode, both orders reach the same store state and the same
  per-job histories; a planted dependency mistake fails it.

``tests/test_por.py`` checks the reduction end to end (verdicts, final states and
per-job histories of reduced and unreduced searches) and ``tests/pinned_counts.json``
pins the schedule counts it gives.
"""

from __future__ import annotations

import dataclasses

import pytest

from failfirst.proofs.explorer import (
    BoundError,
    explore,
    final_state,
    job_histories,
    sleep_set_search,
    with_bounds,
)
from failfirst.proofs.run import simulate
from failfirst.sim import catalogue, reduction
from failfirst.sim.reduction import (
    ANY,
    GLOBAL,
    Footprint,
    Frame,
    StoreTracking,
    TrackedStore,
    dependent,
)
from failfirst.store import Store
from failfirst.store.clock import SimClock

# -- each store operation's footprint ------------------------------------------------------

W1, W2 = "w1", "w2"


def _fp(reads=(), writes=(), adds=()) -> Footprint:
    return Footprint(frozenset(reads), frozenset(writes), frozenset(adds))


def _row(j):
    return ("row", j)


def _pend(j):
    return ("pend", j)


def _lease(j):
    return ("lease", j)


def _job(j):
    return (_row(j), _pend(j), _lease(j))


def _seed(store) -> None:
    """Job 1 leased by w1 (token 1, lease until 10 s, an attempt and an effect part),
    job 2 pending and claimable, an outbox message m1; the clock at 5 s."""
    with store.transaction():
        for _ in range(2):
            store.insert_job("t", "{}", None, 0.0, 3)
        store.compare_and_set_state(1, "pending", "leased", 0, bump_token=True,
                                    columns={"lease_owner": W1, "lease_expires_s": 10.0,
                                             "attempts": 1})
        store.insert_attempt(1, 1, W1, 0.0)
        store.insert_effect(1, "p", 1, 5, 1, once=False)
        store.insert_outbox_message("m1", 1, 1, "topic", "{}", 0.0)
    store.clock.advance_to(5.0)


def _in_step(store, call):
    store.begin_step()
    try:
        with store.transaction():
            call(store)
    finally:
        footprint = store.end_step()
    return footprint


#: (operation, the footprint it must record) on the store of :func:`_seed`.
OPERATIONS = {
    "job": (lambda s: s.job(1), _fp(_job(1))),
    "job_state": (lambda s: s.job_state(1), _fp([_row(1)])),
    "attempts of a job": (lambda s: s.attempts(1), _fp([_row(1)])),
    "attempts of every job": (lambda s: s.attempts(), _fp([_row(ANY)])),
    "effects of a job": (lambda s: s.effects(1), _fp([_row(1)])),
    "effects of every job": (lambda s: s.effects(), _fp([_row(ANY)])),
    "effect_parts_expected": (lambda s: s.effect_parts_expected(1), _fp([_row(1)])),
    "jobs": (lambda s: s.jobs(), _fp(_job(ANY))),
    "job_states": (lambda s: s.job_states(), _fp([_row(ANY)])),
    "counts_by_state": (lambda s: s.counts_by_state(), _fp([_row(ANY)])),
    "dead_letters": (lambda s: s.dead_letters(), _fp([_row(ANY)])),
    "job_by_key": (lambda s: s.job_by_key("k"), _fp([_row(ANY)])),
    "has_claimable": (lambda s: s.has_claimable(5.0), _fp([_pend(ANY)])),
    "next_run_at_s": (lambda s: s.next_run_at_s(), _fp([_pend(ANY)])),
    # A claim reads the whole queue (claims compete for its head) and the job it finds.
    "next_claimable_job": (lambda s: s.next_claimable_job(5.0), _fp([_pend(ANY), *_job(2)])),
    "next_claimable_jobs": (lambda s: s.next_claimable_jobs(5.0, 4), _fp([_pend(ANY), *_job(2)])),
    "has_expired_lease": (lambda s: s.has_expired_lease(5.0), _fp([_lease(ANY)])),
    "next_lease_expiry_s": (lambda s: s.next_lease_expiry_s(), _fp([_lease(ANY)])),
    "expired_leases (none)": (lambda s: s.expired_leases(5.0, 4), _fp([_lease(ANY)])),
    "expired_leases (one)": (lambda s: s.expired_leases(11.0, 4), _fp([_lease(ANY), *_job(1)])),
    "leases_ending_after": (lambda s: s.leases_ending_after(6.0, 4), _fp([_lease(ANY), *_job(1)])),
    "job_leased_by": (lambda s: s.job_leased_by(W1), _fp([("owner", W1)])),
    # A claim: the job's row, its place in the queue, its lease, its old and new holder.
    "compare_and_set_state (claim)": (
        lambda s: s.compare_and_set_state(2, "pending", "leased", 0, bump_token=True,
                                          columns={"lease_owner": W2, "lease_expires_s": 15.0}),
        _fp([_row(2)], [_row(2), _pend(2), _lease(2), ("owner", None), ("owner", W2)])),
    # A retry after a backoff: pending later, which no claim at this instant can find.
    "compare_and_set_state (retry later)": (
        lambda s: s.compare_and_set_state(1, "leased", "pending", 1, bump_token=False,
                                          columns={"lease_owner": None, "lease_expires_s": None,
                                                   "run_at_s": 7.5}),
        _fp([_row(1)], [_row(1), ("pend later", 1), _lease(1), ("owner", W1)])),
    # A retry with no backoff: claimable at once, so a claim at this instant can find it.
    "compare_and_set_state (retry now)": (
        lambda s: s.compare_and_set_state(1, "leased", "pending", 1, bump_token=False,
                                          columns={"lease_owner": None, "lease_expires_s": None,
                                                   "run_at_s": 5.0}),
        _fp([_row(1)], [_row(1), _pend(1), _lease(1), ("owner", W1)])),
    # Expired and pending at once (the reaper): claimable now.
    "compare_and_set_state (expire)": (
        lambda s: s.compare_and_set_state(1, "leased", "pending", 1, bump_token=False,
                                          columns={"lease_owner": None, "lease_expires_s": None}),
        _fp([_row(1)], [_row(1), _pend(1), _lease(1), ("owner", W1)])),
    "compare_and_set_state (complete)": (
        lambda s: s.compare_and_set_state(1, "leased", "succeeded", 1, bump_token=False,
                                          columns={"lease_owner": None, "lease_expires_s": None}),
        _fp([_row(1)], [_row(1), _lease(1), ("owner", W1)])),
    "compare_and_set_states": (
        lambda s: s.compare_and_set_states("leased", "succeeded", [(1, 1, (None, None))],
                                           bump_token=False,
                                           columns=("lease_owner", "lease_expires_s")),
        _fp([_row(1)], [_row(1), _lease(1), ("owner", W1)])),
    "extend_lease": (lambda s: s.extend_lease(1, 1, 12.0),
                     _fp([_row(1)], [_lease(1), ("owner", W1)])),
    "insert_attempt": (lambda s: s.insert_attempt(2, 1, W2, 5.0), _fp(writes=[_row(2)])),
    "end_attempt": (lambda s: s.end_attempt(1, 1, "succeeded"), _fp(writes=[_row(1)])),
    "insert_attempts": (lambda s: s.insert_attempts([(2, 1, W2, 5.0)]), _fp(writes=[_row(2)])),
    "end_attempts": (lambda s: s.end_attempts([(1, 1)], "succeeded"), _fp(writes=[_row(1)])),
    "insert_effect": (lambda s: s.insert_effect(2, "p", 1, 5, 1, once=True),
                      _fp([_row(2)], [_row(2)])),
    "insert_effects_once": (lambda s: s.insert_effects_once([(2, "p", 1, 5, 1)]),
                            _fp([_row(2)], [_row(2)])),
    "delete_effect_part": (lambda s: s.delete_effect_part(1, "p", 1), _fp([_row(1)], [_row(1)])),
    "insert_dead_letter": (lambda s: s.insert_dead_letter(2, "why", 5.0), _fp(writes=[_row(2)])),
    "delete_dead_letter": (lambda s: s.delete_dead_letter(2), _fp(writes=[_row(2)])),
    # The event log: each job's own sequence is judged, so an event writes its job's log.
    "append_event": (lambda s: s.append_event(actor=W1, job=1, kind="heartbeat"),
                     _fp(writes=[("log", 1)])),
    "append_event (no job)": (lambda s: s.append_event(actor=W1, job=None, kind="restart"),
                              _fp(writes=[("log", None)])),
    "append_events": (lambda s: s.append_events([(W1, 1, "x", None, None, None, {}),
                                                 (W2, 2, "x", None, None, None, {})]),
                      _fp(writes=[("log", 1), ("log", 2)])),
    # The outbox: a row per message, and the order the relay takes them in.
    "insert_outbox_message": (lambda s: s.insert_outbox_message("m2", 1, 1, "t", "{}", 5.0),
                              _fp(writes=[("outbox", "m2"), ("outbox order",)])),
    "unpublished_outbox": (lambda s: s.unpublished_outbox(1),
                           _fp([("outbox", ANY), ("outbox order",)])),
    "next_outbox_s": (lambda s: s.next_outbox_s(), _fp([("outbox", ANY)])),
    "mark_outbox_published": (lambda s: s.mark_outbox_published("m1", 5.0),
                              _fp([("outbox", "m1")], [("outbox", "m1")])),
    "outbox": (lambda s: s.outbox(), _fp([("outbox", ANY), ("outbox order",)])),
    # Not modelled: a global access, dependent on everything.
    "insert_job": (lambda s: s.insert_job("t", "{}", None, 5.0, 3), _fp([GLOBAL], [GLOBAL])),
    "events": (lambda s: s.events(), _fp([GLOBAL], [GLOBAL])),
}


def _sqlite_store():
    return TrackedStore.memory(SimClock())


def _postgres_store(request):
    from failfirst.store import pgtools

    url = request.getfixturevalue("pg_admin_url")
    context = pgtools.throwaway_database(url, tag="ff_footprint")
    db = context.__enter__()
    request.addfinalizer(lambda: context.__exit__(None, None, None))
    store = reduction.tracked_simulation_store(db, SimClock())
    request.addfinalizer(store.close)
    return store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def tracked(request):
    store = _sqlite_store() if request.param == "sqlite" else _postgres_store(request)
    if request.param == "postgresql":
        store.reset(SimClock())
    _seed(store)
    return store


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_each_store_operation_records_its_footprint(tracked, name):
    call, expected = OPERATIONS[name]
    assert _in_step(tracked, call) == expected


def test_outside_a_step_nothing_is_recorded(tracked):
    assert tracked.recording is None
    tracked.jobs()
    with tracked.transaction():
        tracked.append_event(actor=W1, job=1, kind="x")
    assert tracked.recording is None


def test_every_store_method_is_modelled_or_global():
    """A method of the store that the tracking does not model (one added later) must be
    a global access: over-approximating is sound, forgetting a method is not."""
    modelled = set(vars(StoreTracking))
    untracked = reduction._UNTRACKED
    for name in dir(Store):
        if name.startswith("_") or name in untracked:
            continue
        raw = getattr(Store, name)
        if not callable(raw) or isinstance(vars(Store).get(name), classmethod | staticmethod):
            continue
        owner = next(k for k in TrackedStore.__mro__ if name in vars(k))
        assert owner in (StoreTracking, TrackedStore), f"{name} is neither modelled nor global"
        if owner is TrackedStore:
            assert name not in modelled
    assert {"insert_job", "events", "image"} <= set(vars(TrackedStore))


def test_every_operation_in_the_table_exists():
    """The table above covers every modelled method: a method modelled later without a
    row here is a footprint nobody checked."""
    covered = {name.split(" ")[0] for name in OPERATIONS}
    modelled = {name for name, value in vars(StoreTracking).items()
                if callable(value) and not name.startswith("_")}
    helpers = {"begin_step", "end_step", "touch"}
    assert modelled - helpers <= covered, modelled - helpers - covered


# -- each simulated service's footprint ---------------------------------------------------


def _ctx(job: int = 1, attempt: int = 1, token: int = 1, **guard_off: bool):
    from failfirst.processor.policies import Guardrails
    from failfirst.processor.queue import HandlerContext

    guard = Guardrails()
    for name in guard_off:
        guard = guard.without(name)
    return HandlerContext(job, attempt, lambda: 5.0, "test", guard=guard, token=token, worker=W1)


def _service_step(call):
    store = TrackedStore.memory(SimClock())
    store.begin_step()
    try:
        call(store)
    finally:
        footprint = store.end_step()
    return footprint


def _downstream(store, **kwargs):
    from failfirst.sim.services import Downstream

    return Downstream(store, "api", **kwargs)


def _first_call(store):
    from failfirst.sim.services import Client, RetryBudget

    Client(_downstream(store), RetryBudget(0.5, 4.0), retries=0).call(_ctx())


def _first_then_retry(store, **guard_off):
    """A client's first call deposits into the budget; a retry withdraws from it."""
    from failfirst.sim.services import Client, RetryBudget

    client = Client(_downstream(store), RetryBudget(0.5, 4.0), retries=0)
    client.call(_ctx(**guard_off))
    store.end_step()
    store.begin_step()
    client.call(_ctx(attempt=2, **guard_off))


def _charge(store, key: bool):
    from failfirst.sim.services import PaymentProvider

    PaymentProvider(store).charge(_ctx(), 250, reference="job-1",
                                  idempotency_key="job-1" if key else None)


def _consume(store, dedup: bool):
    from failfirst.sim.services import Consumer

    Consumer(store, dedup=dedup).receive({"id": "m1", "job": 1, "token": 1, "topic": "t"})


def _write(store, fencing: bool):
    from failfirst.sim.services import VersionedResource

    VersionedResource(store, fencing=fencing).write(_ctx(), "doc-a", {"v": 1})


LOG1 = ("log", 1)
SERVICES = {
    # A downstream with no capacity keeps no memory: a call's answer is its time's.
    "downstream call": (lambda s: _downstream(s).handle(_ctx(), retry=False), _fp(writes=[LOG1])),
    "downstream call with a capacity": (
        lambda s: _downstream(s, capacity=2, window_s=1.0).handle(_ctx(), retry=False),
        _fp([("service", "api")], [("service", "api"), LOG1])),
    # The budget: the retry's step (the deposit was the first step's) reads and writes it.
    "retry through the budget": (lambda s: _first_then_retry(s),
                                 _fp([("budget", "api")], [("budget", "api"), LOG1])),
    "retry with the budget off": (lambda s: _first_then_retry(s, retry_budget=True),
                                  _fp(writes=[LOG1])),
    "first call: a deposit": (lambda s: _first_call(s), _fp(writes=[LOG1], adds=[("budget", "api")])),
    "charge with a key": (lambda s: _charge(s, True),
                          _fp([("provider", "payments", "job-1"), ("provider key", "payments", "job-1")],
                              [("provider", "payments", "job-1"), ("provider key", "payments", "job-1"),
                               LOG1])),
    "charge without a key": (lambda s: _charge(s, False),
                             _fp([("provider", "payments", "job-1")],
                                 [("provider", "payments", "job-1"), LOG1])),
    "consume, de-duplicating": (lambda s: _consume(s, True),
                                _fp([("consumer", "consumer", "m1")],
                                    [("consumer", "consumer", "m1"), LOG1])),
    "consume, not de-duplicating": (lambda s: _consume(s, False),
                                    _fp(writes=[LOG1], adds=[("consumer", "consumer", "m1")])),
    "fenced write": (lambda s: _write(s, True),
                     _fp([("resource", "documents", "doc-a")],
                         [("resource", "documents", "doc-a"), LOG1])),
    "unfenced write": (lambda s: _write(s, False),
                       _fp([("resource", "documents", "doc-a")],
                           [("resource", "documents", "doc-a"), LOG1])),
}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_call_records_its_footprint(name):
    call, expected = SERVICES[name]
    assert _service_step(call) == expected


def test_charges_for_two_jobs_commute_and_name_their_own_ids():
    """A charge's id is per reference, so two jobs' charges touch disjoint keys and their
    order changes no id (a global counter would make every two charges dependent)."""
    from failfirst.sim.services import PaymentProvider

    ids = []
    for order in ((1, 2), (2, 1)):
        provider = PaymentProvider(TrackedStore.memory(SimClock()))
        made = {job: provider.charge(_ctx(job=job), 100, reference=f"job-{job}",
                                     idempotency_key=None).id for job in order}
        ids.append(made)
    assert ids[0] == ids[1] == {1: "ch_job-1_1", 2: "ch_job-2_1"}


# -- dependent, on hand-built footprints ----------------------------------------------------

R1, P1, P2 = ("row", 1), ("pend", 1), ("pend", 2)
RES_A, RES_B = ("resource", "docs", "a"), ("resource", "docs", "b")

#: (a, b, dependent?) — checked in both orders.
PAIRS = [
    (_fp([R1]), _fp([R1]), False),  # two reads
    (_fp([R1]), _fp(writes=[R1]), True),  # a read and a write
    (_fp(writes=[R1]), _fp(writes=[R1]), True),  # two writes
    (_fp(writes=[R1]), _fp(writes=[("row", 2)]), False),  # different jobs
    (_fp(writes=[R1]), _fp([P1]), False),  # different kinds of key
    (_fp([("pend", ANY)]), _fp(writes=[P2]), True),  # a wildcard read meets any job's write
    (_fp([("pend", ANY)]), _fp(writes=[("pend later", 2)]), False),  # a retry after its backoff
    (_fp(writes=[("pend", ANY)]), _fp(writes=[P2]), True),
    (_fp([("pend", ANY)]), _fp([P2]), False),  # wildcards do not make reads conflict
    (_fp([GLOBAL]), _fp([R1]), False),  # a global read meets only writes...
    (_fp([GLOBAL]), _fp(writes=[R1]), True),
    (_fp(writes=[GLOBAL]), _fp([("anything", 7)]), True),  # ...a global write meets everything
    (_fp(writes=[GLOBAL]), _fp(adds=[("budget", "x")]), True),
    (_fp(writes=[RES_A]), _fp([RES_B]), False),  # keys compared part by part, not by kind
    (_fp(writes=[RES_A]), _fp([RES_A]), True),
    (_fp(writes=[("resource", "docs", ANY)]), _fp([RES_B]), True),  # a wildcard in any part
    (_fp(writes=[("resource", ANY, "b")]), _fp([RES_B]), True),
    (_fp(writes=[("resource", "other", "b")]), _fp([RES_B]), False),
    (_fp(writes=[("resource", "docs")]), _fp([RES_B]), True),  # lengths differ: in doubt, yes
    (_fp(adds=[("budget", "x")]), _fp(adds=[("budget", "x")]), False),  # adds commute
    (_fp(adds=[("budget", "x")]), _fp([("budget", "x")]), True),  # an add and a read do not
    (_fp(adds=[("budget", "x")]), _fp(writes=[("budget", "x")]), True),
    (_fp(adds=[("budget", "x")]), _fp([("budget", "y")]), False),
    (_fp(), _fp(writes=[GLOBAL]), False),  # a step that touches nothing
]


@pytest.mark.parametrize(("a", "b", "expected"), PAIRS)
def test_dependent_in_both_orders(a, b, expected):
    assert dependent(a, b) is expected
    assert dependent(b, a) is expected


def test_a_footprint_union_covers_its_parts():
    a, b = _fp([R1], adds=[("budget", "x")]), _fp(writes=[P2])
    assert (a | b).covers(a) and (a | b).covers(b) and not a.covers(b)


# -- commutativity, sampled over explored states ---------------------------------------------


class _Steer:
    """Drives a run without any reduction along ``path`` — the steps of a run of the
    explorer, as (``"step"``, actor) and (``"fault"``, choice) in order, forced steps
    included — then steps the actors of ``order`` by name with no fault, then takes 0 at
    every decision: both orders of two steps run the same continuation."""

    def __init__(self, path: list[tuple[str, object]], order: list[str]) -> None:
        self.todo = [*path, *(("step", name) for name in order)]
        self.offered: list[str] = []
        self.problem: str | None = None

    def see_ready(self, names: list[str]) -> None:
        self.offered = names

    def stepped(self, name: str) -> None:
        if self.todo and self.todo[0][0] == "step":
            if self.todo[0][1] != name:
                self.problem = self.problem or f"{name} stepped where {self.todo[0][1]} should"
            self.todo.pop(0)

    def choose(self, n: int, kind: str) -> int:
        if not self.todo:
            return 0
        what, value = self.todo[0]
        if kind == "fault":
            if what != "fault":
                return 0  # a fault decision of one of the two steps: no fault
            self.todo.pop(0)
            return int(value)  # type: ignore[call-overload]
        if what != "step" or value not in self.offered:
            self.problem = self.problem or f"{value} was not ready: disabled"
            return 0
        return self.offered.index(str(value))


#: Schedules of the sleep-set search sampled per failure mode and guard, and the pairs
#: checked (spread over every pair found, not only the first).
SEARCHED = 2_000
PAIRS_WANTED = 10


def _independent_pairs(scenario, guard: bool):
    """Pairs the explorer's sleep-set search itself put to sleep: at a state of the
    search, an option ``a`` explored before the option ``b`` now taken, whose footprints
    the relation in force (``reduction.dependent``, which a test may replace) calls
    independent. Each pair is (the path to the state, a, b). The footprint of ``b`` is
    read on the first schedule through it, when its step took no fault: the variant both
    orders run."""
    frames: list[Frame] = []
    store = TrackedStore.memory(SimClock())
    runs: list[tuple[list[tuple[str, object]], dict[int, tuple[int, list[str]]]]] = []

    def run(source):
        path: list[tuple[str, object]] = []
        at: dict[int, tuple[int, list[str]]] = {}  # decision -> (path length, offered)
        plain_choose = source.choose

        def choose(n: int, kind: str) -> int:
            value = plain_choose(n, kind)
            if kind == "fault":
                path.append(("fault", value))
            return value

        source.choose = choose
        source.see_ready = lambda offered: at.__setitem__(source.pos, (len(path), offered))
        source.stepped = lambda name: path.append(("step", name))
        runs[:] = [(path, at)]
        return simulate(scenario, guard, source, store=store)

    seen, pairs = set(), []
    for _ in _bounded(run, frames):
        path, at = runs[0]
        for i, frame in enumerate(frames):
            if not frame.schedule or not frame.done or i not in at:
                continue
            key = (tuple(f.value for f in frames[:i + 1]))
            if key in seen:
                continue  # not the first schedule through this option: faults may be in it
            seen.add(key)
            length, offered = at[i]
            for option, footprint in frame.done:
                if not reduction.dependent(footprint, frame.footprint):
                    pairs.append((path[:length], offered[option], offered[frame.value]))
    step = max(1, len(pairs) // PAIRS_WANTED)
    return pairs[::step][:PAIRS_WANTED]


def _bounded(run, frames):
    """The sleep-set search's first SEARCHED schedules (no error past them: a sample)."""
    try:
        for count, result in enumerate(sleep_set_search(run, SEARCHED, frames)):
            yield result
            if count + 1 >= SEARCHED:
                return
    except BoundError:
        return


def _outcome(scenario, guard: bool, path, order: list[str]) -> tuple[str, str] | str:
    steer = _Steer(path, order)
    result = simulate(scenario, guard, steer, reduce=False)
    if steer.problem is not None:
        return steer.problem
    return final_state(result), job_histories(result)


def _commutes(scenario, guard: bool, path, a: str, b: str) -> str | None:
    ab = _outcome(scenario, guard, path, [a, b])
    ba = _outcome(scenario, guard, path, [b, a])
    where = f"after {len(path)} steps and faults"
    if isinstance(ab, str) or isinstance(ba, str):
        return f"{where}: {ab if isinstance(ab, str) else ba}"
    if ab[0] != ba[0]:
        return f"{where}: {a};{b} and {b};{a} end in different store states"
    if ab[1] != ba[1]:
        return f"{where}: {a};{b} and {b};{a} give different per-job histories"
    return None


def _scenario(fm: str):
    scenario = with_bounds(catalogue.load(fm), 2)
    return dataclasses.replace(scenario, jobs=scenario.jobs[:3])


@pytest.mark.parametrize("fm", [s.id for s in catalogue.all_scenarios()])
@pytest.mark.parametrize("guard", [False, True])
def test_steps_called_independent_commute(fm, guard):
    scenario = _scenario(fm)
    pairs = _independent_pairs(scenario, guard)
    problems = [p for p in (_commutes(scenario, guard, *pair) for pair in pairs) if p]
    assert not problems, problems[:3]
    if not pairs:  # vacuous only where the reduction puts nothing to sleep at all
        x = explore(scenario, guard, shrink_counterexample=False)
        assert x.sleep_blocked == 0, f"{fm}: the search cut paths, yet no pair was sampled"


def _rows_only(a: Footprint, b: Footprint) -> bool:
    """A planted dependency mistake: only a job's own row counts (test_por.py plants it
    too): the queue, the leases, their holders, the log and the services are forgotten."""
    keep = lambda fp: Footprint(frozenset(k for k in fp.reads if k[0] == "row"),  # noqa: E731
                                frozenset(k for k in fp.writes if k[0] == "row"))
    return dependent(keep(a), keep(b))


def test_a_planted_dependency_mistake_fails_the_commutativity_check():
    problems = []
    for fm in ("FM_001", "FM_004"):
        scenario = _scenario(fm)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(reduction, "dependent", _rows_only)
            pairs = _independent_pairs(scenario, True)
        problems += [p for p in (_commutes(scenario, True, *pair) for pair in pairs) if p]
    assert problems, "the commutativity check must catch steps wrongly called independent"



class _Opaque:
    """A service that does not record what it touches (no ``records_footprints``), as a
    reader's own world of services would be: it wraps the rates API's client."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def call(self, ctx):
        return self.inner.call(ctx)


def test_a_service_that_records_nothing_makes_every_step_dependent():
    """Sleep sets may only trust a service that records its footprints: behind one that
    does not, every step is taken to touch it, and nothing is put to sleep."""
    scenario = with_bounds(_scenario("FM_003"), 1)
    make = scenario.services

    def opaque_services(store, guard):
        return {name: _Opaque(service) for name, service in make(store, guard).items()}

    assert _independent_pairs(scenario, True), "the recorded services let steps commute"
    opaque = dataclasses.replace(scenario, services=opaque_services)
    assert _independent_pairs(opaque, True) == []
    assert explore(opaque, True, shrink_counterexample=False).sleep_blocked == 0
