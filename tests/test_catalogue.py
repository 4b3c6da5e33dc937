"""The catalogue says one thing everywhere: a failure mode's guardrails come from its
scenario (list, list --json, the chapters' evidence, the book's tables), and a bundle's
folder, spec, scenario and chapter agree (#24)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from failfirst.cli import main
from failfirst.sim import catalogue

REPO = catalogue.bundles_dir().parent


def test_list_names_every_guardrail_that_guard_off_switches(capsys):
    assert main(["list", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    for scenario in catalogue.all_scenarios():
        switched = set(scenario.guardrails(True).off()) ^ set(scenario.guardrails(False).off())
        assert set(rows[scenario.id]["guardrails"]) == switched, scenario.id
        assert rows[scenario.id]["guardrail"] == scenario.guardrail
    assert rows["FM_003"]["guardrails"] == ["single_layer_retry", "retry_budget", "backoff_jitter"]
    assert main(["list"]) == 0
    fm3 = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("FM_003"))
    assert fm3.endswith("guard: single_layer_retry + retry_budget + backoff_jitter")


def test_a_chapters_evidence_takes_its_guardrails_from_the_scenario():
    from failfirst_book.evidence import record_evidence

    fields = dict(fm="FM_003", claim="c", invariants=["INV_005"], runs=3, violations=0)
    assert record_evidence(**fields).fields["guardrail"] == \
        "single_layer_retry + retry_budget + backoff_jitter"
    with pytest.raises(ValueError, match="comes from the scenario"):
        record_evidence(**fields, guardrail="single_layer_retry")


def test_no_chapter_types_its_guardrails_by_hand():
    typed = [p.name for p in (REPO / "book").glob("FM_*.md") if "guardrail=" in p.read_text()]
    assert typed == []


def test_the_repository_bundles_agree_with_their_specs_scenarios_and_chapters():
    assert catalogue.bundle_problems() == []


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The bundles' specs and scenarios and the failure-mode chapters, copied."""
    shutil.copytree(REPO / "failure_modes", tmp_path / "failure_modes",
                    ignore=shutil.ignore_patterns("__pycache__", "tests"))
    (tmp_path / "book").mkdir()
    for chapter in (REPO / "book").glob("FM_*.md"):
        shutil.copy(chapter, tmp_path / "book" / chapter.name)
    assert catalogue.bundle_problems(tmp_path / "failure_modes") == []
    return tmp_path


def _problems(root: Path) -> list[str]:
    return catalogue.bundle_problems(root / "failure_modes", root / "book")


def test_a_copied_spec_describing_another_failure_mode_is_refused(copy):
    """The issue's case: FM_001's spec copied into a new FM_011 made the index list
    'FM_011 Retry duplication'."""
    new = copy / "failure_modes" / "FM_011_lost_wakeup"
    shutil.copytree(copy / "failure_modes" / "FM_001_retry_duplication", new)
    assert _problems(copy) == ["failure_modes/FM_011_lost_wakeup/spec.md describes FM_001, not FM_011"]


def test_a_chapter_about_another_bundle_is_refused(copy):
    shutil.copytree(copy / "failure_modes" / "FM_001_retry_duplication",
                    copy / "failure_modes" / "FM_011_lost_wakeup")
    spec = copy / "failure_modes" / "FM_011_lost_wakeup" / "spec.md"
    spec.write_text(spec.read_text().replace("# FM_001 — Retry duplication", "# FM_011 — Lost wakeup"))
    shutil.copy(copy / "book" / "FM_001_retry_duplication.md", copy / "book" / "FM_011_lost_wakeup.md")
    found = _problems(copy)
    assert any("its title is not '# FM_011" in p for p in found), found
    assert any("refers to FM_001_retry_duplication" in p for p in found), found
    assert any("records evidence for FM_001" in p for p in found), found


@pytest.mark.parametrize(("rename", "why"), [
    ("FM_001_Retry-Duplication", "not FM_NNN_snake_case_name"),
    ("FM_002_retry_duplication", "FM_002 is also"),
])
def test_a_misnamed_or_doubled_bundle_is_refused(copy, rename, why):
    (copy / "failure_modes" / "FM_001_retry_duplication").rename(copy / "failure_modes" / rename)
    assert any(why in p for p in _problems(copy)), _problems(copy)


def test_a_chapter_without_its_bundle_or_with_another_name_is_refused(copy):
    (copy / "book" / "FM_001_retry_duplication.md").rename(copy / "book" / "FM_001_retries.md")
    shutil.copy(copy / "book" / "FM_002_partial_write.md", copy / "book" / "FM_042_partial_write.md")
    found = _problems(copy)
    assert "book/FM_001_retries.md: the chapter of failure_modes/FM_001_retry_duplication is " \
           "book/FM_001_retry_duplication.md" in found, found
    assert "book/FM_042_partial_write.md: no bundle failure_modes/FM_042_* for this chapter" in found


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_help_lists_the_failure_mode_targets_in_numeric_order():
    import re
    import subprocess

    out = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    numbers = [int(n) for n in re.findall(r"^\s+test-fm(\d+)\s", out, re.MULTILINE)]
    assert numbers == sorted(numbers) and len(numbers) == len(catalogue.all_scenarios()), numbers
