"""The explorer: enumeration, the symmetry reduction's soundness, random mode,
shrinking, replay, and the explore/replay command line."""

from __future__ import annotations

import dataclasses
import json

import pytest

from failfirst.cli import main
from failfirst.proofs.explorer import (
    BoundError,
    canonical_digest,
    depth_first,
    explore,
    shrink,
    with_bounds,
)
from failfirst.proofs.run import replay, simulate
from failure_modes.FM_001_retry_duplication.scenario import SCENARIO

SMALL = dataclasses.replace(with_bounds(SCENARIO, max_faults=1), jobs=SCENARIO.jobs[:2])


def _histories(scenario, guard, reduce):
    every, violating, schedules = set(), set(), []
    for run in depth_first(lambda src: simulate(scenario, guard, src, reduce=reduce), 100_000):
        schedules.append(run.schedule)
        every.add(canonical_digest(run))
        if run.violations:
            violating.add(canonical_digest(run))
    return schedules, every, violating


@pytest.mark.parametrize("guard", [False, True])
def test_symmetry_reduction_is_sound_at_small_bounds(guard):
    reduced_runs, reduced_all, reduced_bad = _histories(SMALL, guard, reduce=True)
    full_runs, full_all, full_bad = _histories(SMALL, guard, reduce=False)
    assert len(reduced_runs) < len(full_runs), "the reduction prunes something"
    assert reduced_all == full_all, "every history of the full tree is reached by the reduced one"
    assert reduced_bad == full_bad
    assert bool(full_bad) is not guard


@pytest.mark.parametrize("guard", [False, True])
def test_parallel_exploration_counts_what_one_process_counts(guard):
    one = explore(SMALL, guard, workers=1)
    two = explore(SMALL, guard, workers=2)
    assert (one.schedules, one.distinct, one.violating, one.reached) == \
        (two.schedules, two.distinct, two.violating, two.reached)
    assert (one.counterexample is None) == (two.counterexample is None) == guard
    if one.counterexample:
        assert one.counterexample.schedule == two.counterexample.schedule


def test_depth_first_runs_every_schedule_once():
    schedules, _, _ = _histories(SMALL, False, reduce=True)
    assert len(schedules) == len(set(schedules))


def test_depth_first_refuses_a_tree_past_its_limit():
    with pytest.raises(BoundError, match="more than 10 schedules"):
        list(depth_first(lambda src: simulate(SMALL, False, src), limit=10))


def test_random_mode_is_reproducible():
    a = explore(SMALL, False, mode="random", runs=50, seed=3, shrink_counterexample=False)
    b = explore(SMALL, False, mode="random", runs=50, seed=3, shrink_counterexample=False)
    c = explore(SMALL, False, mode="random", runs=50, seed=4, shrink_counterexample=False)
    counts = lambda x: (x.schedules, x.distinct, x.violating, x.reached)  # noqa: E731
    assert counts(a) == counts(b)
    assert a.counterexample.digest == b.counterexample.digest
    assert not a.exhaustive and a.schedules == 50
    assert counts(a) != counts(c) or a.counterexample.digest != c.counterexample.digest


def test_shrinking_reaches_a_local_minimum():
    found = explore(SCENARIO, False, mode="random", runs=20, seed=1, shrink_counterexample=False)
    first = found.counterexample.result
    small = shrink(SCENARIO, False, first)
    assert set(small.invariants_violated) & set(first.invariants_violated)
    faults = lambda r: sum(e["kind"] in ("crash", "pause", "lost_ack") for e in r.events)  # noqa: E731
    assert faults(small) == 1 <= faults(first)
    assert len(small.events) <= len(first.events)
    # No single deletion keeps the violation with fewer events.
    for i in range(len(small.choices)):
        shorter = replay(SCENARIO, _schedule(small.choices[:i] + small.choices[i + 1:]), guard=False) \
            if _valid(small.choices[:i] + small.choices[i + 1:]) else None
        if shorter is not None and shorter.violations:
            assert (faults(shorter), len(shorter.events)) >= (faults(small), len(small.events))


def _schedule(choices):
    from failfirst.sim.choices import encode

    return encode(choices, SCENARIO.faults.max_faults)


def _valid(choices):
    from failfirst.sim.choices import ReplayChoices, ScheduleError

    try:
        simulate(SCENARIO, False, ReplayChoices(choices, strict=True))
    except ScheduleError:
        return False
    return True


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_explore_and_replay_round_trip(capsys):
    code, out, _ = _cli(capsys, "explore", "FM_001", "--guard", "off", "--max-faults", "1", "--all",
                        "--json")
    result = json.loads(out)
    assert code == 0 and result["violating"] > 1 and result["exhaustive"] is True
    assert {"fm", "guard", "mode", "schedules", "violating", "exhaustive", "bounds", "reached",
            "counterexample", "elapsed_s"} <= set(result)
    cx = result["counterexample"]
    code, out, _ = _cli(capsys, "replay", "FM_001", "--guard", "off", "--schedule", cx["schedule"], "--json")
    again = json.loads(out)
    assert code == 0 and again["digest"] == cx["digest"]
    assert again["violations"] == [{k: v[k] for k in ("invariant", "job", "events", "detail")}
                                   for v in cx["violations"]]


def test_cli_explore_stops_at_the_first_violation_by_default(capsys):
    code, out, _ = _cli(capsys, "explore", "FM_001", "--guard", "off", "--json")
    result = json.loads(out)
    assert result["violating"] == 1 and result["stopped_at_first"] and not result["exhaustive"]
    assert result["counterexample"]["faults"] == 1


def test_cli_explore_guard_on_is_a_proof(capsys):
    code, out, _ = _cli(capsys, "explore", "1", "--max-faults", "2", "--json")
    result = json.loads(out)
    assert result["exhaustive"] and result["violating"] == 0 and result["reached"] > 0
    assert result["schedules"] >= 200 and result["counterexample"] is None


def test_cli_random_mode(capsys):
    code, out, _ = _cli(capsys, "explore", "1", "--mode", "random", "--runs", "30", "--seed", "2",
                        "--json")
    result = json.loads(out)
    assert code == 0 and result["schedules"] == 30 and result["exhaustive"] is False


@pytest.mark.parametrize(
    "argv",
    [
        ["explore", "FM_001", "--max-faults", "99"],
        ["explore", "FM_001", "--runs", "10"],
        ["explore", "FM_001", "--mode", "sideways"],
        ["explore", "FM_001", "--runs", "0", "--mode", "random"],
        ["replay", "FM_001", "--schedule", "s1f1:9999"],
        ["replay", "FM_001", "--schedule", "s1f2:0!"],
        ["replay", "FM_001"],
    ],
)
def test_cli_bad_bounds_and_schedules_exit_2(capsys, argv):
    code, out, err = _cli(capsys, *argv)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
