"""Guardrails: explicit, named policies that a scenario switches on and off.

Defaults are safe: every guardrail is on. A failure-mode scenario turns off the
one guardrail it studies (``--guard off``) and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Guardrails:
    #: FM_001: the effect and the completion commit in one transaction, keyed by the job.
    idempotent_commit: bool = True
    #: FM_002: every part of a multi-part effect commits in that same one transaction.
    atomic_effect: bool = True
    #: FM_004: leases expire and the reaper takes them back.
    lease_expiry: bool = True
    #: FM_004: a live worker extends its lease while it works.
    heartbeat: bool = True
    #: FM_006: every worker write carries the lease's fencing token and is refused when stale.
    fencing: bool = True
    #: FM_005: attempts are counted when a job is claimed, so a crash counts too.
    count_attempts_at_claim: bool = True
    #: FM_005: attempts are bounded by max_attempts, then the job is dead-lettered.
    bounded_attempts: bool = True
    #: FM_003/FM_008: capped exponential backoff with full jitter between attempts.
    backoff_jitter: bool = True
    #: FM_003: only the queue retries; inner layers fail fast.
    single_layer_retry: bool = True
    #: FM_003: a token-bucket retry budget on downstream calls.
    retry_budget: bool = True
    #: FM_002/FM_006: recovery reconciles torn effects from the attempt log.
    reconciliation: bool = True
    #: FM_007: recovery changes states only through the transition table and the code the
    #: reaper and the worker run (never a re-implementation of its own).
    recovery_via_transitions: bool = True
    #: FM_010: every call to an external provider carries an idempotency key derived
    #: from the job (the same on every attempt), and a retry first asks the provider
    #: for that key's status.
    idempotency_key: bool = True
    #: FM_009: a handler's messages are outbox rows written in the transaction of its
    #: change; a relay publishes them at least once and marks them.
    transactional_outbox: bool = True
    #: FM_009: the consumer drops a message whose id it has already processed.
    idempotent_consumer: bool = True

    def without(self, name: str) -> Guardrails:
        """The same policies with guardrail ``name`` switched off."""
        if name not in GUARDRAIL_NAMES:
            raise ValueError(f"unknown guardrail {name!r}; known: {', '.join(GUARDRAIL_NAMES)}")
        return replace(self, **{name: False})

    def off(self) -> list[str]:
        return [f.name for f in fields(self) if not getattr(self, f.name)]


GUARDRAIL_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Guardrails))
ALL_ON = Guardrails()
