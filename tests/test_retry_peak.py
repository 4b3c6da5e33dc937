"""INV_005's retry peak: retries reaching a dependency within any declared window, judged
from the history's call events against the bound in its start event."""

from __future__ import annotations

from failfirst.proofs.checkers import check_inv005_bounded_work


def _history(retry_times, bound=2, window_s=1.0, first_calls=()):
    events = [{"seq": 0, "kind": "start", "job": None, "max_retries_per_window": bound,
               "retry_window_s": window_s}]
    for t in first_calls:
        events.append({"seq": len(events), "kind": "call", "job": len(events), "at_s": t,
                       "retry": False})
    for t in retry_times:
        events.append({"seq": len(events), "kind": "call", "job": len(events), "at_s": t,
                       "retry": True})
    return events


def test_a_herd_of_retries_in_one_window_is_named():
    [v] = check_inv005_bounded_work(_history([5.0, 5.2, 5.9, 9.0]), None)
    assert v.invariant == "INV_005" and v.job is None
    assert v.detail == "3 retries reached the dependency within 1 s (from t=5 s); the bound is 2"
    assert v.events == (1, 2, 3, 1, 2, 3)


def test_spread_retries_and_first_calls_do_not_count():
    assert check_inv005_bounded_work(_history([5.0, 5.5, 6.0, 6.5, 7.0]), None) == []
    assert check_inv005_bounded_work(_history([5.0], first_calls=[5.0] * 10), None) == []


def test_the_window_is_half_open():
    """Retries exactly one window apart are in different windows."""
    assert check_inv005_bounded_work(_history([1.0, 1.0, 2.0, 2.0]), None) == []
    assert check_inv005_bounded_work(_history([1.0, 1.0, 1.999999]), None) != []


def test_no_declared_bound_no_verdict():
    events = _history([1.0] * 50)
    del events[0]["max_retries_per_window"]
    assert check_inv005_bounded_work(events, None) == []
