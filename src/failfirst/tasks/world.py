"""One simulated run of a reader's task: its jobs, the services and database it reaches,
and the failfirst :class:`~failfirst.sim.scenario.Scenario` that runs it.

:func:`scenario` turns a task (and the calls to make of it) into a scenario: each job's
payload is the call's arguments, its handler runs the task's body once in the worker
process's greenlet (:mod:`failfirst.tasks.greenlets`), and the queue's attempts,
backoff and redelivery come from the task's own retry settings
(:mod:`failfirst.tasks.frameworks`). Everything per run (the services' ledgers, the
database) is made fresh by the scenario's ``services`` factory, so runs share nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from failfirst.processor import policies
from failfirst.processor.queue import HandlerContext, QueueConfig
from failfirst.processor.worker import WorkerConfig
from failfirst.sim.scenario import FaultPlan, JobSpec, Scenario
from failfirst.store import Store
from failfirst.tasks import checks, greenlets, http, sql
from failfirst.tasks.frameworks import TaskSpec

if TYPE_CHECKING:
    import httpx

#: The key of the run's world among the queue's services.
WORLD = "failfirst.tasks.world"
#: Fault points of a task's calls (the scheduler's step boundaries and the network's),
#: and the faults each allows; ``claimed`` is the worker loop's point after the task
#: returned and before the acknowledgement, ``commit`` the acknowledgement itself.
TASK_FAULTS: dict[str, tuple[str, ...]] = {
    "request": ("crash", "pause"),
    "network": ("request_lost", "response_lost"),
    "reply": ("crash", "pause"),
    "sql_commit": ("crash", "pause"),
    "sql_committed": ("crash",),
    "claimed": ("crash",),
    "commit": ("lost_ack",),
}
TASK_POINTS = frozenset(TASK_FAULTS) - {"commit", "claimed"}


@dataclass(frozen=True)
class Call:
    """One job of a run: a call of ``task`` with these arguments (JSON values)."""

    task: TaskSpec
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task.name.rsplit('.', 1)[-1]}({', '.join(parts)})"


class TaskRetry(Exception):
    """The task asked for a retry (its framework's way): the queue backs off and retries."""


class World:
    """One run's services and database.

    A run's world is closed when the next run's is made: the explorer runs one schedule
    at a time, and a crashed worker (kept, never collected: see
    :mod:`failfirst.tasks.greenlets`) would otherwise keep its run's database in memory."""

    #: The world of the run in progress (the explorer's runs follow one another).
    _current: World | None = None

    def __init__(self, store: Store, services: tuple[http.Service, ...], database: sql.SQLite | None) -> None:
        if World._current is not None:
            World._current.close()
        greenlets.end_run()  # the previous run's worker processes
        World._current = self
        self.store = store
        self.services = {spec.host: http.ServiceState(spec, self) for spec in services}
        self.database = sql.Database(database) if database is not None else None

    def close(self) -> None:
        if self.database is not None:
            self.database.close()

    @classmethod
    def end(cls) -> None:
        """The last run is over (a proof ends): close its world, let go of its workers."""
        if cls._current is not None:
            cls._current.close()
            cls._current = None
        greenlets.end_run()

    def service_for(self, host: str) -> http.ServiceState | None:
        return self.services.get(host)


class Attempt:
    """One attempt of one job, running in a worker process: what the interceptors need."""

    def __init__(self, ctx: HandlerContext, world: World) -> None:
        self.ctx = ctx
        self.world = world

    @property
    def job(self) -> int:
        return self.ctx.job_id

    @property
    def worker(self) -> str:
        return self.ctx.worker

    def event(self, actor: str, kind: str, **fields: Any) -> None:
        self.world.store.append_event(actor=actor, job=self.job, kind=kind, attempt=self.ctx.attempt,
                                      at_s=round(self.ctx.now_s(), 6), **fields)

    def call(self, state: http.ServiceState, request: httpx.Request) -> httpx.Response:
        self.event(self.worker, "request", call=f"{state.spec.name} {request.method} {request.url.path}")
        return http.send(self, state, request)


def _handler(spec: TaskSpec) -> Any:
    def handler(payload: dict[str, Any], ctx: HandlerContext) -> list[tuple[str, int]]:
        world: World = ctx.services[WORLD]
        attempt = Attempt(ctx, world)
        greenlets.set_attempt(attempt)
        greenlets.seed_random(f"{spec.name}:{ctx.job_id}:{ctx.attempt}")
        attempt.event(ctx.worker, "task_start", task=spec.name)
        try:
            result = spec.run(tuple(payload["args"]), payload["kwargs"], ctx.attempt, ctx.job_id)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:300]
            if spec.retry.retry_on(exc):
                attempt.event(ctx.worker, "task_error", error=reason, retry=True)
                greenlets.set_attempt(None)
                raise TaskRetry(reason) from exc
            # A failure the task does not retry: its framework acknowledges the message.
            attempt.event(ctx.worker, "task_error", error=reason, retry=False)
        else:
            attempt.event(ctx.worker, "task_end", result=repr(result)[:200])
        greenlets.set_attempt(None)
        return [(spec.name, 1)]

    return handler


def reached_a_task_fault(events: list[dict[str, Any]]) -> bool:
    """Did a fault (or a scripted answer) strike the task's calls, or its acknowledgement?"""
    return any(e["kind"] == "scripted" or e["kind"] in ("crash", "pause", "request_lost", "response_lost",
                                                         "lost_ack") and e.get("point") in TASK_FAULTS
               for e in events)


def scenario(
    calls: list[Call], *, services: tuple[http.Service, ...] = (), database: sql.SQLite | None = None,
    workers: int = 2, max_faults: int = 2, lease_s: float = 30.0, invariants: tuple[str, ...] = (),
    faults: dict[str, tuple[str, ...]] | None = None, name: str = "task",
    max_calls_per_job: int | None = None,
) -> Scenario:
    """The scenario that runs ``calls`` (one job each, all enqueued at the start)."""
    assert calls, "a proof runs at least one call of the task"
    retry = calls[0].task.retry
    for call in calls[1:]:
        assert call.task.retry.redelivered == retry.redelivered, \
            "the tasks of one proof share one broker: acks_late must agree"
    specs = {call.task.name: call.task for call in calls}
    jobs = tuple(JobSpec(call.task.name, {"args": list(call.args), "kwargs": dict(call.kwargs)},
                         max_attempts=call.task.retry.max_attempts) for call in calls)
    pause_s = 2 * lease_s
    # Early acknowledgement (Celery's default): the broker forgets the message once a worker
    # takes it, so no lease ever expires and a dead worker's job is never delivered again.
    baseline = policies.ALL_ON if retry.redelivered else (
        policies.ALL_ON.without("lease_expiry").without("heartbeat"))
    worst_attempts = max(call.task.retry.max_attempts for call in calls)
    cap_s = max(call.task.retry.cap_s for call in calls)
    progress_s = worst_attempts * (cap_s + lease_s + pause_s) + 60.0

    def make_world(store: Store, guard: policies.Guardrails) -> dict[str, Any]:
        return {WORLD: World(store, services, database)}

    return Scenario(
        id=name, title=f"{name} under the judge", guardrail="idempotent_commit",
        invariants=invariants or ("INV_001",), handlers={n: _handler(s) for n, s in specs.items()},
        jobs=jobs, workers=workers, reaper=True,
        faults=FaultPlan(points=dict(TASK_FAULTS if faults is None else faults), max_faults=max_faults,
                         pause_s=pause_s, restart_s=1.0),
        queue=QueueConfig(lease_s=lease_s, heartbeat_s=lease_s / 3, backoff=retry.backoff,
                          backoff_base_s=retry.base_s, backoff_cap_s=retry.cap_s),
        worker=WorkerConfig(work_s=0.1),
        progress_bound_s=progress_s,
        max_steps=400 + 200 * len(jobs) * worst_attempts,
        reached=reached_a_task_fault,
        max_calls_per_job=max_calls_per_job,
        baseline=baseline,
        services=make_world,
        checks=(checks.check_external_once,),
        worker_host=greenlets.worker_host,
        judged=tuple(invariants),
        description=f"{len(calls)} call(s): " + ", ".join(c.describe() for c in calls),
    )
