"""FM_006 recovered: after a run without fencing, a repair pass reads the downstream
resource's history, finds the rows whose current value came from a stale lease, and
restores the newest lease's value; running it twice equals running it once."""

from __future__ import annotations

from failfirst.proofs import checkers
from failfirst.proofs.explorer import every_schedule, find_run
from failfirst.sim.service_recovery import restore_newest
from failure_modes.FM_006_zombie_worker.scenario import SCENARIO, stale_writes


def _lost_update():
    run = find_run(SCENARIO, False, lambda r: "write" in stale_writes(r))
    assert run is not None
    return run, run.extras["services"]["documents"]


def test_the_repair_restores_the_newest_value():
    run, documents = _lost_update()
    assert checkers.downstream_lost_updates(run.store.events()), "the lost update stands"
    restored = restore_newest(documents)
    assert restored
    events = run.store.events()
    assert checkers.check_inv006_recovered(events, run.store) == []
    for key in restored:
        newest = max((e for e in events if e["kind"] == "write" and e["key"] == key),
                     key=lambda e: e["token"])
        assert documents.rows[key] == (newest["token"], newest["value"])


def test_running_the_repair_twice_equals_running_it_once():
    run, documents = _lost_update()
    restore_newest(documents)
    rows, events = dict(documents.rows), run.store.events()
    assert restore_newest(documents) == ()
    assert documents.rows == rows and run.store.events() == events


def test_the_repair_restores_every_guardrail_off_schedule_and_touches_no_clean_one():
    lost = 0
    for run in every_schedule(SCENARIO, False):  # each a reduced search's run, then the next
        documents = run.extras["services"]["documents"]
        had = bool(checkers.downstream_lost_updates(run.store.events()))
        restored = restore_newest(documents)
        lost += had
        assert bool(restored) == had, run.schedule
        assert checkers.downstream_lost_updates(run.store.events()) == [], run.schedule
    assert lost > 0
