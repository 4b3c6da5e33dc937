"""The backoff policies (failfirst.processor.backoff) and the queue's use of them."""

from __future__ import annotations

import random

import pytest

from failfirst.processor import backoff
from failfirst.processor.policies import Guardrails
from failfirst.processor.queue import JobQueue, QueueConfig
from failfirst.store import Store
from failfirst.store.clock import SimClock

BASE, CAP = 5.0, 2000.0


def _draws(policy, exponent, n=2000, previous=None, seed=0):
    rng = random.Random(seed)
    return [backoff.delay(policy, base=BASE, cap=CAP, exponent=exponent, previous=previous, rng=rng)
            for _ in range(n)]


def test_the_ceiling_doubles_then_stays_at_the_cap():
    assert [backoff.ceiling(BASE, CAP, k) for k in range(1, 5)] == [10, 20, 40, 80]
    assert backoff.ceiling(BASE, CAP, 9) == CAP and backoff.ceiling(BASE, CAP, 10_000) == CAP


@pytest.mark.parametrize("exponent", [1, 3, 12])
def test_each_policy_draws_within_its_range(exponent):
    c = backoff.ceiling(BASE, CAP, exponent)
    assert set(_draws("none", exponent, 5)) == {0.0}
    assert set(_draws("exponential", exponent, 5)) == {c}
    full = _draws("full_jitter", exponent)
    assert 0 <= min(full) < c / 10 and c * 0.9 < max(full) <= c
    equal = _draws("equal_jitter", exponent)
    assert c / 2 <= min(equal) < c * 0.55 and c * 0.95 < max(equal) <= c
    previous = min(CAP, 40.0 * exponent)
    decorrelated = _draws("decorrelated_jitter", exponent, previous=previous)
    assert BASE <= min(decorrelated) and max(decorrelated) <= min(CAP, 3 * previous)


def test_decorrelated_starts_from_base_and_never_passes_the_cap():
    first = _draws("decorrelated_jitter", 1, previous=None)
    assert BASE <= min(first) and max(first) <= 3 * BASE
    rng, wait = random.Random(1), None
    for _ in range(200):
        wait = backoff.delay("decorrelated_jitter", base=BASE, cap=CAP, exponent=1, previous=wait, rng=rng)
        assert BASE <= wait <= CAP


def test_same_seed_same_waits():
    assert _draws("decorrelated_jitter", 3, 50, seed=7) == _draws("decorrelated_jitter", 3, 50, seed=7)
    assert _draws("full_jitter", 3, 50, seed=7) != _draws("full_jitter", 3, 50, seed=8)


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="unknown policy 'linear'"):
        backoff.check_policy("linear")
    with pytest.raises(ValueError, match="unknown policy"):
        QueueConfig(backoff="linear")


def test_without_jitter():
    assert [backoff.without_jitter(p) for p in backoff.POLICIES] == [
        "none", "exponential", "exponential", "exponential", "exponential"]


def _queue(policy, guardrails=None):
    config = QueueConfig(backoff_base_s=1.0, backoff_cap_s=30.0, backoff=policy)
    return JobQueue(Store.memory(SimClock()), {}, guardrails=guardrails, config=config)


def test_the_default_is_full_jitter_with_the_queue_seeded_draws():
    """The default keeps the queue's earlier behaviour: one uniform draw below the ceiling,
    from random.Random(jitter_seed), rounded to microseconds."""
    queue = JobQueue(Store.memory(SimClock()), {}, config=QueueConfig(backoff_base_s=2.0, backoff_cap_s=30.0))
    assert queue.backoff_policy == "full_jitter"
    rng = random.Random("jitter")
    assert [queue.backoff_s(3) for _ in range(5)] == [round(rng.uniform(0.0, 8.0), 6) for _ in range(5)]


def test_the_jitter_guardrail_off_takes_the_jitter_out_of_every_policy():
    off = Guardrails().without("backoff_jitter")
    for policy in backoff.POLICIES:
        queue = _queue(policy, off)
        waits = {queue.backoff_s(3, job) for job in range(10)}
        assert waits == ({0.0} if policy == "none" else {4.0}), policy


def test_the_queue_remembers_each_jobs_previous_wait_for_decorrelated_jitter():
    queue = _queue("decorrelated_jitter")
    waits = [queue.backoff_s(a, 1) for a in range(1, 40)]
    assert all(1.0 <= w <= 30.0 for w in waits)
    assert max(waits) > 3.0, "it grows past 3 x base only by remembering the previous wait"
    fresh = [queue.backoff_s(1, job) for job in range(2, 50)]
    assert max(fresh) <= 3.0, "a job's first wait is drawn from [base, 3 base]"


# -- FM_008's contention model -------------------------------------------------------

def test_contention_runs_are_seeded_and_every_client_writes_once():
    from failure_modes.FM_008_thundering_herd import contention

    for policy in backoff.POLICIES:
        a, b = contention.run(policy, 10, seed=3), contention.run(policy, 10, seed=3)
        assert a == b and a.calls >= 10, policy
    alone = contention.run("exponential", 1, seed=0)
    assert alone.calls == 1 and 20 < alone.completion_ms < 60, "four messages of ~10 ms, no retry"


def test_contention_table_rows(tmp_path):
    from failure_modes.FM_008_thundering_herd import contention

    rows = contention.table(clients=(5,), seeds=3, policies=("none", "full_jitter"))
    assert [sorted(r) for r in rows] == [["calls", "clients", "completion", "policy"]] * 2
    path = contention.write(tmp_path / "fm008" / "backoff.json", rows)
    import json

    assert json.loads(path.read_text()) == rows
