"""The tree estimate behind ``explore``'s refusal, warning and progress bar (issue 23):
Knuth's estimator lands near the true size of a tree counted exactly, the fraction of a
depth-first search behind it grows from 0 to 1, and the command line refuses an
unaffordable tree (exit 2, one line, with the estimate) and warns of a long one."""

from __future__ import annotations

import dataclasses

import pytest

from failfirst.cli import main
from failfirst.proofs import explorer
from failfirst.proofs.estimate import estimate_tree, fraction_done, projected_total
from failfirst.proofs.explorer import BoundError, affordable, explore, with_bounds
from failfirst.proofs.run import simulate
from failfirst.proofs.search import DepthFirstSearch
from failfirst.store import Store
from failfirst.store.clock import SimClock
from failure_modes.FM_001_retry_duplication.scenario import SCENARIO

SMALL = dataclasses.replace(with_bounds(SCENARIO, 1), jobs=SCENARIO.jobs[:2])


def _run(scenario):
    store = Store.memory(SimClock())
    return lambda source: simulate(scenario, False, source, store=store)


def test_knuths_estimate_lands_near_the_exact_count():
    exact = sum(1 for _ in DepthFirstSearch(_run(SMALL), 100_000))
    estimate = estimate_tree(_run(SMALL), probes=400, seed=1)
    assert estimate.low <= exact <= estimate.high
    assert 0.5 * exact < estimate.schedules < 2 * exact, (estimate.schedules, exact)
    assert estimate.upper >= estimate.schedules and estimate.seconds > 0


def test_the_fraction_behind_a_depth_first_search_grows_to_one():
    search = DepthFirstSearch(_run(SMALL), 100_000)
    fractions = []
    for count, _ in enumerate(search, start=1):
        fractions.append((count, fraction_done(search.path())))
    assert 0.0 < fractions[0][1] < 0.5
    assert all(a[1] < b[1] for a, b in zip(fractions, fractions[1:], strict=False))
    last_count, last = fractions[-1]
    assert last == pytest.approx(1.0)  # the last path: the whole tree is behind it
    assert projected_total(last_count, last) == last_count
    assert projected_total(0, 0.0) is None


def test_an_unaffordable_tree_is_refused_with_its_estimate(monkeypatch, capsys):
    monkeypatch.setattr(explorer, "REFUSE_PAST_SCHEDULES", 5)
    with pytest.raises(BoundError, match=r"about .* schedules \(estimated from 64 random paths\)"):
        affordable(SMALL, False, "symmetry")
    code = main(["explore", "FM_001", "--max-faults", "1", "--reduction", "none", "--all"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "more than the 5 an exhaustive exploration may take" in err


def test_sleep_sets_get_an_allowance_the_estimate_cannot_see(monkeypatch):
    """The estimate counts the tree before sleep sets: with them the limit is higher."""
    monkeypatch.setattr(explorer, "REFUSE_PAST_SCHEDULES", 5)
    monkeypatch.setattr(explorer, "SLEEP_SET_ALLOWANCE", 10_000)
    with pytest.raises(BoundError):
        affordable(SMALL, False, "symmetry")
    assert affordable(SMALL, False, "full").schedules > 5  # allowed: 5 x 10,000


def test_a_long_exploration_is_warned_of_before_it_starts(monkeypatch, capsys):
    monkeypatch.setattr(explorer, "WARN_PAST_S", 0.0)
    code = main(["explore", "FM_001", "--max-faults", "1", "--workers", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and out.startswith("{")
    assert err.startswith("failfirst: warning: about ") and "--checkpoint FILE" in err
    assert len(err.strip().splitlines()) == 1


def test_an_exploration_reports_its_estimated_total_as_it_goes():
    """The progress bar's total: projected from the fraction of the tree behind the
    search, never below what already ran."""
    seen: list[tuple[int, int]] = []
    done = [0]

    def progress(n: int) -> None:
        done[0] = n

    scenario = dataclasses.replace(with_bounds(SCENARIO, 2), jobs=SCENARIO.jobs[:2])
    x = explore(scenario, True, reduction="symmetry", shrink_counterexample=False,
                progress=progress, progress_total=lambda total: seen.append((done[0], total)))
    assert x.schedules > 64 and seen
    assert all(total >= ran for ran, total in seen)
    assert seen[-1][1] <= 10 * x.schedules, "the projection ends near the real size"
