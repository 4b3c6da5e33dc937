"""A simulated downstream dependency, and the client library that handlers call it through.

- :class:`Downstream` is the dependency: it fails every call inside an outage
  window and records every call it receives as a ``call`` event (job, attempt, the
  handler's simulated time ``at_s``, ``ok``), so the INV_005 checker can count the
  load from the history alone.
  A dependency can also have a capacity (``capacity`` calls per ``window_s``): a call
  that arrives when the window already holds that many is refused with 503, as an
  overloaded service sheds load — so a herd of retries can keep a dependency that
  is back from its outage failing (FM_008).
- :class:`Client` is the library a handler uses, with its own retry loop — built on
  tenacity, as real client code is. Its sleeps advance the handler's simulated time
  (``HandlerContext.sleep``): nothing really sleeps.
  Under ``single_layer_retry`` it does not retry at all (only the queue does).
- :class:`RetryBudget` is a token bucket shared by every call a client makes: a
  first call deposits ``ratio`` of a token, a retry takes a whole one, and with
  ``retry_budget`` on a retry that finds no token is refused — recorded as a
  ``refused`` event, never sent.

Every call, a retry at any layer included, is one downstream request: with three
layers that each try four times, one job can send 4 x 4 x 4 = 64 of them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import tenacity

from failfirst.processor import HandlerContext
from failfirst.store import Store


class DownstreamError(Exception):
    """The dependency answered with an error (say, 503): the call may be retried."""


class RetryBudgetExhausted(Exception):
    """The client refused to send a retry: the retry budget has no token left."""


@dataclass(frozen=True)
class Outage:
    """The dependency fails every call from ``start_s`` (inclusive) to ``end_s``."""

    start_s: float
    end_s: float

    def __post_init__(self) -> None:
        assert 0 <= self.start_s < self.end_s

    def covers(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s


class Downstream:
    """A dependency with outage windows and, optionally, a capacity; every call it
    receives is a ``call`` event."""

    def __init__(self, store: Store, name: str = "downstream", outages: Iterable[Outage] = (),
                 *, capacity: int | None = None, window_s: float = 1.0) -> None:
        assert capacity is None or capacity >= 1
        assert window_s > 0
        self.store = store
        self.name = name
        self.outages = tuple(outages)
        self.capacity = capacity
        self.window_s = window_s
        #: Arrival times inside the current window (bounded by the capacity's check).
        self._recent_s: deque[float] = deque()

    def _overloaded(self, at_s: float) -> bool:
        """Record an arrival; True when the window already held ``capacity`` arrivals."""
        if self.capacity is None:
            return False
        while self._recent_s and self._recent_s[0] <= at_s - self.window_s:
            self._recent_s.popleft()
        overloaded = len(self._recent_s) >= self.capacity
        self._recent_s.append(at_s)
        return overloaded

    def handle(self, ctx: HandlerContext, *, retry: bool) -> dict[str, Any]:
        """Receive one call from job ``ctx.job_id``; raise DownstreamError in an outage
        or past the capacity."""
        at_s = round(ctx.now_s(), 6)
        down = any(outage.covers(at_s) for outage in self.outages)
        overloaded = self._overloaded(at_s)
        ok = not down and not overloaded
        extra = {"overloaded": True} if overloaded and not down else {}
        self.store.append_event(actor=self.name, job=ctx.job_id, kind="call", attempt=ctx.attempt,
                                at_s=at_s, ok=ok, retry=retry, **extra)
        if not ok:
            why = "" if down else " (overloaded)"
            raise DownstreamError(f"{self.name} answered 503{why} at t={at_s:g} s")
        return {"status": 200}


class RetryBudget:
    """A token bucket for retries (a per-client retry budget, as in the Google SRE
    book's "Handling Overload"): retries stay within ``ratio`` of first calls, plus a
    burst of ``capacity``. Over a run, retries <= capacity + ratio * first calls."""

    def __init__(self, ratio: float = 0.1, capacity: float = 2.0) -> None:
        assert 0 < ratio < 1 and capacity >= 1
        self.ratio = ratio
        self.capacity = capacity
        self.tokens = capacity

    def first_call(self) -> None:
        self.tokens = min(self.capacity, self.tokens + self.ratio)

    def try_retry(self) -> bool:
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def bound(self, first_calls: int) -> int:
        """The most calls ``first_calls`` first calls and their retries can add up to."""
        return first_calls + int(self.capacity + self.ratio * first_calls + 1e-9)


class Client:
    """The client library: a call retried ``retries`` times with a fixed wait (tenacity),
    or tried once under ``single_layer_retry``; every retry — this layer's, the
    handler's or the queue's redelivery — spends from the retry budget."""

    def __init__(self, service: Downstream, budget: RetryBudget | None = None, *,
                 retries: int = 3, wait_s: float = 0.2) -> None:
        assert retries >= 0 and wait_s >= 0
        self.service = service
        self.budget = budget
        self.retries = retries
        self.wait_s = wait_s

    def call(self, ctx: HandlerContext) -> dict[str, Any]:
        # tenacity reads time.monotonic only for its statistics; stop_after_attempt and
        # wait_fixed decide from the attempt number alone, and its sleep is simulated.
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(1 + ctx.inner_retries(self.retries)),
            wait=tenacity.wait_fixed(self.wait_s),
            retry=tenacity.retry_if_exception_type(DownstreamError),
            sleep=ctx.sleep,
            reraise=True,
        )
        return retrying(self._send, ctx)

    def _send(self, ctx: HandlerContext) -> dict[str, Any]:
        retry = ctx.attempt > 1 or ctx.calls > 0  # this job has called before
        if self.budget is not None:
            if not retry:
                self.budget.first_call()
            elif ctx.guard.retry_budget and not self.budget.try_retry():
                reason = f"retry budget exhausted ({self.budget.tokens:.2f} tokens)"
                self.service.store.append_event(
                    actor=self.service.name, job=ctx.job_id, kind="refused", attempted="call",
                    attempt=ctx.attempt, at_s=round(ctx.now_s(), 6), reason=reason,
                )
                raise RetryBudgetExhausted(reason)
        ctx.calls += 1
        return self.service.handle(ctx, retry=retry)
