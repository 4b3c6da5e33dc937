"""The job processor: queue operations over the store, under named guardrails.

Delivery is at-least-once (a lease can expire and the job be claimed again);
effects are exactly-once because a handler's effect commits in the same
transaction as the job's completion, keyed by the job and fenced by the lease's
token. Retries are bounded, then the job is dead-lettered with its reason.
Every state change goes through :func:`failfirst.processor.transitions.apply`.

Batches: a real SQLite file pays for every transaction (the write lock, the WAL
frames of the commit), so a worker can claim up to ``MAX_BATCH`` jobs in one
transaction and commit their effects and completions in one. Nothing about the
guarantees changes: each job still gets its own lease, fencing token,
compare-and-set and logged event, so the history is the same history the checkers
judge; a crash commits the whole batch or none of it; and if any lease of the
batch went stale, the batch is rolled back and committed job by job with
:meth:`JobQueue.commit`, which refuses the stale ones and records why.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from failfirst.processor import backoff, transitions
from failfirst.processor.policies import Guardrails
from failfirst.store import Store

#: Payloads are small JSON objects; anything bigger belongs in a blob store.
MAX_PAYLOAD_BYTES = 16 * 1024
#: Lengths of free-text columns, so a bad input cannot bloat the store.
MAX_TYPE_CHARS = 100
MAX_KEY_CHARS = 200
MAX_REASON_CHARS = 500
#: Messages one handler run may publish (bounded work; each is one outbox row).
MAX_MESSAGES_PER_RUN = 10
#: The name of the message broker among a queue's services (FM_009).
BROKER_SERVICE = "broker"
#: Without the transactional outbox, when a handler's messages go to the broker: right
#: after the commit (an on-commit hook), or before it (publish, then commit).
DUAL_WRITE_ORDERS = ("commit_first", "publish_first")
#: Upper bound on jobs per batch: a transaction must stay short (the others wait for it).
MAX_BATCH = 1000
#: A handler's effect: (part, amount) pairs.
Effects = list[tuple[str, int]]
#: Calls a handler may defer to the end of its work (bounded, like every queue).
MAX_DEFERRED_CALLS = 8


class WorkerCrash(BaseException):
    """The worker process dies here (SIGKILL, segfault, OOM): not a handled failure.

    A BaseException so that a handler's ``except Exception`` cannot swallow it.
    """


class LostAck(Exception):
    """The completion never reached the queue: its transaction did not commit,
    but the worker goes on as if it had."""


@dataclass(frozen=True)
class QueueConfig:
    lease_s: float = 10.0
    heartbeat_s: float = 3.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    #: The backoff policy between attempts (see :mod:`failfirst.processor.backoff`); with the
    #: ``backoff_jitter`` guardrail off, its jitter is taken out.
    backoff: str = backoff.FULL_JITTER
    default_max_attempts: int = 5
    #: The reaper expires at most this many leases per transaction (bounded work).
    reap_batch: int = 100
    #: FM_009, with the transactional outbox off: see :data:`DUAL_WRITE_ORDERS`.
    dual_write: str = "commit_first"

    def __post_init__(self) -> None:
        assert self.dual_write in DUAL_WRITE_ORDERS, f"dual_write: one of {DUAL_WRITE_ORDERS}"
        assert 0 < self.heartbeat_s < self.lease_s, "a heartbeat must come before the lease ends"
        assert 0 < self.backoff_base_s <= self.backoff_cap_s
        backoff.check_policy(self.backoff)
        assert self.default_max_attempts >= 1 and self.reap_batch >= 1


@dataclass(frozen=True)
class Lease:
    job_id: int
    token: int
    type: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int


@dataclass
class HandlerContext:
    """What a handler sees: the job, simulated or real time, and downstream calls.

    Time a handler spends (``sleep``) accumulates in ``elapsed_s``; the worker then
    waits that long before committing, so a slow handler can outlive its lease.
    """

    job_id: int
    attempt: int
    clock_now_s: Callable[[], float]
    #: Seeds ``rng``, made on first use (most handlers draw nothing).
    seed: str = ""
    elapsed_s: float = 0.0
    #: Per-run services the handler calls (say, a downstream client), from the queue.
    services: dict[str, Any] = field(default_factory=dict)
    #: The policies in force: a handler's own retry loop asks :meth:`inner_retries`.
    guard: Guardrails = field(default_factory=Guardrails)
    #: Downstream calls this attempt has sent (the downstream client counts them).
    calls: int = 0
    #: The worker running the handler, and the fault points of its external calls.
    worker: str = ""
    hooks: Hooks | None = None
    #: Messages the handler published, as (topic, body): sent when its change commits.
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: The lease's fencing token: a handler passes it with every write to a fenced
    #: downstream resource (see :class:`failfirst.sim.services.VersionedResource`).
    token: int | None = None
    #: Calls to make when the work is done, before the commit, one step each (a write
    #: to another system happens at the end of the work, as the lease may have moved on).
    deferred: list[Callable[[], None]] = field(default_factory=list)
    _rng: random.Random | None = None

    @property
    def rng(self) -> random.Random:
        if self._rng is None:
            self._rng = random.Random(f"{self.seed}:{self.job_id}:{self.attempt}")
        return self._rng

    def now_s(self) -> float:
        return self.clock_now_s() + self.elapsed_s

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.elapsed_s += seconds

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        """Announce the handler's change to other systems. The message is sent only with
        the change: under ``transactional_outbox`` as an outbox row in the commit's
        transaction, else by the worker around the commit (see ``QueueConfig.dual_write``)."""
        assert len(self.messages) < MAX_MESSAGES_PER_RUN, "too many messages for one run"
        assert isinstance(topic, str) and topic and isinstance(body, dict)
        self.messages.append((topic, body))

    def call_fault(self, point: str) -> str | None:
        """The fault, if any, that strikes the external call at ``point`` (the simulator
        decides; a real run has none): see :data:`failfirst.sim.scenario.CALL_FAULTS`."""
        return None if self.hooks is None else self.hooks.call_fault(self.worker, point)
    def at_end(self, call: Callable[[], None]) -> None:
        """Make ``call`` when the work is done, in its own step before the commit; if it
        raises, the attempt fails as if the handler had raised."""
        assert len(self.deferred) < MAX_DEFERRED_CALLS, "a handler defers a few calls at most"
        self.deferred.append(call)

    def inner_retries(self, wanted: int) -> int:
        """Retries an inner layer (a client library, the handler's own loop) may make:
        ``wanted``, or none under ``single_layer_retry``, where only the queue retries."""
        assert wanted >= 0
        return 0 if self.guard.single_layer_retry else wanted


#: Messages a handler published: (topic, body) pairs.
Messages = Sequence[tuple[str, dict[str, Any]]]

#: A handler takes the payload and its context and returns the effect parts to
#: commit, as (part, amount) pairs. It raises to fail; WorkerCrash to die.
Handler = Callable[[dict[str, Any], HandlerContext], list[tuple[str, int]]]


class Hooks:
    """Fault points inside transactions. The simulator overrides ``in_transaction``
    to raise WorkerCrash or LostAck; real runs use this no-op."""

    def in_transaction(self, actor: str, point: str) -> None:
        return None

    def call_fault(self, actor: str, point: str) -> str | None:
        """The fault striking ``actor``'s external call at ``point``; None: it goes through."""
        return None


class JobQueue:
    """Queue operations for one actor's connection to the store."""

    def __init__(
        self,
        store: Store,
        handlers: dict[str, Handler],
        *,
        guardrails: Guardrails | None = None,
        config: QueueConfig | None = None,
        jitter_seed: str = "jitter",
        hooks: Hooks | None = None,
        services: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.handlers = handlers
        #: Handed to every handler through its context (see HandlerContext.services).
        self.services = services or {}
        self.guard = guardrails or Guardrails()
        self.config = config or QueueConfig()
        self._jitter_seed = jitter_seed
        self._jitter: random.Random | None = None  # made on first use: most runs never back off
        #: decorrelated_jitter's memory: each job's previous wait (this queue's, bounded).
        self._previous_wait_s: dict[int, float] = {}
        self.hooks = hooks or Hooks()

    # -- producers ------------------------------------------------------------

    def enqueue(
        self,
        type_: str,
        payload: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        delay_s: float = 0.0,
        max_attempts: int | None = None,
        actor: str = "client",
    ) -> int:
        """Add a job; refuse bad input with a ValueError naming the field, writing nothing.

        With an idempotency key already in the queue, return that job instead.
        """
        return self.enqueue_many([{
            "type": type_, "payload": payload, "idempotency_key": idempotency_key,
            "delay_s": delay_s, "max_attempts": max_attempts,
        }], actor=actor)[0]

    def enqueue_many(self, jobs: Sequence[dict[str, Any]], actor: str = "client") -> list[int]:
        """Add several jobs in one transaction (keys: type, payload, and optionally
        idempotency_key, delay_s, max_attempts). All are validated first: one bad job
        refuses the batch and nothing is written."""
        rows = []
        for job in jobs:
            unknown = set(job) - {"type", "payload", "idempotency_key", "delay_s", "max_attempts"}
            if unknown:
                raise ValueError(f"job: unknown fields {sorted(unknown)}")
            key, delay_s = job.get("idempotency_key"), job.get("delay_s", 0.0)
            max_attempts = job.get("max_attempts")
            payload_json = self._validate(job.get("type"), job.get("payload"), key, delay_s, max_attempts)
            rows.append((job["type"], payload_json, key, delay_s,
                         self.config.default_max_attempts if max_attempts is None else max_attempts))
        ids = []
        with self.store.transaction():
            now_s = self.store.clock.now_s()
            for type_, payload_json, key, delay_s, max_attempts in rows:
                existing = self.store.job_by_key(key) if key is not None else None
                if existing is not None:
                    ids.append(existing)
                    continue
                job_id = self.store.insert_job(type_, payload_json, key, now_s + delay_s, max_attempts)
                self.store.append_event(
                    actor=actor, job=job_id, kind="enqueue", to_state=transitions.INITIAL_STATE,
                    token=0, type=type_, max_attempts=max_attempts,
                )
                ids.append(job_id)
        return ids

    def _validate(
        self, type_: Any, payload: Any, key: Any, delay_s: Any, max_attempts: Any,
    ) -> str:
        if not isinstance(type_, str) or not type_ or len(type_) > MAX_TYPE_CHARS:
            raise ValueError(f"type: must be a non-empty string of at most {MAX_TYPE_CHARS} chars")
        if type_ not in self.handlers:
            raise ValueError(f"type: no handler registered for {type_!r}")
        if not isinstance(payload, dict):
            raise ValueError(f"payload: must be a JSON object, got {type(payload).__name__}")
        try:
            payload_json = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"payload: not JSON-serialisable ({exc})") from None
        if len(payload_json.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload: {len(payload_json.encode())} bytes exceeds {MAX_PAYLOAD_BYTES}")
        if key is not None and (not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS):
            raise ValueError(f"idempotency_key: must be a non-empty string of at most {MAX_KEY_CHARS} chars")
        if isinstance(delay_s, bool) or not isinstance(delay_s, int | float) or not delay_s >= 0:
            raise ValueError(f"delay_s: must be a number >= 0, got {delay_s!r}")
        if max_attempts is not None and (
            isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
        ):
            raise ValueError(f"max_attempts: must be an integer >= 1, got {max_attempts!r}")
        return payload_json

    # -- workers --------------------------------------------------------------

    def claim(self, worker: str) -> Lease | None:
        """Lease the next claimable job to ``worker`` with a new fencing token."""
        # Look before taking the write lock: an idle worker must not serialise the others.
        if not self.store.has_claimable(self.store.clock.now_s()):
            return None
        with self.store.transaction():
            now_s = self.store.clock.now_s()
            job = self.store.next_claimable_job(now_s)
            if job is None:
                return None
            attempts = job.attempts + 1 if self.guard.count_attempts_at_claim else job.attempts
            lease_s = self.config.lease_s if self.guard.lease_expiry else float("inf")
            _, token = transitions.apply(
                self.store, job.id, "claim", actor=worker, token=job.token,
                columns={"attempts": attempts, "lease_owner": worker,
                         "lease_expires_s": now_s + lease_s},
                attempt=attempts,
            )
            self.store.insert_attempt(job.id, token, worker, now_s)
        return Lease(job.id, token, job.type, job.payload, attempts, job.max_attempts)

    def heartbeat(self, lease: Lease, worker: str) -> bool:
        """Extend a live lease; False when the lease was lost (the worker must stop)."""
        with self.store.transaction():
            expires_s = self.store.clock.now_s() + self.config.lease_s
            token = lease.token if self.guard.fencing else None
            ok = self.store.extend_lease(lease.job_id, token, expires_s)
            self.store.append_event(
                actor=worker, job=lease.job_id, kind="heartbeat" if ok else "refused",
                token=lease.token, **({"until": expires_s} if ok else {"reason": "lease lost"}),
            )
        return ok

    def run_handler(self, lease: Lease, ctx: HandlerContext) -> list[tuple[str, int]]:
        """Call the job's handler; the caller turns an exception into :meth:`fail`."""
        effects = self.handlers[lease.type](lease.payload, ctx)
        assert isinstance(effects, list) and effects, "a handler returns its effect parts"
        return effects

    @property
    def commit_boundary(self) -> bool:
        """Does the idempotent commit boundary hold? Only when the whole effect is one
        transaction (``atomic_effect``) can it share that transaction with the completion:
        with the effect split into parts, each part commits on its own before it."""
        return self.guard.idempotent_commit and self.guard.atomic_effect

    def commit(self, lease: Lease, effects: list[tuple[str, int]], worker: str,
               messages: Messages = ()) -> bool:
        """The idempotent commit boundary: every effect part and the completion in one
        transaction, keyed by the job, fenced by the token — and under
        ``transactional_outbox`` the handler's messages, as outbox rows. False when refused."""
        return self._complete(lease, worker, effects, messages)

    def effect_transactions(self, effects: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
        """The transactions an effect is written in outside the commit boundary: one, or
        without atomic_effect one per part — a step each, so a crash or another actor
        can come between them."""
        return [effects] if self.guard.atomic_effect else [[part] for part in effects]

    def write_effects(
        self, lease: Lease, effects: list[tuple[str, int]], worker: str, *, parts: int | None = None,
        messages: Messages = (),
    ) -> None:
        """Without the idempotent commit boundary: effect parts commit on their own, in one
        transaction, unfenced and unkeyed (as a handler that writes directly to another
        system). ``parts`` is how many parts the whole effect has (default: these)."""
        with self.store.transaction():
            self._write_effects(lease, effects, worker, once=False, parts=parts or len(effects),
                                messages=messages)
            self.hooks.in_transaction(worker, "effect")

    def _write_effects(
        self, lease: Lease, effects: list[tuple[str, int]], worker: str, *, once: bool, parts: int,
        messages: Messages = (),
    ) -> None:
        # An effect that announces messages says how many (the checkers expect exactly
        # that many deliveries of this change); the outbox rows commit with it.
        announce = {"messages": len(messages)} if messages else {}
        written = False
        for part, amount in effects:
            if self.store.insert_effect(lease.job_id, part, lease.token, amount, parts, once=once):
                written = True
                self.store.append_event(
                    actor=worker, job=lease.job_id, kind="effect", token=lease.token,
                    part=part, amount=amount, parts=parts, tx=self.store.tx_count, **announce,
                )
        if written and messages and self.guard.transactional_outbox:
            now_s = self.store.clock.now_s()
            for message in self.messages_of(lease, messages):
                self.store.insert_outbox_message(
                    message["id"], lease.job_id, lease.token, message["topic"],
                    json.dumps(message["body"], sort_keys=True, separators=(",", ":")), now_s)
                self.store.append_event(actor=worker, job=lease.job_id, kind="outbox",
                                        token=lease.token, message=message["id"],
                                        topic=message["topic"])

    @staticmethod
    def messages_of(lease: Lease, messages: Messages) -> list[dict[str, Any]]:
        """The messages of one attempt's change, each with an id stable for that change
        (job, lease token, position): the id a consumer de-duplicates by."""
        return [{"id": f"m{lease.job_id}.{lease.token}.{i}", "job": lease.job_id,
                 "token": lease.token, "topic": topic, "body": body}
                for i, (topic, body) in enumerate(messages)]

    def publish_now(self, lease: Lease, messages: Messages, worker: str) -> None:
        """The dual write, outbox off: hand the messages to the broker directly, a step
        apart from the commit (before or after it, as ``QueueConfig.dual_write`` says)."""
        broker = self.services[BROKER_SERVICE]
        for message in self.messages_of(lease, messages):
            broker.publish(worker, message)

    # -- the outbox relay (FM_009) ------------------------------------------------

    def next_outbox_message(self) -> dict[str, Any] | None:
        """The oldest outbox row not yet marked published, as a message; None if none."""
        rows = self.store.unpublished_outbox(1)
        return rows[0] if rows else None

    def mark_published(self, message: dict[str, Any], actor: str) -> bool:
        """Mark an outbox row published, after the broker took it. False when it already
        was (another relay, or a recovery sweep, got there first)."""
        with self.store.transaction():
            marked = self.store.mark_outbox_published(message["id"], self.store.clock.now_s())
            if marked:
                self.store.append_event(actor=actor, job=message["job"], kind="marked",
                                        token=message["token"], message=message["id"])
            self.hooks.in_transaction(actor, "mark")
        return marked

    def complete(self, lease: Lease, worker: str) -> bool:
        """Mark the job succeeded (after :meth:`write_effects`, guardrail off)."""
        return self._complete(lease, worker, [])

    def _complete(self, lease: Lease, worker: str, effects: list[tuple[str, int]],
                  messages: Messages = ()) -> bool:
        try:
            with self.store.transaction():
                self._write_effects(lease, effects, worker, once=True, parts=len(effects),
                                    messages=messages)
                transitions.apply(
                    self.store, lease.job_id, "complete", actor=worker, token=lease.token,
                    fencing=self.guard.fencing, columns={"lease_owner": None, "lease_expires_s": None},
                )
                self.store.end_attempt(lease.job_id, lease.token, "succeeded")
                self.hooks.in_transaction(worker, "commit")
        except (transitions.StaleToken, transitions.IllegalTransition) as exc:
            self._refused(lease, worker, "complete", exc)
            return False
        return True

    def fail(self, lease: Lease, reason: str, worker: str) -> str:
        """A handled failure: retry after a backoff, or dead-letter when attempts are spent.

        Returns the new state, or "refused" when the lease is no longer the worker's.
        """
        reason = reason[:MAX_REASON_CHARS]
        try:
            with self.store.transaction():
                job = self.store.job(lease.job_id)
                assert job is not None
                attempts = job.attempts if self.guard.count_attempts_at_claim else job.attempts + 1
                spent = self.guard.bounded_attempts and attempts >= job.max_attempts
                now_s = self.store.clock.now_s()
                lease_cols = {"lease_owner": None, "lease_expires_s": None, "last_error": reason,
                              "attempts": attempts}
                if spent:
                    state, _ = transitions.apply(
                        self.store, job.id, "dead", actor=worker, token=lease.token,
                        fencing=self.guard.fencing, columns=lease_cols, reason=reason,
                    )
                    self.store.insert_dead_letter(job.id, reason, now_s)
                else:
                    delay_s = self.backoff_s(attempts, job.id)
                    state, _ = transitions.apply(
                        self.store, job.id, "retry", actor=worker, token=lease.token,
                        fencing=self.guard.fencing, columns={**lease_cols, "run_at_s": now_s + delay_s},
                        reason=reason, delay_s=delay_s,
                    )
                self.store.end_attempt(job.id, lease.token, "failed")
                self.hooks.in_transaction(worker, "fail")
        except (transitions.StaleToken, transitions.IllegalTransition) as exc:
            self._refused(lease, worker, "fail", exc)
            return "refused"
        return state

    #: Jobs whose previous wait a queue remembers (decorrelated_jitter); beyond, it forgets.
    MAX_REMEMBERED_WAITS = 10_000

    @property
    def backoff_policy(self) -> str:
        """The policy in force: the configured one, without its jitter when the
        ``backoff_jitter`` guardrail is off."""
        policy = self.config.backoff
        return policy if self.guard.backoff_jitter else backoff.without_jitter(policy)

    def backoff_s(self, attempts: int, job_id: int | None = None) -> float:
        """The wait before the next attempt, after ``attempts`` attempts: capped exponential,
        the first retry's ceiling ``backoff_base_s``, with the jitter of the policy in force
        (:mod:`failfirst.processor.backoff`; full jitter by default, AWS Architecture Blog,
        "Exponential Backoff And Jitter", 2015). Draws come from the queue's seeded source.
        ``decorrelated_jitter`` grows from ``job_id``'s previous wait, if this queue saw it."""
        policy = self.backoff_policy
        if policy in backoff.JITTERED and self._jitter is None:
            self._jitter = random.Random(self._jitter_seed)
        previous_s = self._previous_wait_s.get(job_id) if job_id is not None else None
        wait_s = backoff.delay(
            policy, base=self.config.backoff_base_s, cap=self.config.backoff_cap_s,
            exponent=max(attempts - 1, 0), previous=previous_s, rng=self._jitter,
        )
        if policy in backoff.JITTERED:
            wait_s = round(wait_s, 6)
        if policy == backoff.DECORRELATED_JITTER and job_id is not None:
            if len(self._previous_wait_s) >= self.MAX_REMEMBERED_WAITS:
                self._previous_wait_s.clear()  # bounded memory: forgotten jobs restart from base
            self._previous_wait_s[job_id] = max(wait_s, self.config.backoff_base_s)
        return wait_s

    def _refused(self, lease: Lease, worker: str, what: str, exc: Exception) -> None:
        with self.store.transaction():
            self.store.append_event(
                actor=worker, job=lease.job_id, kind="refused", token=lease.token,
                attempted=what, reason=str(exc),
            )

    # -- the reaper and operators ---------------------------------------------

    def reap(self, actor: str = "reaper") -> int:
        """Take back expired leases: to pending, or to dead when attempts are spent."""
        if not self.store.has_expired_lease(self.store.clock.now_s()):
            return 0  # nothing due: no write lock taken
        with self.store.transaction():
            now_s = self.store.clock.now_s()
            expired = self.store.expired_leases(now_s, self.config.reap_batch)
            for job_id, token, attempts, max_attempts in expired:
                spent = self.guard.bounded_attempts and attempts >= max_attempts
                cols = {"lease_owner": None, "lease_expires_s": None}
                if spent:
                    reason = f"lease expired after {attempts} of {max_attempts} attempts"
                    transitions.apply(self.store, job_id, "expire_dead", actor=actor, token=token,
                                      columns={**cols, "last_error": reason}, reason=reason)
                    self.store.insert_dead_letter(job_id, reason, now_s)
                else:
                    transitions.apply(self.store, job_id, "expire", actor=actor, token=token,
                                      columns=cols)
                self.store.end_attempt(job_id, token, "expired")
        return len(expired)

    def redrive(self, job_id: int, actor: str = "operator", *, max_attempts: int | None = None,
                delay_s: float = 0.0) -> None:
        """Send a dead-lettered job back to the queue with a fresh attempt budget, to run
        ``delay_s`` from now (a redrive of many jobs spreads them out, see FM_008)."""
        if isinstance(delay_s, bool) or not isinstance(delay_s, int | float) or not delay_s >= 0:
            raise ValueError(f"delay_s: must be a number >= 0, got {delay_s!r}")
        with self.store.transaction():
            job = self.store.job(job_id)
            if job is None:
                raise ValueError(f"job_id: no job {job_id}")
            transitions.apply(
                self.store, job_id, "redrive", actor=actor, token=None,
                columns={"attempts": 0, "run_at_s": self.store.clock.now_s() + delay_s,
                         "max_attempts": max_attempts or job.max_attempts, "last_error": None},
            )
            self.store.delete_dead_letter(job_id)

    # -- batches: several jobs per transaction (real runs claim and commit in batches) --

    def enqueue_batch(
        self, type_: str, payloads: list[dict[str, Any]], *, actor: str = "client",
    ) -> list[int]:
        """Add one job per payload (no idempotency key, no delay), ``MAX_BATCH`` jobs per
        transaction, each validated as :meth:`enqueue`
        validates it; returns their ids."""
        checked = [self._validate(type_, payload, None, 0.0, None) for payload in payloads]
        ids: list[int] = []
        for start in range(0, len(checked), MAX_BATCH):
            with self.store.transaction():
                ids.extend(self._insert_checked(type_, checked[start:start + MAX_BATCH], actor))
        return ids

    def enqueue_all_in_transaction(
        self, type_: str, payloads: list[dict[str, Any]], *, actor: str = "client",
    ) -> list[int]:
        """:meth:`enqueue_batch` inside the caller's open transaction: every job or none
        (a real run claims a new store and enqueues its jobs in one transaction, so an
        interrupted enqueue leaves no part of a run behind)."""
        assert self.store.in_transaction, "the caller's transaction holds the whole enqueue"
        checked = [self._validate(type_, payload, None, 0.0, None) for payload in payloads]
        return self._insert_checked(type_, checked, actor)

    def _insert_checked(self, type_: str, checked: list[str], actor: str) -> list[int]:
        max_attempts = self.config.default_max_attempts
        run_at_s = self.store.clock.now_s()
        ids = []
        for payload_json in checked:
            job_id = self.store.insert_job(type_, payload_json, None, run_at_s, max_attempts)
            self.store.append_event(
                actor=actor, job=job_id, kind="enqueue",
                to_state=transitions.INITIAL_STATE, token=0, type=type_,
                max_attempts=max_attempts,
            )
            ids.append(job_id)
        return ids

    def claim_batch(self, worker: str, limit: int) -> list[Lease]:
        """Lease up to ``limit`` claimable jobs to ``worker`` in one transaction, each
        with its own new fencing token: what ``limit`` calls of
        :meth:`claim` would do."""
        assert 1 <= limit <= MAX_BATCH
        if not self.store.has_claimable(self.store.clock.now_s()):
            return []  # look before taking the write lock
        with self.store.transaction():
            now_s = self.store.clock.now_s()
            jobs = self.store.next_claimable_jobs(now_s, limit)
            if not jobs:
                return []
            lease_s = self.config.lease_s if self.guard.lease_expiry else float("inf")
            count = self.guard.count_attempts_at_claim
            attempts = [job.attempts + 1 if count else job.attempts for job in jobs]
            tokens = transitions.apply_many(
                self.store, "claim",
                [(job.id, job.token, (n, worker, now_s + lease_s), {"attempt": n})
                 for job, n in zip(jobs, attempts, strict=True)],
                actor=worker, columns=("attempts", "lease_owner", "lease_expires_s"),
            )
            self.store.insert_attempts(
                [(job.id, token, worker, now_s) for job, token in zip(jobs, tokens, strict=True)])
        return [Lease(job.id, token, job.type, job.payload, n, job.max_attempts)
                for job, token, n in zip(jobs, tokens, attempts, strict=True)]

    def commit_batch(self, done: list[tuple[Lease, Effects]], worker: str) -> int:
        """The idempotent commit boundary for several jobs at once: each job's effect
        (keyed by job and part) and its fenced completion, all in one transaction.
        Returns how many jobs were committed."""
        assert self.commit_boundary and self.guard.fencing, "a batch commit is fenced and keyed"
        if not done:
            return 0
        try:
            with self.store.transaction():
                rows = [(lease.job_id, part, lease.token, amount, len(effects))
                        for lease, effects in done for part, amount in effects]
                if self.store.insert_effects_once(rows) != len(rows):
                    raise _AlreadyApplied  # some part exists: its job is not ours to commit
                tx = self.store.tx_count
                self.store.append_events([
                    (worker, job_id, "effect", None, None, token,
                     {"part": part, "amount": amount, "parts": parts, "tx": tx})
                    for job_id, part, token, amount, parts in rows
                ])
                transitions.apply_many(
                    self.store, "complete",
                    [(lease.job_id, lease.token, (None, None), {}) for lease, _ in done],
                    actor=worker, columns=("lease_owner", "lease_expires_s"),
                )
                self.store.end_attempts([(lease.job_id, lease.token) for lease, _ in done],
                                        "succeeded")
                self.hooks.in_transaction(worker, "commit")
        except (transitions.StaleToken, transitions.IllegalTransition, _AlreadyApplied):
            # Some lease is no longer ours and the batch wrote nothing: commit job by
            # job, so the live leases commit and the stale ones are refused and logged.
            return sum(self.commit(lease, effects, worker) for lease, effects in done)
        return len(done)


class _AlreadyApplied(Exception):
    """A batch commit found an effect part already written: roll back, go job by job."""


#: The batched queue was a subclass until 0.2; every queue batches now.
BatchQueue = JobQueue
