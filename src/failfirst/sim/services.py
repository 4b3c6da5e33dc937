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

Each service a queue hands to handlers says ``records_footprints = True``: it records
what every call reads and writes (:func:`failfirst.sim.reduction.touch`), so the
explorer's sleep sets know which steps commute. A service without it is taken to
touch everything every step touches (see :mod:`failfirst.sim.scheduler`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import tenacity

from failfirst.processor.queue import HandlerContext
from failfirst.sim.reduction import ANY, touch
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
            return False  # no memory: a call's answer depends on its time alone
        touch(self.store, reads=(("service", self.name),), writes=(("service", self.name),))
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

    records_footprints = True  # every call touches only the keys it records

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

    def _spend(self, key: tuple[str, str]) -> bool:
        """Take a token for a retry: the budget is read and written (two retries that
        find one token left compete for it)."""
        assert self.budget is not None
        touch(self.service.store, reads=(key,), writes=(key,))
        return self.budget.try_retry()

    def _send(self, ctx: HandlerContext) -> dict[str, Any]:
        retry = ctx.attempt > 1 or ctx.calls > 0  # this job has called before
        if self.budget is not None:
            budget = ("budget", self.service.name)
            if not retry:
                touch(self.service.store, adds=(budget,))  # deposits commute with each other
                self.budget.first_call()
            elif ctx.guard.retry_budget and not self._spend(budget):
                reason = f"retry budget exhausted ({self.budget.tokens:.2f} tokens)"
                self.service.store.append_event(
                    actor=self.service.name, job=ctx.job_id, kind="refused", attempted="call",
                    attempt=ctx.attempt, at_s=round(ctx.now_s(), 6), reason=reason,
                )
                raise RetryBudgetExhausted(reason)
        ctx.calls += 1
        return self.service.handle(ctx, retry=retry)


# -- FM_010: an external payment provider, and the ambiguous outcome of a call to it --------


class ProviderTimeout(Exception):
    """No answer within the client's timeout: the charge may or may not have happened."""


class ProviderConflict(Exception):
    """The provider is still processing an earlier request with this idempotency key
    (HTTP 409): try again later, with the same key."""


def payment_reference(job_id: int) -> str:
    """The job's reference at the provider, derived from the job alone: the same on every
    attempt, so it can serve as the idempotency key and as the key reconciliation reads."""
    return f"job-{job_id}"


@dataclass
class Charge:
    id: str
    job: int
    reference: str
    amount_cents: int
    #: When the provider finished processing it (simulated seconds).
    done_s: float
    refunded: bool = False


class PaymentProvider:
    """A simulated payment API that honours idempotency keys the way real ones do (Stripe's
    idempotent requests): the first request with a key is processed and its result kept;
    a later request with the same key and parameters gets that same result and charges
    nothing; one with other parameters is refused; one that arrives while the first is
    still processing gets a conflict. It records every charge it makes as a ``charge``
    event and every refund as a ``refund`` event: the provider's own ledger, which the
    INV_001 checker reads."""

    def __init__(self, store: Store, name: str = "payments") -> None:
        self.store = store
        self.name = name
        self.charges: list[Charge] = []
        self._by_key: dict[str, Charge] = {}
        self._made: dict[str, int] = {}  # reference -> charges made for it

    def _keys(self, reference: str, idempotency_key: str | None) -> tuple[tuple[str, ...], ...]:
        """The footprint keys of a request: its reference's charges, and its key's record."""
        by_key = () if idempotency_key is None else (("provider key", self.name, idempotency_key),)
        return (("provider", self.name, reference), *by_key)

    def charge(self, ctx: HandlerContext, amount_cents: int, *, reference: str,
               idempotency_key: str | None, processing_s: float = 0.0) -> Charge:
        """Charge ``amount_cents`` for job ``ctx.job_id``; the charge is done
        ``processing_s`` after the request arrives."""
        at_s = round(ctx.now_s(), 6)
        touch(self.store, reads=self._keys(reference, idempotency_key),
              writes=self._keys(reference, idempotency_key))
        if idempotency_key is not None and idempotency_key in self._by_key:
            kept = self._by_key[idempotency_key]
            if kept.amount_cents != amount_cents:
                raise ValueError(f"idempotency key {idempotency_key} was used with other parameters")
            if kept.done_s > at_s:
                self._log(ctx, "conflict", key=idempotency_key, at_s=at_s)
                raise ProviderConflict(f"a request with key {idempotency_key} is still processing")
            self._log(ctx, "replayed", key=idempotency_key, charge=kept.id, at_s=at_s)
            return kept
        # The id is per reference (the n-th charge for it), not a count of every charge:
        # charges for two jobs then commute (see failfirst.sim.reduction).
        made = self._made.get(reference, 0) + 1
        self._made[reference] = made
        charge = Charge(f"ch_{reference}_{made}", ctx.job_id, reference, amount_cents,
                        round(at_s + processing_s, 6))
        self.charges.append(charge)
        if idempotency_key is not None:
            self._by_key[idempotency_key] = charge
        self._log(ctx, "charge", charge=charge.id, reference=reference, key=idempotency_key,
                  amount=amount_cents, at_s=charge.done_s)
        return charge

    def status(self, ctx: HandlerContext, idempotency_key: str) -> Charge | None:
        """The status query by key: the finished charge, or None when the provider never
        received a request with this key. Raises ProviderConflict while it is processing."""
        at_s = round(ctx.now_s(), 6)
        touch(self.store, reads=(("provider key", self.name, idempotency_key),))
        kept = self._by_key.get(idempotency_key)
        found = "none" if kept is None else "processing" if kept.done_s > at_s else kept.id
        self._log(ctx, "status", key=idempotency_key, found=found, at_s=at_s)
        if found == "processing":
            raise ProviderConflict(f"a request with key {idempotency_key} is still processing")
        return kept

    def charges_for(self, reference: str) -> list[Charge]:
        """Live (not refunded) charges with this reference, oldest first: what a
        reconciliation reads from the provider (its list endpoint, by metadata)."""
        touch(self.store, reads=(("provider", self.name, reference),))
        return [c for c in self.charges if c.reference == reference and not c.refunded]

    def refund(self, charge: Charge, actor: str, reason: str) -> None:
        assert not charge.refunded, "a charge is refunded once"
        touch(self.store, writes=(("provider", self.name, charge.reference),))
        charge.refunded = True
        self.store.append_event(actor=self.name, job=charge.job, kind="refund", charge=charge.id,
                                amount=charge.amount_cents, by=actor, reason=reason)

    def ledger(self) -> list[tuple[str, int, str, int, bool]]:
        """The provider's record, for comparing states (recovery idempotence)."""
        touch(self.store, reads=(("provider", self.name, ANY),))
        return [(c.id, c.job, c.reference, c.amount_cents, c.refunded) for c in self.charges]

    def _log(self, ctx: HandlerContext, kind: str, **data: Any) -> None:
        self.store.append_event(actor=self.name, job=ctx.job_id, kind=kind, attempt=ctx.attempt,
                                **data)


class PaymentClient:
    """The payment client library a handler charges through, with a ``timeout_s``.

    The call is the fault point ``charge``: the request can be lost (nothing happens),
    the response lost (the charge happens), or the provider slow (the charge happens
    ``slow_s`` later, past the timeout) — and the client sees the same timeout in all
    three. Under ``idempotency_key`` it sends the job's reference as the key and, before
    any retry decision, asks the provider for that key's status (again, a timeout later,
    while the provider is still processing; at most ``polls`` times): a charge that
    happened is returned, never made again."""

    records_footprints = True  # every call touches only the keys it records

    def __init__(self, provider: PaymentProvider, *, timeout_s: float = 2.0,
                 slow_s: float = 5.0, polls: int = 3) -> None:
        assert 0 < timeout_s < slow_s, "a slow provider answers after the client gave up"
        assert polls >= 1
        self.provider = provider
        self.polls = polls
        self.timeout_s = timeout_s
        self.slow_s = slow_s

    def charge(self, ctx: HandlerContext, amount_cents: int) -> Charge:
        reference = payment_reference(ctx.job_id)
        key = reference if ctx.guard.idempotency_key else None
        if key is not None and ctx.attempt > 1:
            # A retry: the last attempt's outcome is unknown. Ask before charging again.
            done = self._status(ctx, key)
            if done is not None:
                return done
        fault = ctx.call_fault("charge")
        ctx.calls += 1
        charge = None
        if fault != "request_lost":
            charge = self.provider.charge(
                ctx, amount_cents, reference=reference, idempotency_key=key,
                processing_s=self.slow_s if fault == "slow_response" else 0.0)
        if fault is None:
            assert charge is not None
            return charge
        # The client waits out its timeout and hears nothing: did the charge happen?
        ctx.sleep(self.timeout_s)
        self._log_fault(ctx, fault)
        if key is not None:
            done = self._status(ctx, key)
            if done is not None:
                return done
        raise ProviderTimeout(f"no answer from {self.provider.name} within {self.timeout_s:g} s")

    def _status(self, ctx: HandlerContext, key: str) -> Charge | None:
        """The status query by key; while the provider is still processing, ask again a
        timeout later, at most ``polls`` times (then ProviderConflict: the queue retries)."""
        for poll in range(self.polls):
            try:
                return self.provider.status(ctx, key)
            except ProviderConflict:
                if poll == self.polls - 1:
                    raise
                ctx.sleep(self.timeout_s)
        raise AssertionError("unreachable")

    def _log_fault(self, ctx: HandlerContext, fault: str) -> None:
        self.provider.store.append_event(actor=ctx.worker or "client", job=ctx.job_id, kind=fault,
                                         point="charge", attempt=ctx.attempt,
                                         at_s=round(ctx.now_s(), 6))


# -- FM_009: a message broker and the consumer behind it ------------------------------------


class Consumer:
    """The service that reads the messages (say, the one that emails the customer).
    Each message it processes is a ``consume`` event; under ``idempotent_consumer`` it
    keeps the ids it has processed and drops a repeat (a ``duplicate`` event)."""

    def __init__(self, store: Store, *, dedup: bool, name: str = "consumer") -> None:
        self.store = store
        self.dedup = dedup
        self.name = name
        self.seen: set[str] = set()

    def receive(self, message: dict[str, Any]) -> None:
        fields = {"message": message["id"], "topic": message["topic"]}
        seen = ("consumer", self.name, message["id"])
        if self.dedup:
            touch(self.store, reads=(seen,), writes=(seen,))
        else:  # remembered, never checked: adding an id twice is adding it once
            touch(self.store, adds=(seen,))
        if self.dedup and message["id"] in self.seen:
            self.store.append_event(actor=self.name, job=message["job"], kind="duplicate",
                                    token=message["token"], **fields)
            return
        self.seen.add(message["id"])
        self.store.append_event(actor=self.name, job=message["job"], kind="consume",
                                token=message["token"], **fields)


class Broker:
    """A message broker that delivers every message it is handed to its consumer (a
    ``publish`` event, then the consumer's). Publishing is one external call: it
    happens outside any store transaction, and a rollback cannot take it back."""

    records_footprints = True  # every call touches only the keys it records

    def __init__(self, store: Store, consumer: Consumer, name: str = "broker") -> None:
        self.store = store
        self.consumer = consumer
        self.name = name

    def publish(self, actor: str, message: dict[str, Any]) -> None:
        assert not self.store.in_transaction, "a publish is its own step, never inside a transaction"
        self.store.append_event(actor=self.name, job=message["job"], kind="publish",
                                token=message["token"], message=message["id"],
                                topic=message["topic"], by=actor)
        self.consumer.receive(message)


class StaleWrite(Exception):
    """A fenced resource refused a write: its token is older than one it has already seen."""


class VersionedResource:
    """A downstream store of rows (documents, account rows) that a job's handler writes
    at the end of its work, each write carrying the lease's fencing token.

    With ``fencing`` the resource accepts a write only with a token at least as new as
    the newest it has accepted for that row (the fencing-token check of Kleppmann, "How
    to do distributed locking", 2016); an older one is refused with :class:`StaleWrite`.
    Without it, a zombie's late write lands over the newer holder's: a lost update.

    Every accepted write is a ``write`` event (key, value, its token, and ``newest``: the
    newest token the row had before), every refusal a ``refused`` event: a checker judges
    the resource from the history alone. Tokens are per job, so a row belongs to one job.
    """

    records_footprints = True  # every call touches only the keys it records

    def __init__(self, store: Store, name: str = "documents", *, fencing: bool = True) -> None:
        self.store = store
        self.name = name
        self.fencing = fencing
        #: key -> (token, value) of the current row; newest token accepted per key.
        self.rows: dict[str, tuple[int, Any]] = {}
        self.newest: dict[str, int] = {}

    def write(self, ctx: HandlerContext, key: str, value: Any) -> None:
        """Write ``value`` to row ``key`` with the token of ``ctx``'s lease."""
        token = ctx.token
        assert token is not None, "a fenced write carries the lease's token"
        row = ("resource", self.name, key)
        touch(self.store, reads=(row,), writes=(row,))
        newest = self.newest.get(key, 0)
        if self.fencing and token < newest:
            reason = f"row {key!r}: token {token} is older than {newest}"
            self.store.append_event(actor=self.name, job=ctx.job_id, kind="refused",
                                    attempted="write", key=key, token=token, reason=reason)
            raise StaleWrite(reason)
        self.rows[key] = (token, value)
        self.newest[key] = max(newest, token)
        self.store.append_event(actor=self.name, job=ctx.job_id, kind="write", key=key,
                                value=value, token=token, newest=newest)

    def restore(self, job: int | None, key: str, token: int, value: Any, actor: str) -> None:
        """Recovery only: put back the value that lease ``token`` wrote (a ``restore`` event)."""
        row = ("resource", self.name, key)
        touch(self.store, reads=(row,), writes=(row,))
        stale = self.rows.get(key, (None, None))[0]
        self.rows[key] = (token, value)
        self.newest[key] = max(self.newest.get(key, 0), token)
        self.store.append_event(actor=actor, job=job, kind="restore", key=key, value=value,
                                token=token, stale=stale)
