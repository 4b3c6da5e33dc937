"""FM_002 reproduced: without atomic_effect a transfer's debit and credit commit in
separate transactions; the checker names the partial effect, a crash between them
leaves the ledger unbalanced, and the retry debits the account a second time."""

from __future__ import annotations

from failfirst.proofs.explorer import depth_first, explore, with_bounds
from failfirst.proofs.prove import reproduce
from failfirst.proofs.run import run_scenario, simulate
from failure_modes.FM_002_partial_write.scenario import SCENARIO, ledger

ONE_FAULT = with_bounds(SCENARIO, max_faults=1)


def _one_fault_runs():
    """Every schedule with at most one fault, guardrail off, in depth-first order."""
    return depth_first(lambda source: simulate(ONE_FAULT, False, source), limit=10_000)


def test_exploration_finds_inv002_and_its_minimal_counterexample_replays():
    cx = reproduce(SCENARIO)  # shrunk, and replayed to the same digest and violations
    assert "INV_002" in {v["invariant"] for v in cx.violations}


def test_without_any_fault_the_parts_are_visible_apart():
    found = explore(SCENARIO, guard=False, stop_at_first=True)
    run = found.counterexample.result
    assert found.counterexample.faults == 0, "no fault is needed to expose a partial effect"
    inv002 = [v for v in run.violations if v.invariant == "INV_002"]
    assert {v.job for v in inv002} == {1, 2}
    by_seq = {e["seq"]: e for e in run.events}
    for v in inv002:
        parts = [by_seq[s] for s in v.events]
        assert [e["part"] for e in parts] == ["debit", "credit"]
        assert parts[0]["tx"] != parts[1]["tx"], "two transactions: a step between them"
        assert "2 transactions" in v.detail


def test_crash_between_the_parts_tears_the_transfer_and_the_retry_debits_twice():
    for run in _one_fault_runs():
        crashes = [e for e in run.events if (e["kind"], e.get("point")) == ("crash", "part_written")]
        if crashes:
            break
    else:
        raise AssertionError("no schedule crashed a worker between a debit and its credit")
    job = crashes[0]["job"]
    torn = [v for v in run.violations if v.invariant == "INV_002" and v.job == job
            and "1 of 2" in v.detail]
    assert len(torn) == 1, run.violations
    twice = [v for v in run.violations if v.invariant == "INV_001" and v.job == job]
    assert len(twice) == 1 and "'debit' was applied 2 times" in twice[0].detail
    payload = run.store.job(job).payload
    cents = payload["cents"]
    balances = ledger(run.store)
    assert balances[payload["from"]] == -2 * cents and balances[payload["to"]] == cents
    assert sum(balances.values()) == -cents, "money vanished: the ledger does not balance"


def test_default_cli_run_reports_inv002():
    run = run_scenario(SCENARIO, guard=False, seed=0)
    assert "INV_002" in run.invariants_violated
