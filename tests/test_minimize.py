"""Counterexamples a reader takes in at a glance (issue 21): shrinking over the scenario
removes the jobs and workers a violation does not need, keeps the fault under study,
and its reproduction — naming the cut — replays to the same history."""

from __future__ import annotations

import json

import pytest

from failfirst.cli import main
from failfirst.proofs.explorer import explore
from failfirst.proofs.minimize import focus, shrink_scenario
from failfirst.proofs.prove import reproduce
from failfirst.proofs.run import replay
from failfirst.sim import catalogue


@pytest.mark.parametrize("fm", ["FM_001", "FM_005", "FM_010"])
def test_a_counterexample_shrinks_over_the_scenario_and_replays(fm, capsys):
    scenario = catalogue.load(fm)
    found = explore(scenario, False, stop_at_first=True)
    full = found.counterexample.result
    reduced = shrink_scenario(scenario, False, full)
    small = reduced.result
    assert set(small.invariants_violated) & set(full.invariants_violated)
    assert small.reached, "the fault under study stays in the counterexample"
    assert len(small.events) < len(full.events)
    assert len(reduced.scenario.jobs) <= len(scenario.jobs)
    assert reduced.jobs is not None or reduced.workers is not None, "something was removed"
    command = reduced.replay_command().split()
    assert command[:2] == ["failfirst", "replay"]
    code = main([*command[1:], "--json"])
    again = json.loads(capsys.readouterr().out)
    assert code == 0 and again["digest"] == small.digest


def test_reproduce_checks_its_reduced_counterexample_too():
    cx = reproduce(catalogue.load("FM_001"))
    assert cx.reduced is not None and cx.reduced.jobs == (1,) and cx.reduced.workers == 1
    again = replay(cx.reduced.scenario, cx.reduced.result.schedule, guard=False)
    assert again.digest == cx.reduced.result.digest


def test_focus_keeps_the_events_of_the_violated_job_and_its_actors_faults():
    scenario = catalogue.load("FM_001")
    run = explore(scenario, False, stop_at_first=True).counterexample.result
    kept = focus(run)
    job = run.violations[0].job
    assert {e["seq"] for e in run.events if e["job"] == job} <= {e["seq"] for e in kept}
    assert any(e["kind"] in ("crash", "pause", "lost_ack") for e in kept)
    assert all(e["job"] in (job, None) for e in kept) and len(kept) < len(run.events)


def test_the_cli_prints_the_smaller_reproduction(capsys):
    assert main(["explore", "FM_001", "--guard", "off", "--json"]) == 0
    cx = json.loads(capsys.readouterr().out)["counterexample"]
    reduced = cx["reduced"]
    assert reduced["jobs"] == [1] and reduced["events"] < cx["events"]
    assert reduced["replay"].startswith("failfirst replay FM_001 --guard off --jobs 1 ")


@pytest.mark.parametrize("jobs", ["0", "2,1", "1,1", "x", "5"])
def test_replay_refuses_a_bad_job_list(capsys, jobs):
    code = main(["replay", "FM_001", "--jobs", jobs, "--schedule", "s1f1:"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
