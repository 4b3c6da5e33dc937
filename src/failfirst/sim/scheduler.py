"""The deterministic simulator: actors, a scheduler and fault injection.

Nothing here reads the wall clock, the global random module or a thread
scheduler. Time is a :class:`~failfirst.store.clock.SimClock`; every scheduling and fault decision is
drawn from one choice source, so a run is fully described by (scenario,
guardrails, choice sequence). Actors are generators (see :mod:`failfirst.processor.worker`)
that take one atomic step per resumption; the scheduler picks which ready
actor steps next, and faults fire only at named fault points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import Hooks, JobQueue, LostAck, WorkerCrash
from failfirst.processor.recovery import recovery_loop
from failfirst.processor.worker import ActorLoop, Idle, Point, reaper_loop, relay_loop, worker_loop
from failfirst.sim import reduction
from failfirst.sim.choices import ChoiceSource, Recorder
from failfirst.sim.reduction import Footprint, SleepSetBlocked, SleepSetChoices, StoreTracking, TrackedStore
from failfirst.sim.scenario import CALL_FAULTS, IN_TRANSACTION_FAULTS, Scenario
from failfirst.store import Store
from failfirst.store.clock import SimClock, SkewedClock

# Events from decisions, not transactions: they are written after the step.
_FAULT_EVENT = {"crash": "crash", "pause": "pause", "lost_ack": "lost_ack", "skew": "skew"}


@dataclass
class Actor:
    name: str
    start: Callable[[], ActorLoop]
    loop: ActorLoop | None = None
    #: When the actor may take its next step; None while idle (see ``wake``).
    ready_at_s: float | None = 0.0
    wake: Callable[[], float | None] | None = None
    crashed: bool = False
    is_worker: bool = False
    holding: bool = False  # between a claim and letting go of that job
    #: A worker's own clock (its waits are in its seconds); None: the store's clock.
    clock: SkewedClock | None = None

    def symmetry_class(self) -> tuple[str, bool, float] | None:
        """Workers holding no lease and no memory (not started, restarting, or idle) are
        interchangeable: swapping their names maps every continuation onto another —
        unless their clocks run at different rates. None: this actor is unique here."""
        if self.is_worker and not self.holding:
            return ("fresh worker", self.crashed, self.clock.rate if self.clock else 1.0)
        return None

    def true_wait_s(self, own_s: float) -> float:
        """Simulated seconds that pass while this actor waits ``own_s`` by its own clock."""
        return own_s if self.clock is None else self.clock.true_s(own_s)


@dataclass
class SimOutcome:
    store: Store
    choices: list[int]
    options: list[int]
    end_reason: str
    steps: int
    faults: int
    extras: dict[str, Any] = field(default_factory=dict)


class _SimHooks(Hooks):
    """In-transaction fault points: a crash rolls the transaction back and kills the
    actor; a lost ack rolls it back but the worker carries on."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def in_transaction(self, actor: str, point: str) -> None:
        kinds = [k for k in self.sim.fault_kinds(point) if k in IN_TRANSACTION_FAULTS]
        fault = self.sim.decide_fault(kinds)
        if fault is None:
            return
        self.sim.pending_events.append((actor, fault, point))
        if fault == "crash":
            raise WorkerCrash(f"{actor} crashed inside the {point} transaction")
        raise LostAck(point)

    def call_fault(self, actor: str, point: str) -> str | None:
        # The caller (the client library) records what the fault did, where it happened.
        return self.sim.decide_fault([k for k in self.sim.fault_kinds(point) if k in CALL_FAULTS])


class Simulation:
    """One run of a scenario under a choice source."""

    def __init__(
        self, scenario: Scenario, guardrails: Guardrails, source: ChoiceSource, *,
        reduce: bool = True, store: Store | None = None,
    ) -> None:
        self.scenario = scenario
        # A worker that counts its jobs (max_jobs) has memory: no two are interchangeable.
        self.reduce = reduce and scenario.worker.max_jobs is None
        self.guard = guardrails
        self.choices = Recorder(source)
        self.clock = SimClock()
        # Sleep sets (see failfirst.sim.reduction): on when the explorer drives the run with them.
        self.sleep = source if isinstance(source, SleepSetChoices) else None
        if store is None:
            self.store = (TrackedStore if self.sleep else Store).memory(self.clock)
        else:  # a reused connection (the explorer's): emptied, same prepared statements
            store.reset(self.clock)
            self.store = store
        self.faults_used = 0
        self.last_fault_s = 0.0
        self.pending_events: list[tuple[str, str, str]] = []
        self._woken_at_version = -1
        hooks = _SimHooks(self)
        # Jitter and handler randomness come from fixed seeds: the choice sequence
        # alone describes a run, and enumeration does not branch on jitter.
        self.queue = JobQueue(
            self.store, scenario.handlers, guardrails=guardrails, config=scenario.queue,
            jitter_seed=scenario.jitter_seed or f"{scenario.id}:jitter", hooks=hooks,
            services=scenario.services(self.store, guardrails) if scenario.services else None,
        )
        self.actors = [self._worker(f"w{i + 1}") for i in range(scenario.workers)]
        if scenario.reaper and guardrails.lease_expiry:
            # The reaper starts asleep until the first lease deadline: a step at t=0 would
            # find nothing and only multiply the interleavings to explore.
            self.actors.append(Actor("reaper", lambda: reaper_loop("reaper", self.queue),
                                     ready_at_s=None, wake=self.store.next_lease_expiry_s))
        if scenario.recovery_at_s is not None:
            # A restart's recovery, beside the workers; after a crash it starts over.
            self.actors.append(Actor("recovery", self._recovery, ready_at_s=scenario.recovery_at_s))

        if scenario.relay:
            # The outbox relay (FM_009) sleeps until a commit writes an outbox row.
            self.actors.append(Actor("relay", lambda: relay_loop("relay", self.queue),
                                     ready_at_s=None, wake=self.store.next_outbox_s))
        if self.sleep is not None:
            self._track_footprints()

    def _worker(self, name: str) -> Actor:
        config, seed = self.scenario.worker, self.scenario.id
        clock = SkewedClock(self.clock)
        host = self.scenario.worker_host

        def start() -> ActorLoop:
            loop = lambda: worker_loop(name, self.queue, config, seed, clock=clock)  # noqa: E731
            return loop() if host is None else host(loop)

        return Actor(name, start, is_worker=True, clock=clock)

    def _recovery(self) -> ActorLoop:
        """The recovery actor: one pass of recovery, its start and end in the history (so a
        reader sees what happened during it); after a crash, the next pass starts over."""
        self.store.append_event(actor="recovery", job=None, kind="recovery_start")
        report = yield from recovery_loop(self.queue, "recovery")
        self.store.append_event(actor="recovery", job=None, kind="recovery_end",
                                expired=report.expired, reconciled=list(report.reconciled))

    # -- faults -----------------------------------------------------------------

    def fault_kinds(self, point: str) -> tuple[str, ...]:
        if self.faults_used >= self.scenario.faults.max_faults:
            return ()
        return self.scenario.faults.points.get(point, ())

    def decide_fault(self, kinds: list[str] | tuple[str, ...]) -> str | None:
        if not kinds:
            return None
        pick = self.choices.choose(1 + len(kinds), "fault")
        if pick == 0:
            return None
        self.faults_used += 1
        self.last_fault_s = self.clock.now_s()
        return kinds[pick - 1]

    # -- the run ----------------------------------------------------------------

    def run(self) -> SimOutcome:
        sc = self.scenario
        self.store.append_event(
            actor="sim", job=None, kind="start", scenario=sc.id, guardrails_off=self.guard.off(),
            workers=sc.workers, jobs=len(sc.jobs), max_faults=sc.faults.max_faults,
            progress_bound_s=sc.progress_bound_s, max_steps=sc.max_steps,
            max_calls_per_job=sc.max_calls_per_job,
            **({"max_calls_total": sc.max_calls_total} if sc.max_calls_total is not None else {}),
            **({"max_retries_per_window": sc.max_retries_per_window,
                "retry_window_s": sc.retry_window_s} if sc.max_retries_per_window is not None else {}),
        )
        self.queue.enqueue_many([
            {"type": spec.type, "payload": spec.payload, "idempotency_key": spec.idempotency_key,
             "max_attempts": spec.max_attempts, "delay_s": spec.delay_s}
            for spec in sc.jobs
        ])
        steps = 0
        end_reason = "max_steps"
        for _ in range(sc.max_steps):  # bounded: a run ends at max_steps
            steps += 1
            ready = [a for a in self.actors if a.ready_at_s is not None
                     and a.ready_at_s <= self.clock.now_s()]
            if not ready:
                next_s = min((a.ready_at_s for a in self.actors if a.ready_at_s is not None),
                             default=None)
                if next_s is None:
                    end_reason = "quiescent"
                    break
                if next_s > self.last_fault_s + sc.progress_bound_s:
                    end_reason = "horizon"
                    break
                self.clock.advance_to(next_s)
                continue
            if self.reduce and len(ready) > 1:
                ready = self._one_per_symmetry_class(ready)
            if self.sleep is not None:
                self._sleep_set_step(ready)
                continue
            actor = ready[self.choices.choose(len(ready), "schedule")] if len(ready) > 1 else ready[0]
            self._step(actor)
        self.store.append_event(
            actor="sim", job=None, kind="end", reason=end_reason, last_fault_s=self.last_fault_s,
            faults=self.faults_used,
        )
        return SimOutcome(self.store, self.choices.choices, self.choices.options, end_reason,
                          steps, self.faults_used)

    def _step(self, actor: Actor) -> None:
        now_s = self.clock.now_s()
        if actor.loop is None:
            if actor.crashed:
                self.store.append_event(actor=actor.name, job=None, kind="restart")
                actor.crashed = False
            actor.loop = actor.start()
        try:
            step = next(actor.loop)
        except StopIteration:
            actor.loop, actor.ready_at_s, actor.wake = None, None, None
            step = None
        except WorkerCrash as exc:
            injected = any(a == actor.name and f == "crash" for a, f, _ in self.pending_events)
            self._flush_pending()
            if not injected:
                # No injected fault: the handler itself killed the process (a poison payload).
                self.store.append_event(actor=actor.name, job=self._held_job(actor), kind="crash",
                                        point="handler", reason=str(exc))
            self._kill(actor)
            self._wake_idle()
            return
        self._flush_pending()
        actor.holding = isinstance(step, Point) and step.holding
        if isinstance(step, Idle):
            actor.wake = step.wake
            wake_s = step.wake()
            assert wake_s is None or wake_s > now_s, "an idle actor must not spin"
            actor.ready_at_s = wake_s
        elif isinstance(step, Point):
            actor.wake = None
            actor.ready_at_s = now_s + actor.true_wait_s(step.wait_s)
            kinds = self.fault_kinds(step.name)
            if actor.clock is None or actor.clock.rate != 1.0:
                kinds = tuple(k for k in kinds if k != "skew")  # skew once, and only a worker's
            fault = self.decide_fault(kinds)
            if fault == "crash":
                self.store.append_event(actor=actor.name, job=step.job, kind="crash", point=step.name)
                actor.loop.close()
                self._kill(actor)
            elif fault == "pause":
                pause_s = self.scenario.faults.pause_s
                actor.ready_at_s += pause_s
                self.store.append_event(actor=actor.name, job=step.job, kind="pause",
                                        point=step.name, pause_s=pause_s)
            elif fault == "skew":
                assert actor.clock is not None
                rate = self.scenario.faults.skew_rate
                actor.clock.set_rate(rate)
                actor.ready_at_s = now_s + actor.true_wait_s(step.wait_s)
                self.store.append_event(actor=actor.name, job=step.job, kind="skew",
                                        point=step.name, rate=rate, own_s=actor.clock.now_s())
        self._wake_idle()

    # -- sleep sets (partial-order reduction, see failfirst.sim.reduction) --------------------

    def _track_footprints(self) -> None:
        assert isinstance(self.store, StoreTracking), "sleep sets record steps on a tracked store"
        self.sleeping: dict[str, Footprint] = {}  # actor name -> its next step's footprint
        self._known_actors = {a.name for a in self.actors if a.is_worker} | {"reaper"}
        backoff_s, store = self.queue.backoff_s, self.store

        def drawn_backoff_s(*args: Any, **kwargs: Any) -> float:
            # One generator (and one memory of past waits) for every retry: order matters.
            store.touch(writes=(("jitter",),))
            return backoff_s(*args, **kwargs)

        self.queue.backoff_s = drawn_backoff_s  # type: ignore[method-assign]

    def _sleep_set_step(self, ready: list[Actor]) -> None:
        """Choose among the ready actors that are not asleep, take the step, recording what
        it touched, and carry into the next state the sleepers it is independent of."""
        assert self.sleep is not None and isinstance(self.store, StoreTracking)
        asleep = frozenset(i for i, a in enumerate(ready) if a.name in self.sleeping)
        if len(asleep) == len(ready):
            raise SleepSetBlocked
        siblings: list[tuple[int, Footprint]] = []
        if len(ready) > 1:
            self.sleep.offer(asleep)
            actor = ready[self.choices.choose(len(ready), "schedule")]
            siblings = self.sleep.siblings()
        else:
            actor = ready[0]
        self.store.begin_step()
        self._step(actor)
        if actor.name not in self._known_actors:
            self.store.touch(writes=(("global",),))  # an actor whose reads are not modelled
        elif actor.is_worker:
            # A crash names the job the worker holds; handlers reach the run's services.
            self.store.touch(reads=(("owner", actor.name),))
            if self.scenario.services is not None:
                self.store.touch(writes=(("services",),))
        footprint = self.store.end_step()
        if len(ready) > 1:
            self.sleep.record(footprint)
        sleepers = dict(self.sleeping)
        sleepers.update((ready[j].name, fp) for j, fp in siblings)
        self.sleeping = {name: fp for name, fp in sleepers.items()
                         if name != actor.name and not reduction.dependent(fp, footprint)}

    @staticmethod
    def _one_per_symmetry_class(ready: list[Actor]) -> list[Actor]:
        seen: set[tuple[str, bool, float]] = set()
        offered = []
        for actor in ready:
            key = actor.symmetry_class()
            if key is None or key not in seen:
                offered.append(actor)
                if key is not None:
                    seen.add(key)
        return offered

    def _held_job(self, actor: Actor) -> int | None:
        return self.store.job_leased_by(actor.name)

    def _flush_pending(self) -> None:
        for actor_name, fault, point in self.pending_events:
            actor = next(a for a in self.actors if a.name == actor_name)
            self.store.append_event(actor=actor_name, job=self._held_job(actor),
                                    kind=_FAULT_EVENT[fault], point=point)
        self.pending_events.clear()

    def _kill(self, actor: Actor) -> None:
        actor.loop = None
        actor.holding = False
        actor.crashed = True
        actor.wake = None
        actor.ready_at_s = self.clock.now_s() + self.scenario.faults.restart_s

    def _wake_idle(self) -> None:
        if self.store.version == self._woken_at_version:
            return  # no job changed: every idle actor's wake-up time still holds
        self._woken_at_version = self.store.version
        now_s = self.clock.now_s()
        # The scheduler's reads, not the step's: the wake-ups follow from the state the
        # step left, so they are not part of its footprint (see failfirst.sim.reduction).
        recording = getattr(self.store, "recording", None)
        if recording is not None:
            self.store.recording = None
        for a in self.actors:
            if a.wake is not None:
                wake_s = a.wake()
                a.ready_at_s = None if wake_s is None else max(wake_s, now_s)
        if recording is not None:
            self.store.recording = recording
