"""The job state machine: one table owns every state change.

Every path that changes a job's state (worker, reaper, recovery, redrive) calls
:func:`apply`; nothing else writes the ``state`` column. The book's state-model
chapter draws its diagram from :data:`TRANSITIONS`, so the picture cannot drift
from the code (the pattern of h11's ``_state.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from failfirst.store import Store

STATES: tuple[str, ...] = ("pending", "leased", "succeeded", "dead")
INITIAL_STATE = "pending"
TERMINAL_STATES = frozenset({"succeeded", "dead"})

#: (state, event) -> next state. The only legal job state changes.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("pending", "claim"): "leased",  # a worker takes a lease and a new fencing token
    ("leased", "complete"): "succeeded",  # the lease holder commits the result
    ("leased", "retry"): "pending",  # handled failure, attempts left: back off and retry
    ("leased", "dead"): "dead",  # handled failure, attempts exhausted: dead-letter
    ("leased", "expire"): "pending",  # the reaper takes back an expired lease
    ("leased", "expire_dead"): "dead",  # expired, and attempts exhausted (poison message)
    ("dead", "redrive"): "pending",  # an operator sends a dead letter back to the queue
    ("pending", "reconcile"): "succeeded",  # recovery finds the effect already whole
}

EVENTS: tuple[str, ...] = tuple(dict.fromkeys(event for _, event in TRANSITIONS))

#: Events only the current lease holder may cause: their write must carry its token.
LEASE_HOLDER_EVENTS = frozenset({"complete", "retry", "dead"})


class IllegalTransition(Exception):
    """A (state, event) pair that the table does not allow."""


class StaleToken(Exception):
    """A write carrying a fencing token that is no longer the job's current one."""


#: Each event leaves from exactly one state, so a transition is one compare-and-set.
FROM_STATE: dict[str, str] = {event: state for (state, event) in TRANSITIONS}
assert len(FROM_STATE) == len(TRANSITIONS), "every event has exactly one source state"


def next_state(state: str, event: str) -> str:
    """Return the state that ``event`` leads to from ``state``, or raise IllegalTransition."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(f"no transition for event {event!r} from state {state!r}") from None


def apply(
    store: Store,
    job_id: int,
    event: str,
    *,
    actor: str,
    token: int | None,
    fencing: bool = True,
    columns: dict[str, Any] | None = None,
    **fields: Any,
) -> tuple[str, int]:
    """Apply ``event`` to job ``job_id`` inside the caller's open transaction.

    One compare-and-set writes the new state when the job is in the event's source
    state and (when ``fencing``, for lease-holder events) ``token`` is the job's
    current fencing token; a claim issues the next token. The event is appended to
    the log in the same transaction. A refused change raises IllegalTransition or
    StaleToken and writes nothing. Returns (new state, the job's token after it).
    For a claim, pass the job's current token as read in this transaction.
    ``columns`` are other job columns this transition sets (attempts, run_at, lease).
    """
    assert store.in_transaction, "transitions are applied inside a store transaction"
    if event not in FROM_STATE:
        raise IllegalTransition(f"unknown event {event!r}")
    from_state = FROM_STATE[event]
    to_state = TRANSITIONS[(from_state, event)]
    # The token checked: the lease holder's (unless fencing is off), or the one the caller
    # read in this same transaction (a claim, the reaper), which makes the write a
    # compare-and-set on what was read.
    check_token = None if event in LEASE_HOLDER_EVENTS and not fencing else token
    new_token = store.compare_and_set_state(
        job_id, from_state, to_state, check_token, bump_token=event == "claim",
        columns=columns or {},
    )
    if new_token is None:  # refused: say why, from what the job is now
        row = store.job_state(job_id)
        if row is None:
            raise IllegalTransition(f"job {job_id} does not exist")
        state, current = row
        next_state(state, event)  # raises IllegalTransition when the table forbids it
        raise StaleToken(f"job {job_id}: {event} with token {token}, current token is {current}")
    # The log records the token the actor presented, so a checker reading the
    # history alone can see a stale write that fencing was off to stop.
    presented = token if event in LEASE_HOLDER_EVENTS and token is not None else new_token
    store.append_event(
        actor=actor, job=job_id, kind=event, from_state=from_state, to_state=to_state,
        token=presented, **fields,
    )
    return to_state, new_token


def apply_many(
    store: Store,
    event: str,
    items: list[tuple[int, int, tuple[Any, ...], dict[str, Any]]],
    *,
    actor: str,
    columns: tuple[str, ...] = (),
) -> list[int]:
    """:func:`apply` for several jobs in the caller's open transaction (batched claims
    and commits of real runs): one compare-and-set and one logged event per job.

    Each item is (job id, token, values of ``columns``, event fields). Every write is
    fenced: the job must be in the event's source state and hold exactly ``token``
    (for a claim, the token read in this transaction; for a lease-holder event, the
    lease's). With a guardrail off, use :func:`apply`. If any job is refused, raises
    StaleToken naming how many moved; the caller rolls the transaction back, so none
    did. Returns each job's token after the change, in order.
    """
    assert store.in_transaction, "transitions are applied inside a store transaction"
    if event not in FROM_STATE:
        raise IllegalTransition(f"unknown event {event!r}")
    from_state = FROM_STATE[event]
    to_state = TRANSITIONS[(from_state, event)]
    claim = event == "claim"
    moved = store.compare_and_set_states(
        from_state, to_state, [(job_id, token, values) for job_id, token, values, _ in items],
        bump_token=claim, columns=columns,
    )
    if moved != len(items):
        raise StaleToken(f"{event}: {moved} of {len(items)} jobs held the state and token "
                         "expected; the transaction must roll back")
    tokens = [token + 1 if claim else token for _, token, _, _ in items]
    store.append_events([
        (actor, job_id, event, from_state, to_state, new_token, fields)
        for (job_id, _, _, fields), new_token in zip(items, tokens, strict=True)
    ])
    return tokens
