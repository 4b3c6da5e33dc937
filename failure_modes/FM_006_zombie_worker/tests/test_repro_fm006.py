"""FM_006 reproduced: without fencing, a worker that paused past its lease — or whose
own clock ran slow — writes after the reaper gave its job to another worker. The
checker names INV_003 for every kind of stale write, and the shrinker reduces each
kind to a minimal schedule of one fault."""

from __future__ import annotations

import pytest

from failfirst.proofs.explorer import find_run, shrink
from failfirst.proofs.prove import reproduce
from failfirst.proofs.run import replay
from failure_modes.FM_006_zombie_worker.scenario import (
    ONE_FAULT,
    SCENARIO,
    STALE_KINDS,
    first_of_each_kind,
    stale_writes,
)


def test_exploration_finds_inv003_and_its_minimal_counterexample_replays():
    cx = reproduce(SCENARIO)  # shrunk, and replayed to the same digest and violations
    assert "INV_003" in {v["invariant"] for v in cx.violations}
    assert cx.faults == 1, "one pause or one slow clock is enough for a zombie"


@pytest.fixture(scope="module")
def firsts():
    return first_of_each_kind()


@pytest.mark.parametrize("kind", STALE_KINDS)
def test_each_kind_of_stale_write_is_found_and_shrunk(kind, firsts):
    def has(run):
        return kind in stale_writes(run)

    found = firsts.get(kind)
    assert found is not None, f"no schedule lands a stale {kind}"
    minimal = shrink(ONE_FAULT, False, found, keep=has)
    faults = lambda run: [e for e in run.events if e["kind"] in ("pause", "skew")]  # noqa: E731
    assert has(minimal)
    assert (len(faults(minimal)), len(minimal.events)) <= (len(faults(found)), len(found.events))
    assert len(faults(minimal)) == 1, "one fault makes the zombie"
    again = replay(SCENARIO, minimal.schedule, guard=False)  # its schedule names its bound
    assert again.digest == minimal.digest and kind in stale_writes(again)


def test_a_lost_update_downstream_names_both_leases(firsts):
    lost = firsts["write"]
    writes = [e for e in lost.events if e["kind"] == "write"]
    stale = next(v for v in lost.violations if "stale write" in v.detail)
    late = next(e for e in writes if e["seq"] in stale.events)
    newer = [e for e in writes if e["key"] == late["key"] and e["token"] > late["token"]
             and e["seq"] < late["seq"]]
    assert newer, "the newer lease wrote the row first; the zombie's older value landed over it"
    resource = lost.extras["services"]["documents"]
    assert resource.rows[late["key"]][0] == late["token"], "the row now holds the stale value"


def test_a_slow_clock_alone_makes_a_zombie():
    skewed = find_run(SCENARIO, False, lambda run: bool(run.violations) and not any(
        e["kind"] == "pause" for e in run.events))
    assert skewed is not None
    skew = next(e for e in skewed.events if e["kind"] == "skew")
    assert skew["rate"] < 1, "the worker's clock runs slow"
    # The store's clock decided: the reaper expired the lease while the worker still
    # believed it held it, and its next heartbeat came too late.
    expire = next(e for e in skewed.events if e["kind"] in ("expire", "expire_dead")
                  and e["job"] == skew["job"])
    assert expire["seq"] > skew["seq"] and expire["actor"] == "reaper"
