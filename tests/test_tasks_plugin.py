"""The pytest plugin, as a reader meets it: installed by the entry point, off until a
test proves something, a failing proof's report with its replay command, and a replay
that compares its result with the recorded run."""

from __future__ import annotations

import json
import re

import pytest

pytest_plugins = ["pytester"]

NAIVE = '''
import httpx
import failfirst
from failfirst.tasks import Service

PAYMENTS = Service("https://payments.example", effects={"POST /v1/charges": "charge"})

def charge(order):
    return httpx.post("https://payments.example/v1/charges", json={"order": order}).json()["id"]

def test_charge():
    failfirst.prove(charge, 7, services=[PAYMENTS], invariants=["INV_001"], max_faults=2)
'''


def test_the_plugin_is_off_until_a_test_proves_something(pytester: pytest.Pytester):
    pytester.makepyfile(test_plain="def test_nothing():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "failfirst proofs" not in result.stdout.str()
    assert not (pytester.path / ".failfirst").exists()


def test_a_failing_proof_reports_and_replays(pytester: pytest.Pytester):
    pytester.makepyfile(test_shop=NAIVE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "Falsified: charge(7)" in out and "payments applied 'charge' 2 times" in out
    commands = re.findall(r"pytest '[^']+' --failfirst-replay=\S+", out)
    assert commands, "the report has no replay command"
    command = commands[0]
    assert command.startswith("pytest 'test_shop.py::test_charge' --failfirst-replay=s1f2:")
    assert "FALSIFIED" in out.split("failfirst proofs")[1]  # the summary, with schedules/s
    schedule = command.rsplit("=", 1)[1]
    # What the proof would run was on disk before it ran; the counterexample after.
    assert "proving INV_001 of charge(7)" in (pytester.path / ".failfirst" / "proofs.log").read_text()
    (records,) = (pytester.path / ".failfirst" / "counterexamples").glob("*.json")
    assert json.loads(records.read_text())[schedule]["test"] == "test_shop.py::test_charge"

    # The replay command: the same run, compared with the recorded one.
    again = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_shop.py::test_charge",
                                          f"--failfirst-replay={schedule}")
    again.assert_outcomes(failed=1)
    assert "Falsified" in again.stdout.str() and "replayed; replay it with" in again.stdout.str()

    # A recorded run that no longer replays to the same history is named as such.
    data = json.loads(records.read_text())
    data[schedule]["digest"] = "0" * 64
    records.write_text(json.dumps(data))
    changed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_shop.py::test_charge",
                                            f"--failfirst-replay={schedule}")
    changed.assert_outcomes(failed=1)
    assert "ReplayDiffers" in changed.stdout.str() and "the task or the test changed" in changed.stdout.str()


def test_a_failing_proof_fails_the_same_way_under_xdist(pytester: pytest.Pytester):
    pytest.importorskip("xdist")  # a dev dependency: present under make test
    pytester.makepyfile(test_shop=NAIVE + "\n\ndef test_charge_again():\n    test_charge()\n")
    serial = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    spread = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist", "-n", "2")
    serial.assert_outcomes(failed=2)
    spread.assert_outcomes(failed=2)

    def reports(result: pytest.RunResult) -> list[str]:
        # The counterexample and its timeline, up to the line with the (timed) search.
        # Only the failure sections: with CI set, pytest's summary repeats each message whole.
        failures = result.stdout.str().split("short test summary info")[0]
        found = re.findall(r"Minimal counterexample .*?(?=found after)", failures, re.S)
        return sorted(re.sub(r"\n\S*\s*", "\n", r) for r in found)

    assert len(reports(serial)) == 2 and reports(serial) == reports(spread)
