"""Backoff policies: how long to wait before the next try, as named policy values.

One place owns them: the queue's retries (:meth:`failfirst.processor.queue.JobQueue.backoff_s`)
and FM_008's contention model both draw their delays here. The policies are the ones
compared in Marc Brooker's "Exponential Backoff And Jitter" (AWS Architecture Blog,
2015), plus the baseline of retrying at once:

- ``none``: retry at once (no wait);
- ``exponential``: the capped exponential ceiling ``min(cap, base * 2**k)``, no jitter;
- ``equal_jitter``: half the ceiling, plus a uniform draw up to the other half;
- ``full_jitter``: a uniform draw up to the ceiling;
- ``decorrelated_jitter``: ``min(cap, uniform(base, 3 * previous))``, where
  ``previous`` is the previous wait, ``base`` before the first.

Units are the caller's: seconds for the queue, milliseconds for the contention model.
Every draw comes from the ``rng`` the caller passes, so a seeded run is reproducible.
"""

from __future__ import annotations

import random

NONE = "none"
EXPONENTIAL = "exponential"
EQUAL_JITTER = "equal_jitter"
FULL_JITTER = "full_jitter"
DECORRELATED_JITTER = "decorrelated_jitter"

#: Every policy, the baseline first, then in the order the AWS article compares them.
POLICIES: tuple[str, ...] = (NONE, EXPONENTIAL, EQUAL_JITTER, FULL_JITTER, DECORRELATED_JITTER)
JITTERED = frozenset({EQUAL_JITTER, FULL_JITTER, DECORRELATED_JITTER})

#: 2**62 times any base is beyond any cap: the exponent is bounded, the float never overflows.
MAX_EXPONENT = 62


def check_policy(name: str) -> str:
    """``name`` if it is a backoff policy, else a ValueError naming the known ones."""
    if name not in POLICIES:
        raise ValueError(f"backoff: unknown policy {name!r}; known: {', '.join(POLICIES)}")
    return name


def without_jitter(policy: str) -> str:
    """The policy with its jitter taken out (the ``backoff_jitter`` guardrail off):
    a jittered policy falls back to the plain capped exponential; ``none`` stays none."""
    return check_policy(policy) if policy in (NONE, EXPONENTIAL) else EXPONENTIAL


def ceiling(base: float, cap: float, exponent: int) -> float:
    """The capped exponential ceiling ``min(cap, base * 2**exponent)``."""
    assert 0 < base <= cap and exponent >= 0
    return min(cap, base * 2 ** min(exponent, MAX_EXPONENT))


def delay(
    policy: str, *, base: float, cap: float, exponent: int, previous: float | None,
    rng: random.Random | None,
) -> float:
    """The wait before the next try under ``policy``.

    ``exponent`` is the power of two of the ceiling (the caller decides how it counts
    failures); ``previous`` is the previous wait, for ``decorrelated_jitter`` only
    (None before the first: it starts from ``base``). Draws nothing for ``none`` and
    ``exponential`` (``rng`` may then be None), one uniform draw otherwise.
    """
    if policy == NONE:
        return 0.0
    ceiling_ = ceiling(base, cap, exponent)
    if policy == EXPONENTIAL:
        return ceiling_
    assert rng is not None, f"{policy} draws from a seeded source"
    if policy == FULL_JITTER:
        return rng.uniform(0.0, ceiling_)
    if policy == EQUAL_JITTER:
        return ceiling_ / 2 + rng.uniform(0.0, ceiling_ / 2)
    if policy == DECORRELATED_JITTER:
        last = base if previous is None else previous
        assert last >= base, "a decorrelated wait never falls below base"
        return min(cap, rng.uniform(base, 3 * last))
    raise ValueError(f"backoff: unknown policy {policy!r}; known: {', '.join(POLICIES)}")
