"""With no faults, every job completes exactly once and every invariant holds."""

from __future__ import annotations

from collections import Counter

import pytest

from failfirst.proofs.run import run_happy_path


@pytest.mark.parametrize("seed", range(5))
def test_every_job_completes_once(seed):
    result = run_happy_path(jobs=25, workers=3, seed=seed)
    assert result.violations == []
    assert result.end_reason == "quiescent"
    kinds = Counter(e["kind"] for e in result.events)
    assert kinds["enqueue"] == kinds["claim"] == kinds["complete"] == kinds["effect"] == 25
    assert kinds["crash"] == kinds["pause"] == kinds["refused"] == 0
    assert {j.state for j in result.store.jobs()} == {"succeeded"}
    assert Counter(job for job, *_ in result.store.effects()) == Counter(range(1, 26))


def test_work_is_spread_over_the_workers():
    result = run_happy_path(jobs=30, workers=3, seed=1)
    by_worker = Counter(e["actor"] for e in result.events if e["kind"] == "complete")
    assert set(by_worker) == {"w1", "w2", "w3"}


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        run_happy_path(jobs=0)
