"""Partial-order reduction (sleep sets), checked against the symmetry reduction alone.

For every failure mode in the catalogue, at 1 and 2 faults, guardrail on and off:
the reduced exploration must find the same set of violated invariants, the same
set of canonical final store states and the same shortest counterexample as the
exploration without sleep sets, and its counterexample must replay and shrink.
It must also reach the same set of per-job histories (each job's events in order,
worker names erased): a finer view that the sleep sets must keep too, and the one
that catches a planted dependency mistake at these small bounds (negative control)
— verdicts and final states there are coarse enough to survive even some wrong
reductions, so the comparison does not rely on them alone.

The scenarios are cut to a few jobs so that the exploration without sleep sets
stays small; ``make test-por`` runs the same comparison on the whole scenarios
(``FAILFIRST_POR_FULL=1``).
"""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from failfirst.cli import main
from failfirst.proofs.explorer import BoundError, Exploration, explore, shrink, with_bounds
from failfirst.proofs.run import replay
from failfirst.sim import catalogue, reduction

FULL = os.environ.get("FAILFIRST_POR_FULL") == "1"
#: Schedules the unreduced side may run per case here (make test-por: no cap).
LIMIT = 2_000_000 if FULL else 200
CASES = [(scenario.id, faults, guard) for scenario in catalogue.all_scenarios()
         for faults in (1, 2) for guard in (False, True)]


def _pair(scenario, guard: bool, limit: int = LIMIT) -> tuple[Exploration, Exploration]:
    kw = dict(shrink_counterexample=False, keep_states=True, limit=limit)
    return (explore(scenario, guard, reduction="symmetry", **kw),
            explore(scenario, guard, reduction="full", **kw))


def _small(fm: str, faults: int, guard: bool):
    """The scenario at ``faults``, cut to 2 jobs, else 1 job, else 1 job and 1 worker
    (whole under ``make test-por``): the first cut whose exploration without sleep sets
    stays within LIMIT schedules; and that pair of explorations."""
    scenario = with_bounds(catalogue.load(fm), faults)
    cuts = ([(len(scenario.jobs), scenario.workers)] if FULL else
            [(min(2, len(scenario.jobs)), scenario.workers), (1, scenario.workers), (1, 1)])
    for jobs, workers in cuts:
        cut = dataclasses.replace(scenario, jobs=scenario.jobs[:jobs], workers=workers)
        try:
            return cut, _pair(cut, guard)
        except BoundError:
            continue
    pytest.skip(f"{fm}: one job and one worker have more than {LIMIT} schedules")


def _same_verdicts(plain: Exploration, reduced: Exploration) -> list[str]:
    """What differs between the two explorations, as the equivalence defines it."""
    diffs = []
    if plain.invariants_violated != reduced.invariants_violated:
        diffs.append(f"invariants {plain.invariants_violated} != {reduced.invariants_violated}")
    if plain.final_states != reduced.final_states:
        diffs.append(f"{len(plain.final_states - reduced.final_states)} final states missed")
    if plain.shortest_violation != reduced.shortest_violation:
        diffs.append(f"shortest {plain.shortest_violation} != {reduced.shortest_violation}")
    if plain.job_histories != reduced.job_histories:
        diffs.append(f"{len(plain.job_histories - reduced.job_histories)} per-job histories missed")
    return diffs


@pytest.mark.parametrize(("fm", "faults", "guard"), CASES)
def test_sleep_sets_keep_every_verdict_and_final_state(fm, faults, guard):
    scenario, (plain, reduced) = _small(fm, faults, guard)
    assert plain.exhaustive and reduced.exhaustive
    assert not _same_verdicts(plain, reduced), _same_verdicts(plain, reduced)
    assert reduced.schedules <= plain.schedules
    assert reduced.reduction == "full" and plain.reduction == "symmetry"
    if reduced.counterexample is not None:  # the first violation found replays exactly
        cx = reduced.counterexample
        again = replay(scenario, cx.schedule, guard=guard)
        assert again.digest == cx.digest and again.invariants_violated == cx.result.invariants_violated


def test_sleep_sets_prune_interleavings_of_independent_steps():
    scenario = with_bounds(catalogue.load("FM_001"), 1)
    plain, reduced = _pair(dataclasses.replace(scenario, jobs=scenario.jobs[:2]), guard=True)
    assert reduced.schedules < plain.schedules and reduced.sleep_blocked > 0
    assert reduced.reached > 0 and reduced.violating == 0


def _planted_mistake(a: reduction.Footprint, b: reduction.Footprint) -> bool:
    """A dependency mistake: only a job's own row counts; the queue (what a claim finds),
    the leases (what the reaper finds) and who holds them are forgotten, so a step that
    changes what another reads is declared independent of it."""
    rows = lambda fp: reduction.Footprint(frozenset(k for k in fp.reads if k[0] == "row"),  # noqa: E731
                                    frozenset(k for k in fp.writes if k[0] == "row"))
    return _REAL_DEPENDENT(rows(a), rows(b))


_REAL_DEPENDENT = reduction.dependent


def test_a_planted_dependency_mistake_fails_the_comparison(monkeypatch):
    scenario = with_bounds(catalogue.load("FM_004"), 2)
    scenario = dataclasses.replace(scenario, jobs=scenario.jobs[:2])
    plain, reduced = _pair(scenario, guard=True, limit=2_000)  # 460 schedules without sleep sets
    assert not _same_verdicts(plain, reduced)
    monkeypatch.setattr(reduction, "dependent", _planted_mistake)
    wrong = explore(scenario, True, reduction="full", shrink_counterexample=False,
                    keep_states=True)
    assert wrong.schedules < reduced.schedules, "the mistake prunes more"
    assert _same_verdicts(plain, wrong), "the comparison must catch the planted mistake"


def test_a_reduced_counterexample_shrinks_and_replays_from_the_command_line(capsys):
    scenario = with_bounds(catalogue.load("FM_001"), 2)
    found = explore(scenario, False, reduction="full", stop_at_first=True)
    cx = found.counterexample
    assert cx is not None and cx.faults == 1
    assert shrink(scenario, False, cx.result).choices == cx.result.choices  # already minimal
    code = main(["replay", "FM_001", "--guard", "off", "--schedule", cx.schedule, "--json"])
    again = json.loads(capsys.readouterr().out)
    assert code == 0 and again["digest"] == cx.digest


@pytest.mark.parametrize("reduction", ["none", "symmetry", "full"])
def test_cli_reduction_option_and_json(capsys, reduction):
    code = main(["explore", "FM_004", "--guard", "off", "--max-faults", "1", "--all", "--json",
                 "--workers", "1", "--reduction", reduction])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["reduction"] == reduction and result["exhaustive"]
    assert result["invariants_violated"] == ["INV_004"]


def test_cli_rejects_an_unknown_reduction(capsys):
    code = main(["explore", "FM_001", "--reduction", "most"])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("guard", [False, True])
def test_parallel_sleep_set_search_counts_what_one_process_counts(guard):
    scenario = with_bounds(catalogue.load("FM_001"), 1)
    one = explore(scenario, guard, workers=1, shrink_counterexample=False, keep_states=True)
    two = explore(scenario, guard, workers=2, shrink_counterexample=False, keep_states=True)
    counts = lambda x: (x.schedules, x.sleep_blocked, x.distinct, x.violating, x.reached,  # noqa: E731
                        x.invariants_violated, x.shortest_violation, x.final_states)
    assert counts(one) == counts(two)
    if one.counterexample:
        assert one.counterexample.schedule == two.counterexample.schedule
