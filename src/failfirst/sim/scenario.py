"""What a scenario declares: its jobs, actors, fault points, bounds and guardrail.

A failure-mode bundle's ``scenario.py`` builds one :class:`Scenario`; the
simulator, the explorer, the CLI and the book all run it the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from failfirst.processor.policies import ALL_ON, GUARDRAIL_NAMES, Guardrails
from failfirst.processor.queue import Handler, QueueConfig
from failfirst.processor.worker import WorkerConfig

if TYPE_CHECKING:
    from failfirst.store import Store

FAULT_KINDS = ("crash", "pause", "lost_ack", "skew", "request_lost", "response_lost", "slow_response")
#: Faults that fire inside a transaction (before its commit) rather than between steps.
IN_TRANSACTION_FAULTS = frozenset({"crash", "lost_ack"})
#: Faults that fire at an external call (FM_010): the request never reaches the
#: provider; the provider acts but its response is lost; the provider acts only after
#: the client's timeout. In each the client sees a timeout and cannot tell which.
CALL_FAULTS = frozenset({"request_lost", "response_lost", "slow_response"})


@dataclass(frozen=True)
class JobSpec:
    type: str
    payload: dict[str, Any]
    idempotency_key: str | None = None
    max_attempts: int | None = None
    #: The job becomes claimable this many simulated seconds after the run starts.
    delay_s: float = 0.0


@dataclass(frozen=True)
class FaultPlan:
    """Named fault points and the faults allowed at each; at most ``max_faults`` fire.

    Step-boundary points are the names a worker yields (``claimed``, ``working``,
    ``part_written`` between the parts of an effect written without atomic_effect,
    ``effect_written``, ``committed``); in-transaction points are ``commit``,
    ``effect`` and ``fail``, where a crash rolls the open transaction back; call points
    (``charge``) are external calls, where the request or its response can be lost.
    ``skew`` sets a worker's own clock to run at ``skew_rate`` of true speed from then on
    (0.25: four simulated seconds pass while it counts one); the store's clock is untouched.
    """

    points: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_faults: int = 1
    pause_s: float = 30.0
    restart_s: float = 1.0
    skew_rate: float = 0.25

    def __post_init__(self) -> None:
        for point, kinds in self.points.items():
            unknown = set(kinds) - set(FAULT_KINDS)
            assert not unknown, f"fault point {point}: unknown fault kinds {unknown}"
        assert self.max_faults >= 0 and self.pause_s > 0 and self.restart_s > 0
        assert self.skew_rate > 0


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    #: The Guardrails field that ``--guard off`` switches off.
    guardrail: str
    invariants: tuple[str, ...]
    handlers: dict[str, Handler]
    jobs: tuple[JobSpec, ...]
    workers: int = 2
    reaper: bool = True
    #: Run the transactional outbox's relay as an actor (FM_009).
    relay: bool = False
    faults: FaultPlan = field(default_factory=FaultPlan)
    queue: QueueConfig = field(default_factory=QueueConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    #: Every job must be terminal this many simulated seconds after the last fault.
    progress_bound_s: float = 120.0
    #: Steps per run, a hard bound: a run that reaches it ends there.
    max_steps: int = 400
    #: Did this run reach the fault under study? (so that a proof is never vacuous)
    reached: Callable[[list[dict[str, Any]]], bool] = lambda events: False
    #: Declared bounds the INV_005 checker enforces: downstream calls per job.
    max_calls_per_job: int | None = None
    #: ... and downstream calls in the whole run (the load on the dependency).
    max_calls_total: int | None = None
    #: ... and retried calls that reach the dependency within any ``retry_window_s``
    #: seconds (FM_008: a herd of retries arriving together).
    max_retries_per_window: int | None = None
    retry_window_s: float = 1.0
    #: Seeds the queue's backoff jitter (default ``"<id>:jitter"``): a sampled proof
    #: varies it, because the explorer's choices never branch on jitter.
    jitter_seed: str | None = None
    #: Guardrails that form one defence with ``guardrail``: ``--guard off`` switches
    #: them off together (FM_003: retry at one layer, a retry budget, jittered backoff).
    companions: tuple[str, ...] = ()
    #: The policies of a guard-on run; every guardrail on unless a variant says otherwise.
    baseline: Guardrails = ALL_ON
    #: Makes the per-run services handlers call (say, a downstream dependency), from
    #: the run's store and policies; a fresh set per run, so runs share no state.
    services: Callable[[Store, Guardrails], dict[str, Any]] | None = None
    #: When set, a recovery actor (:func:`failfirst.processor.recovery.recovery_loop`) starts at
    #: this simulated second, beside the workers: a restart's recovery, which can crash at
    #: its ``recovering`` steps and then runs again from the top (FM_007).
    recovery_at_s: float | None = None
    #: Judges beyond the invariant checkers, each (events, store) -> violations; say, the
    #: refinement check of :mod:`failfirst.proofs.refinement` (FM_007).
    checks: tuple[Callable[[list[dict[str, Any]], Store], list[Any]], ...] = ()
    #: Runs each worker process's loop inside a host: given the loop's factory, returns
    #: the loop the scheduler steps. :mod:`failfirst.tasks` runs it in a greenlet, so that
    #: the calls a reader's task makes are step boundaries (and fault points) too.
    worker_host: Callable[[Callable[[], Any]], Any] | None = None
    #: When set, only violations of these invariants count (a reader's proof names the
    #: invariants it asserts); empty: every invariant is judged.
    judged: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        for name in (self.guardrail, *self.companions):
            assert name in GUARDRAIL_NAMES, f"unknown guardrail {name}"
            assert getattr(self.baseline, name), f"guardrail {name} is off in the baseline"
        assert self.workers >= 1 and self.jobs and self.max_steps >= 1
        assert self.retry_window_s > 0
        for spec in self.jobs:
            assert spec.type in self.handlers, f"no handler for job type {spec.type}"
            assert spec.delay_s >= 0

    @property
    def guardrail_names(self) -> tuple[str, ...]:
        """Every guardrail that ``--guard`` switches: ``guardrail`` and its companions."""
        return (self.guardrail, *self.companions)

    def guardrails(self, guard: bool) -> Guardrails:
        policies = self.baseline
        if not guard:
            for name in self.guardrail_names:
                policies = policies.without(name)
        return policies


def redelivered(events: list[dict[str, Any]]) -> bool:
    """Some job was claimed more than once: at-least-once delivery redelivered it."""
    claims: dict[int, int] = {}
    for e in events:
        if e["kind"] == "claim":
            claims[e["job"]] = claims.get(e["job"], 0) + 1
            if claims[e["job"]] > 1:
                return True
    return False
