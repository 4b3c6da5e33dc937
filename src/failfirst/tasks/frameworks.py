"""The task objects people already write, and the retry settings they carry.

:func:`task_spec` takes a Celery task (``@app.task``), a Dramatiq actor
(``@dramatiq.actor``), a plain function enqueued with RQ (its ``rq.Retry``, given as
``retry=``) or any plain function, and returns how to run its body once and the retry
settings that judge it: the task's own, read from the task object, never a default of
ours. No framework is imported unless the object is one of its tasks.

How each framework's settings map onto failfirst's queue (attempts, backoff, whether a
crashed worker's job is delivered again), one place per framework:

- Celery: ``max_retries`` (None: unbounded, judged at :data:`UNBOUNDED_RETRIES`),
  ``autoretry_for`` / ``dont_autoretry_for`` (which exceptions retry; ``self.retry()``
  always does), ``retry_backoff`` / ``retry_backoff_max`` / ``retry_jitter`` (capped
  exponential, full jitter; else ``default_retry_delay``), ``acks_late`` (False, Celery's
  default: the message is acknowledged before the task runs, so a worker that dies
  mid-task loses it; True: it is delivered again). The body runs as a Celery worker runs
  it: ``task.run`` under a request with ``retries`` set, so ``self.request`` and
  ``self.retry()`` work; ``retry()`` raises Celery's own ``Retry`` (eager: nothing is sent).
- Dramatiq: ``max_retries``, ``min_backoff`` / ``max_backoff`` (ms) from the actor's
  options, else its broker's Retries middleware; ``throws`` and ``retry_when``; a
  message is acknowledged after processing, so a crash redelivers it.
- RQ: ``Retry(max, interval)``; an interval list is judged as a capped exponential from
  its first to its largest value; an abandoned job (its worker died) is retried.
- A plain function: failfirst's queue defaults (``QueueConfig``), redelivered on a crash.

A crash's redelivery counts as an attempt here (failfirst counts attempts at the
claim), where Celery's ``request.retries`` counts only the task's own retries: the
judge is stricter there, never looser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from failfirst.processor import backoff

#: Celery's ``max_retries=None`` (retry for ever) is judged at this many retries.
UNBOUNDED_RETRIES = 20


@dataclass(frozen=True)
class RetrySettings:
    """What decides retries, as failfirst's queue applies them."""

    max_attempts: int
    backoff: str
    base_s: float
    cap_s: float
    #: Is a crashed worker's job delivered again? (Celery: acks_late.)
    redelivered: bool
    #: Does this exception ask for a retry? (else the task failed for good: acknowledged)
    retry_on: Callable[[BaseException], bool]
    #: The settings as read, for the report.
    described: str


@dataclass(frozen=True)
class TaskSpec:
    name: str
    framework: str
    #: Runs the body once: (args, kwargs, attempt number from 1, job id) -> its result.
    run: Callable[[tuple[Any, ...], dict[str, Any], int, int], Any]
    retry: RetrySettings


def task_spec(task: Any, *, retry: Any = None) -> TaskSpec:
    """The :class:`TaskSpec` of ``task``; ``retry`` is RQ's ``Retry`` for a function
    enqueued with RQ (RQ keeps it on the job, not the function)."""
    module = type(task).__module__ or ""
    if module.startswith("celery") or _is_celery_task(task):
        return _celery(task)
    if module.startswith("dramatiq"):
        return _dramatiq(task)
    if retry is not None:
        return _rq(task, retry)
    if callable(task):
        return _plain(task)
    raise TypeError(f"not a task: {task!r} (a Celery task, a Dramatiq actor or a function)")


def _raised_by(exc: BaseException, method: Any) -> bool:
    """Was ``exc`` raised inside ``method`` (a frame of its code on the traceback)?"""
    code = getattr(getattr(method, "__func__", method), "__code__", None)
    tb = exc.__traceback__
    for _ in range(1000):  # bounded: a traceback is a short chain
        if tb is None:
            return False
        if tb.tb_frame.f_code is code:
            return True
        tb = tb.tb_next
    return False


def _is_celery_task(task: Any) -> bool:
    return all(hasattr(task, a) for a in ("run", "apply_async", "max_retries", "request_stack"))


def _name(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _retry_any(exc: BaseException) -> bool:
    return isinstance(exc, Exception)


def _celery(task: Any) -> TaskSpec:
    from celery.exceptions import Ignore, Reject, Retry

    max_retries = task.max_retries
    autoretry_for = tuple(getattr(task, "autoretry_for", ()) or ())
    dont = tuple(getattr(task, "dont_autoretry_for", ()) or ())
    retry_backoff = getattr(task, "retry_backoff", False)
    if retry_backoff:
        factor = float(int(max(1.0, float(retry_backoff))))
        policy = backoff.FULL_JITTER if getattr(task, "retry_jitter", True) else backoff.EXPONENTIAL
        base_s, cap_s = factor, float(max(getattr(task, "retry_backoff_max", 600), factor))
    else:
        delay_s = float(task.default_retry_delay or 0)
        policy = backoff.EXPONENTIAL if delay_s > 0 else backoff.NONE
        base_s = cap_s = max(delay_s, 1.0)

    def retry_on(exc: BaseException) -> bool:
        # Retry: another attempt; raised from inside Task.retry (retries exhausted, Celery
        # re-raises the task's exception there): the attempts are spent, the job is dead.
        if isinstance(exc, Retry) or _raised_by(exc, task.retry):
            return True
        if isinstance(exc, Ignore | Reject) or (dont and isinstance(exc, dont)):
            return False
        return bool(autoretry_for) and isinstance(exc, autoretry_for)

    def run(args: tuple[Any, ...], kwargs: dict[str, Any], attempt: int, job: int) -> Any:
        task.push_request(id=f"failfirst-job-{job}", retries=attempt - 1, is_eager=True,
                          args=list(args), kwargs=dict(kwargs), called_directly=False,
                          delivery_info={"redelivered": attempt > 1})
        result = task.run(*args, **kwargs)
        task.pop_request()  # not in a finally: a crashed attempt never reaches it, as in a real worker
        return result

    unbounded = max_retries is None
    retries = UNBOUNDED_RETRIES if unbounded else int(max_retries)
    acks_late = bool(task.acks_late)
    described = (f"Celery {task.name}: max_retries={max_retries!r}"
                 + (f" (judged at {UNBOUNDED_RETRIES})" if unbounded else "")
                 + f", autoretry_for={tuple(e.__name__ for e in autoretry_for)}"
                 + f", retry_backoff={retry_backoff!r}, acks_late={acks_late}")
    return TaskSpec(task.name, "celery", run, RetrySettings(
        retries + 1, policy, base_s, cap_s, acks_late, retry_on, described))


def _dramatiq(actor: Any) -> TaskSpec:
    from dramatiq.middleware import Retries
    from dramatiq.middleware.retries import DEFAULT_MAX_BACKOFF, DEFAULT_MIN_BACKOFF

    middleware = next((m for m in getattr(actor.broker, "middleware", []) if isinstance(m, Retries)), None)
    options = actor.options
    max_retries = options.get("max_retries", middleware.max_retries if middleware else 20)
    min_ms = options.get("min_backoff", middleware.min_backoff if middleware else DEFAULT_MIN_BACKOFF)
    max_ms = options.get("max_backoff", middleware.max_backoff if middleware else DEFAULT_MAX_BACKOFF)
    throws = options.get("throws")
    retry_when = options.get("retry_when")

    def retry_on(exc: BaseException) -> bool:
        if not isinstance(exc, Exception) or (throws and isinstance(exc, throws)):
            return False
        return True if retry_when is None else bool(retry_when(0, exc))

    def run(args: tuple[Any, ...], kwargs: dict[str, Any], attempt: int, job: int) -> Any:
        return actor.fn(*args, **kwargs)

    retries = UNBOUNDED_RETRIES if max_retries is None else int(max_retries)
    # Dramatiq waits between c and 2c, c = min_backoff * 2**retries: equal jitter on 2c.
    base_s, cap_s = 2 * min_ms / 1000, max(2 * min_ms, max_ms) / 1000
    described = (f"Dramatiq {actor.actor_name}: max_retries={max_retries!r}, min_backoff={min_ms} ms, "
                 f"max_backoff={max_ms} ms, throws={throws!r}")
    return TaskSpec(actor.actor_name, "dramatiq", run, RetrySettings(
        retries + 1, backoff.EQUAL_JITTER, base_s, cap_s, True, retry_on, described))


def _rq(fn: Any, retry: Any) -> TaskSpec:
    intervals = [float(i) for i in getattr(retry, "intervals", [0])] or [0.0]
    if max(intervals) <= 0:
        policy, base_s, cap_s = backoff.NONE, 1.0, 1.0
    else:
        first = next(i for i in intervals if i > 0)
        policy, base_s, cap_s = backoff.EXPONENTIAL, first, max(intervals)

    def run(args: tuple[Any, ...], kwargs: dict[str, Any], attempt: int, job: int) -> Any:
        return fn(*args, **kwargs)

    described = f"RQ {_name(fn)}: Retry(max={retry.max}, interval={intervals})"
    return TaskSpec(_name(fn), "rq", run, RetrySettings(
        int(retry.max) + 1, policy, base_s, cap_s, True, _retry_any, described))


def _plain(fn: Callable[..., Any]) -> TaskSpec:
    from failfirst.processor.queue import QueueConfig

    config = QueueConfig()

    def run(args: tuple[Any, ...], kwargs: dict[str, Any], attempt: int, job: int) -> Any:
        return fn(*args, **kwargs)

    described = (f"function {_name(fn)}: failfirst's queue defaults ({config.default_max_attempts} "
                 f"attempts, {config.backoff} backoff)")
    return TaskSpec(_name(fn), "function", run, RetrySettings(
        config.default_max_attempts, config.backoff, config.backoff_base_s, config.backoff_cap_s,
        True, _retry_any, described))
