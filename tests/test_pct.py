"""PCT (``explore --mode pct``): the source follows priorities and change points as the
algorithm says, places faults as its bound assumes, is reproducible by seed, finds the
catalogue's failures with the guardrail off, and reports the bound of the runs made."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter

import pytest

from failfirst.cli import main
from failfirst.proofs import pct
from failfirst.proofs.explorer import explore, with_bounds
from failfirst.sim.choices import PCTChoices
from failure_modes.FM_001_retry_duplication.scenario import SCENARIO

SMALL = dataclasses.replace(with_bounds(SCENARIO, 1), jobs=SCENARIO.jobs[:2])


def test_the_highest_priority_ready_actor_steps():
    source = PCTChoices(7, depth=1, steps=50, fault_decisions=0, max_faults=0)
    source.see_ready(["w1", "w2", "reaper"])
    first = source.choose(3, "schedule")
    for _ in range(20):  # depth 1: no change point, the same actor keeps winning
        source.stepped(["w1", "w2", "reaper"][first])
        source.see_ready(["w1", "w2", "reaper"])
        assert source.choose(3, "schedule") == first
    source.see_ready(["reaper", "w2", "w1"])  # its index follows its name, not its place
    assert ["reaper", "w2", "w1"][source.choose(3, "schedule")] == ["w1", "w2", "reaper"][first]


def test_a_change_point_lowers_the_actor_that_steps_there():
    """depth 2 over one step: the one change point is step 1; the actor that takes it drops
    below every other, so the next decision goes to another."""
    source = PCTChoices(3, depth=2, steps=1, fault_decisions=0, max_faults=0)
    source.see_ready(["w1", "w2"])
    winner = ["w1", "w2"][source.choose(2, "schedule")]
    source.stepped(winner)
    source.see_ready(["w1", "w2"])
    assert ["w1", "w2"][source.choose(2, "schedule")] != winner


def test_faults_are_placed_as_the_bound_assumes():
    """A fault count uniform in 0..M, at distinct decisions among F, a kind at each."""
    counts = Counter()
    for seed in range(600):
        source = PCTChoices(seed, depth=1, steps=5, fault_decisions=6, max_faults=2)
        picks = [source.choose(3, "fault") for _ in range(6)]
        assert all(0 <= p < 3 for p in picks)
        counts[sum(p > 0 for p in picks)] += 1
    assert set(counts) == {0, 1, 2}
    assert all(150 < n < 250 for n in counts.values()), counts  # about 200 each


def test_the_bound_is_the_papers_times_the_fault_placement():
    shape = pct.Shape(actors=3, steps=20, fault_decisions=8, fault_kinds=2, max_faults=2)
    assert pct.bound(shape, 1, 0) == pytest.approx(1 / 3 * 1 / 3)
    assert pct.bound(shape, 2, 1) == pytest.approx(1 / (3 * 20) * 1 / (3 * 8 * 2))
    assert pct.bound(shape, 3, 2) == pytest.approx(1 / (3 * 20**2) * 1 / (3 * math.comb(8, 2) * 4))
    assert pct.bound(shape, 2, 3) == 0.0  # more faults than the bound allows
    assert pct.miss_probability(0.1, 10) == pytest.approx(0.9**10)


def test_pct_is_reproducible_finds_fm001_and_reports_its_bound():
    a = explore(SMALL, False, mode="pct", runs=60, seed=5, shrink_counterexample=False)
    b = explore(SMALL, False, mode="pct", runs=60, seed=5, shrink_counterexample=False)
    counts = lambda x: (x.schedules, x.distinct, x.violating, x.reached)  # noqa: E731
    assert counts(a) == counts(b) and a.counterexample.digest == b.counterexample.digest
    assert a.violating > 0 and not a.exhaustive and a.mode == "pct"
    guarantee = a.pct
    assert guarantee["runs"] == 60 and guarantee["depth"] == 2
    assert guarantee["actors"] >= SMALL.workers + 1  # the workers and the reaper
    assert [row["faults"] for row in guarantee["by_faults"]] == [0, 1]
    assert all(0 < row["p_per_run"] <= 1 and 0 <= row["miss"] < 1 for row in guarantee["by_faults"])


def test_a_pct_counterexample_replays(capsys):
    code = main(["explore", "FM_001", "--guard", "off", "--mode", "pct", "--runs", "50", "--json"])
    found = json.loads(capsys.readouterr().out)
    assert code == 0 and found["mode"] == "pct" and found["pct"]["runs"] == found["schedules"]
    cx = found["counterexample"]
    code = main(["replay", "FM_001", "--guard", "off", "--schedule", cx["schedule"], "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["digest"] == cx["digest"]


@pytest.mark.parametrize("argv", [["--depth", "0"], ["--depth", "9"], ["--depth", "x"]])
def test_a_bad_depth_is_one_line_and_exit_2(capsys, argv):
    code = main(["explore", "FM_001", "--mode", "pct", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
