"""Coverage and reachability (issue 21): an exploration counts, for every fault point and
kind its scenario declares, the schedules that struck it, and for every "sometimes"
assertion the schedules that reached its state; a proof that never strikes a declared
point, or never reaches a "sometimes" state, fails loudly."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from failfirst.proofs import coverage
from failfirst.proofs.explorer import depth_first, explore, with_bounds
from failfirst.proofs.prove import ProofError, prove
from failfirst.proofs.run import simulate
from failfirst.sim.scenario import Sometimes
from failure_modes.FM_001_retry_duplication.scenario import SCENARIO

SMALL = dataclasses.replace(with_bounds(SCENARIO, 1), jobs=SCENARIO.jobs[:2])


@pytest.mark.parametrize("guard", [False, True])
def test_coverage_counts_the_schedules_that_struck_each_point_and_kind(guard):
    counted = Counter()
    for run in depth_first(lambda source: simulate(SMALL, guard, source), 100_000):
        counted.update(coverage.struck(run.events))
    x = explore(SMALL, guard, reduction="symmetry", shrink_counterexample=False)
    assert x.coverage == coverage.as_table(counted, SMALL)
    assert sum(x.coverage["claimed"].values()) > 0
    # The commit boundary has no separate effect step: only the unguarded code strikes it.
    assert (x.never_struck == [("effect_written", "crash"), ("effect_written", "pause")]) is guard


def test_a_poison_payloads_own_crash_is_not_an_injected_fault():
    events = [{"kind": "crash", "point": "handler"}, {"kind": "crash", "point": "claimed"},
              {"kind": "lost_ack", "point": "commit"}, {"kind": "claim"}]
    assert coverage.struck(events) == {("claimed", "crash"), ("commit", "lost_ack")}


def test_sometimes_assertions_are_counted_by_the_exploration():
    every = Sometimes("every run", lambda events: True)
    redelivered = Sometimes("a job claimed twice", lambda events: sum(
        e["kind"] == "claim" for e in events) > len(SMALL.jobs))
    scenario = dataclasses.replace(SMALL, sometimes=(every, redelivered))
    x = explore(scenario, True, shrink_counterexample=False)
    assert x.sometimes["every run"] == x.schedules
    assert 0 < x.sometimes["a job claimed twice"] < x.schedules


def test_a_proof_fails_when_a_sometimes_state_is_never_reached():
    never = Sometimes("a job charged three times", lambda events: False)
    with pytest.raises(ProofError, match="never reached with the guardrail on at these bounds: "
                                         "a job charged three times"):
        prove(dataclasses.replace(SMALL, sometimes=(never,)), show=False)
    off = Sometimes("never, guard off", lambda events: False, guard=False)
    with pytest.raises(ProofError, match="never reached with the guardrail off: never, guard off"):
        prove(dataclasses.replace(SMALL, sometimes=(off,)), show=False)


def test_a_proof_fails_when_a_declared_fault_point_is_never_struck():
    points = {**SMALL.faults.points, "renamed_step": ("crash",)}
    renamed = dataclasses.replace(SMALL, faults=dataclasses.replace(SMALL.faults, points=points))
    with pytest.raises(ProofError, match="never struck at these bounds, guardrail on or off: "
                                         "renamed_step/crash"):
        prove(renamed, show=False)


def test_a_point_only_the_unguarded_code_has_is_struck_without_the_guardrail(capsys):
    proved = prove(SMALL)
    assert proved.unguarded is not None and proved.unguarded.bounds["max_faults"] == 1
    assert proved.unguarded.coverage["effect_written"] == {"crash": 4, "pause": 4} or all(
        proved.unguarded.coverage["effect_written"].values())
    assert "effect_written/crash only without the guardrail" in capsys.readouterr().out
