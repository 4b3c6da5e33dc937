"""Shared by the bundles' tests: the reviewed schedule counts of the catalogue's proofs.

``tests/pinned_counts.json`` records, for every failure mode, the schedules its
default proof explores (guardrail on, every reduction) and the paths the sleep sets
cut off. A change in the reduction, the scheduler or a scenario that changes them
fails the bundle's proof test until the file is regenerated
(``python -m failfirst.bench.explore_bench --pin``) and the change reviewed:
a reduction that silently explores less is exactly what a proof must not hide.
"""

from __future__ import annotations

import json
import pathlib

import pytest

PINNED = pathlib.Path(__file__).resolve().parent.parent / "tests" / "pinned_counts.json"


@pytest.fixture(scope="session")
def pinned_counts() -> dict:
    return json.loads(PINNED.read_text())


@pytest.fixture
def check_pinned(pinned_counts):
    """Compare a proof's exploration with the pinned counts of its failure mode."""

    def check(proof) -> None:
        pinned = pinned_counts[proof.fm]
        assert proof.bounds == pinned["bounds"], (
            f"{proof.fm}: the default bounds changed; regenerate tests/pinned_counts.json")
        seen = {"schedules": proof.schedules, "sleep_blocked": proof.sleep_blocked}
        expected = {k: pinned[k] for k in seen}
        assert seen == expected, (
            f"{proof.fm}: the proof explored {seen}, pinned {expected}: a deliberate change "
            "regenerates tests/pinned_counts.json (python -m failfirst.bench.explore_bench --pin)")

    return check
