"""Refinement, branch by branch (:mod:`failfirst.proofs.refinement`), on hand-built
histories: what a job view does with each event kind, which actor's views are judged,
and what a run judged at a fault bound other than the scenario's is compared against.

The oracle is FM_007's normal processing (one worker, two jobs, no recovery actor),
enumerated for real: no view is typed in as "reachable" by hand. What the tests rely on
is the scenario's own shape: the first job may be attempted once, so it can end dead
with no effect only if its one attempt crashed, which takes a fault."""

from __future__ import annotations

import pytest

from failfirst.processor.transitions import TRANSITIONS
from failfirst.proofs.explorer import explore, with_bounds
from failfirst.proofs.refinement import Refinement, job_views
from failfirst.proofs.run import simulate
from failfirst.sim.choices import RandomChoices
from failure_modes.FM_007_recovery_drift.scenario import NORMAL, SCENARIO

#: A view normal processing reaches only with a fault: job 1 (one attempt) dead, no effect.
CRASHED_VIEW = (1, "dead", 1, 0)


class History:
    """Events as the store writes them, numbered in order."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def add(self, kind: str, job: int | None, actor: str = "w1", to: str | None = None,
            **data) -> dict:
        event = {"seq": len(self.events) + 1, "t": 0.0, "actor": actor, "job": job, "kind": kind,
                 "from": None, "to": to, "token": None, **data}
        self.events.append(event)
        return event


@pytest.fixture(scope="module")
def judge() -> Refinement:
    """One judge for the module: its oracles are cached per fault bound, as in a proof."""
    return Refinement(NORMAL)


# -- the job views ---------------------------------------------------------------------------


def test_a_view_follows_every_transition_and_effect_and_ignores_every_other_kind():
    h = History()
    h.add("start", None, actor="sim", max_faults=1)
    h.add("enqueue", 1, actor="client", to="pending")
    h.add("claim", 1, to="leased", attempt=1)
    h.add("heartbeat", 1, until=5.0)
    h.add("effect", 1, part="debit")
    h.add("effect", 1, part="credit")
    h.add("repair", 1, actor="recovery", part="credit")
    h.add("complete", 1, to="succeeded")
    h.add("enqueue", 2, actor="client", to="pending")
    h.add("claim", 2, to="leased", attempt=3)  # attempts come from the claim, not a count
    h.add("retry", 2, to="pending")
    h.add("claim", 2, to="leased", attempt=4)
    h.add("expire", 2, actor="reaper", to="pending")
    h.add("claim", 2, to="leased", attempt=5)
    h.add("expire_dead", 2, actor="reaper", to="dead")
    h.add("redrive", 2, actor="operator", to="pending")  # a fresh budget
    h.add("claim", 2, to="leased", attempt=1)
    h.add("dead", 2, to="dead")
    h.add("redrive", 2, actor="operator", to="pending")
    h.add("reconcile", 2, actor="recovery", to="succeeded")
    for kind in ("refused", "lease_bounded", "crash", "charge", "refund", "write", "restore",
                 "outbox", "publish", "consume", "call"):
        h.add(kind, 1)  # events about a job that change none of what a view holds
    h.add("crash", None)
    views = [(e["seq"], view) for e, view in job_views(h.events)]
    assert views == [
        (2, (1, "pending", 0, 0)), (3, (1, "leased", 1, 0)), (5, (1, "leased", 1, 1)),
        (6, (1, "leased", 1, 2)), (7, (1, "leased", 1, 1)), (8, (1, "succeeded", 1, 1)),
        (9, (2, "pending", 0, 0)), (10, (2, "leased", 3, 0)), (11, (2, "pending", 3, 0)),
        (12, (2, "leased", 4, 0)), (13, (2, "pending", 4, 0)), (14, (2, "leased", 5, 0)),
        (15, (2, "dead", 5, 0)), (16, (2, "pending", 0, 0)), (17, (2, "leased", 1, 0)),
        (18, (2, "dead", 1, 0)), (19, (2, "pending", 0, 0)), (20, (2, "succeeded", 0, 0)),
    ]
    # Every event of the transition table is exercised above.
    assert {event for _, event in TRANSITIONS} <= {e["kind"] for e in h.events}


def test_a_view_is_yielded_with_the_event_that_made_it():
    h = History()
    enqueue = h.add("enqueue", 7, actor="client", to="pending")
    claim = h.add("claim", 7, actor="w3", to="leased", attempt=1)
    assert [(e, view) for e, view in job_views(h.events)] == [
        (enqueue, (7, "pending", 0, 0)), (claim, (7, "leased", 1, 0))]


# -- the oracle ------------------------------------------------------------------------------


@pytest.mark.parametrize("max_faults", [0, 1])
def test_the_oracle_is_every_view_of_every_normal_schedule_at_that_bound(judge, max_faults):
    normal = with_bounds(NORMAL, max_faults)
    search = explore(normal, True, stop_at_first=False, shrink_counterexample=False,
                     reduction="none")
    assert judge.schedules(max_faults) == search.schedules
    for seed in range(8):
        run = simulate(normal, True, RandomChoices(seed))
        assert {view for _, view in job_views(run.events)} <= judge.oracle(max_faults)


def test_a_view_that_takes_a_fault_is_in_the_oracle_of_one_fault_only(judge):
    assert CRASHED_VIEW in judge.oracle(1) and CRASHED_VIEW not in judge.oracle(0)
    assert judge.oracle(0) < judge.oracle(1)
    assert judge.oracle() == judge.oracle(NORMAL.faults.max_faults)


def test_the_oracle_is_normal_processing_without_the_recovery():
    with pytest.raises(AssertionError):
        Refinement(SCENARIO)


# -- the judge -------------------------------------------------------------------------------


def _recovery_killed_job_1(max_faults: int | None, actor: str = "recovery") -> list[dict]:
    """A history in which ``actor`` moves job 1, whose one attempt was claimed and never
    crashed, to dead with no effect."""
    h = History()
    h.add("start", None, actor="sim", **({} if max_faults is None else {"max_faults": max_faults}))
    h.add("enqueue", 1, actor="client", to="pending")
    h.add("enqueue", 2, actor="client", to="pending")
    h.add("claim", 1, to="leased", attempt=1)
    h.add("expire_dead", 1, actor=actor, to="dead", reason="orphaned at restart")
    return h.events


def test_a_recovery_view_no_normal_schedule_reaches_is_an_inv006_naming_its_event(judge):
    events = _recovery_killed_job_1(max_faults=0)
    [found] = judge(events, None)
    assert (found.invariant, found.job, found.events) == ("INV_006", 1, (5,))
    assert found.detail == (
        "recovery's expire_dead left the job dead with 1 attempt spent and 0 effect parts: "
        f"no normal schedule of {judge.schedules(0)} reaches that state")


def test_a_run_is_judged_against_normal_processing_at_its_own_fault_bound(judge):
    assert judge(_recovery_killed_job_1(max_faults=0), None) != []
    assert judge(_recovery_killed_job_1(max_faults=1), None) == []  # one crash reaches it
    assert judge(_recovery_killed_job_1(max_faults=0), None) != []  # the cache is per bound
    assert judge(_recovery_killed_job_1(max_faults=None), None) == []  # the scenario's bound: 1


def test_only_the_recovery_actors_views_are_judged(judge):
    assert judge(_recovery_killed_job_1(max_faults=0, actor="reaper"), None) == []
    operator = Refinement(NORMAL, actor="reaper")
    [found] = operator(_recovery_killed_job_1(max_faults=0, actor="reaper"), None)
    assert found.detail.startswith("recovery's expire_dead left the job dead")


def test_a_view_normal_processing_reaches_is_no_drift(judge):
    h = History()
    h.add("start", None, actor="sim", max_faults=0)
    h.add("enqueue", 1, actor="client", to="pending")
    h.add("claim", 1, to="leased", attempt=1)
    h.add("effect", 1, actor="recovery", part="report")  # as a worker would have
    h.add("complete", 1, actor="recovery", to="succeeded")
    assert judge(h.events, None) == []
