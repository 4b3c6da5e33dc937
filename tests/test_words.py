"""Counts and bounds in words (#24): ``1 fault``, never ``1 faults`` or ``fault(s)``; an
exploration's bounds in the text output as words, never a Python dict."""

from __future__ import annotations

from failfirst.cli import main
from failfirst.proofs.words import bounds_in_words, count_in_words, plural


def test_a_count_agrees_with_its_noun():
    assert plural(1, "fault") == "1 fault"
    assert plural(0, "fault") == "0 faults"
    assert plural(10_000, "job") == "10,000 jobs"
    assert plural(2, "query", "queries") == "2 queries"


def test_small_counts_are_spelled_out_in_running_text():
    assert count_in_words(1, "failure mode") == "one failure mode"
    assert count_in_words(10, "failure mode") == "ten failure modes"
    assert count_in_words(0, "fault") == "no faults"
    assert count_in_words(13, "failure mode") == "13 failure modes"


def test_bounds_read_as_words():
    bounds = {"workers": 2, "jobs": 1, "max_faults": 1, "max_steps": 200}
    assert bounds_in_words(bounds) == ("2 workers, 1 job, at most 1 fault per schedule, "
                                       "at most 200 steps per run")
    assert bounds_in_words({"workers": 2, "lease_s": 5}) == "2 workers, lease s 5"


def test_explore_prints_its_bounds_in_words(capsys):
    assert main(["explore", "FM_001", "--max-faults", "1"]) == 0
    out = capsys.readouterr().out
    bounds = next(line for line in out.splitlines() if line.startswith("bounds"))
    assert bounds.startswith("bounds: 2 workers, 4 jobs, at most 1 fault per schedule, "), bounds
    assert "{" not in out and "(s)" not in out, out
