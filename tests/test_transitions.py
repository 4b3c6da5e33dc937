"""The transition table: every legal change applies, every illegal one is refused."""

from __future__ import annotations

import itertools

import pytest

from failfirst.processor import transitions
from failfirst.processor.transitions import EVENTS, STATES, TRANSITIONS, IllegalTransition, StaleToken


def _job_in_state(queue, clock, state: str) -> int:
    """Drive a real job to ``state`` through the queue's own operations."""
    job = queue.enqueue("deliver", {"amount": 1}, max_attempts=1)
    if state == "pending":
        return job
    lease = queue.claim("w1")
    if state == "leased":
        return job
    if state == "succeeded":
        assert queue.commit(lease, [("delivered", 1)], "w1")
    elif state == "dead":
        assert queue.fail(lease, "boom", "w1") == "dead"
    return job


def test_table_covers_only_known_states_and_events():
    for (state, event), target in TRANSITIONS.items():
        assert state in STATES and target in STATES and event in EVENTS
    assert not any(state in transitions.TERMINAL_STATES and target != "pending"
                   for (state, _), target in TRANSITIONS.items() if state != "dead")


@pytest.mark.parametrize(("state", "event"), list(itertools.product(STATES, EVENTS)))
def test_every_pair_applies_or_is_refused(queue, store, clock, state, event):
    job = _job_in_state(queue, clock, state)
    before_state, token = store.job_state(job)
    events_before = len(store.events())
    assert before_state == state
    with store.transaction():
        if (state, event) in TRANSITIONS:
            new, _ = transitions.apply(store, job, event, actor="t", token=token)
            assert new == TRANSITIONS[(state, event)]
        else:
            with pytest.raises(IllegalTransition):
                transitions.apply(store, job, event, actor="t", token=token)
    if (state, event) not in TRANSITIONS:
        assert store.job_state(job) == (before_state, token), "a refused change writes nothing"
        assert len(store.events()) == events_before


def test_stale_token_is_refused_and_writes_nothing(queue, store):
    job = queue.enqueue("deliver", {"amount": 1})
    queue.claim("w1")
    _, token = store.job_state(job)
    with store.transaction(), pytest.raises(StaleToken):
        transitions.apply(store, job, "complete", actor="zombie", token=token - 1)
    assert store.job_state(job) == ("leased", token)


def test_claim_issues_a_new_token_every_time(queue, store, clock):
    job = queue.enqueue("deliver", {"amount": 1})
    tokens = []
    for _ in range(3):
        lease = queue.claim("w1")
        tokens.append(lease.token)
        clock.advance_to(clock.now_s() + queue.config.lease_s)
        queue.reap()
    assert tokens == sorted(set(tokens)) and store.job(job).token == tokens[-1]
