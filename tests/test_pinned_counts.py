"""The reviewed schedule counts (``tests/pinned_counts.json``) cover the catalogue as it
is: every failure mode, at its default bounds. The bundles' proof tests compare each
proof with its row (``failure_modes/conftest.py``), so a change in the reduction is a
visible, deliberate change; this test makes sure no failure mode escapes that."""

from __future__ import annotations

import json
import pathlib

from failfirst.proofs.explorer import _bounds
from failfirst.sim import catalogue

PINNED = pathlib.Path(__file__).resolve().parent / "pinned_counts.json"


def test_every_failure_mode_is_pinned_at_its_default_bounds():
    pinned = json.loads(PINNED.read_text())
    scenarios = {s.id: s for s in catalogue.all_scenarios()}
    assert sorted(pinned) == sorted(scenarios)
    for fm, row in pinned.items():
        assert row["bounds"] == _bounds(scenarios[fm]), f"{fm}: regenerate the pinned counts"
        assert row["schedules"] > 0 and row["sleep_blocked"] >= 0


def test_the_issue_bounds_hold():
    """Issue 21: every default proof covers two faults or more, FM_001 and FM_004 three."""
    pinned = json.loads(PINNED.read_text())
    assert all(row["bounds"]["max_faults"] >= 2 for row in pinned.values())
    assert pinned["FM_001"]["bounds"]["max_faults"] >= 3
    assert pinned["FM_004"]["bounds"]["max_faults"] >= 3


def test_every_bundle_proof_test_compares_with_its_pinned_row():
    root = PINNED.parent.parent / "failure_modes"
    for scenario in catalogue.all_scenarios():
        number = scenario.id.split("_")[1]
        tests = list(root.glob(f"{scenario.id}_*/tests/test_prevent_fm{number}.py"))
        assert tests and "check_pinned(" in tests[0].read_text(), scenario.id
