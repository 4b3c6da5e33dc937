"""The peers judge on hand-built ledgers: every category, and which wins when two apply."""

from __future__ import annotations

import pytest

from failfirst.peers import ledger as ledger_file
from failfirst.peers.judge import CATEGORIES, PRECEDENCE, REPORTED_FAILED, REPORTED_HELD, Kill, judge
from failfirst.peers.ledger import FINISHED, STARTED, Row


def rows(*spec: tuple[str, str, int, float]) -> list[Row]:
    return [Row(i + 1, job, kind, pid, t) for i, (job, kind, pid, t) in enumerate(spec)]


def test_each_category_from_the_ledger_and_the_report() -> None:
    ledger = rows(
        ("done", STARTED, 1, 0.0), ("done", FINISHED, 1, 0.3),
        ("twice", STARTED, 1, 0.0), ("twice", FINISHED, 1, 0.3),
        ("twice", STARTED, 2, 1.0), ("twice", FINISHED, 2, 1.3),
        ("gone", STARTED, 1, 0.0),             # killed; the system forgot it
        ("parked", STARTED, 1, 0.0),           # killed; the system says failed
        ("held", STARTED, 1, 0.0),             # killed; the system still holds it
    )
    verdict = judge(["done", "twice", "gone", "parked", "held", "never"], ledger,
                    {"parked": REPORTED_FAILED, "held": REPORTED_HELD, "never": REPORTED_HELD})
    assert verdict.categories == {"done": "completed", "twice": "duplicated", "gone": "lost",
                                  "parked": "failed", "held": "stuck", "never": "stuck"}
    assert verdict.counts == {"completed": 1, "duplicated": 1, "lost": 1, "failed": 1, "stuck": 2}
    assert sum(verdict.counts.values()) == 6


def test_a_job_never_started_and_unknown_to_the_system_is_lost() -> None:
    assert judge(["j"], [], {}).categories == {"j": "lost"}


@pytest.mark.parametrize("reported", [None, REPORTED_FAILED, REPORTED_HELD])
def test_the_ledger_wins_over_the_report(reported: str | None) -> None:
    """A finished row says what happened, whatever the system shows afterwards."""
    once = rows(("j", STARTED, 1, 0.0), ("j", FINISHED, 1, 0.3))
    twice = once + rows(("j", FINISHED, 2, 0.9))
    report = {} if reported is None else {"j": reported}
    assert judge(["j"], once, report).categories["j"] == "completed"
    assert judge(["j"], twice, report).categories["j"] == "duplicated"


def test_failed_wins_over_stuck_and_the_precedence_is_total() -> None:
    assert PRECEDENCE == ("duplicated", "completed", "failed", "stuck", "lost")
    assert set(PRECEDENCE) == set(CATEGORIES)
    verdict = judge(["a"], rows(("a", STARTED, 1, 0.0)), {"a": REPORTED_FAILED})
    assert verdict.categories["a"] == "failed"


def test_a_finished_job_the_system_calls_failed_is_counted_as_misreported() -> None:
    ledger = rows(("j", STARTED, 1, 0.0), ("j", FINISHED, 1, 0.3))
    verdict = judge(["j"], ledger, {"j": REPORTED_FAILED})
    assert verdict.categories["j"] == "completed"
    assert verdict.reported_failed_but_finished == 1


def test_rerun_time_is_from_the_kill_to_the_next_start() -> None:
    ledger = rows(("j", STARTED, 1, 10.0), ("j", STARTED, 2, 13.5), ("j", FINISHED, 2, 13.8),
                  ("k", STARTED, 1, 10.0))
    verdict = judge(["j", "k"], ledger, {}, [Kill(10.2, 1, "j"), Kill(10.2, 1, "k")])
    assert verdict.rerun_s[0] == pytest.approx(3.3)
    assert verdict.rerun_s[1] is None  # k never ran again
    assert verdict.to_json()["killed_jobs_rerun"] == 1


def test_rows_of_a_job_never_enqueued_are_refused() -> None:
    with pytest.raises(AssertionError, match="never enqueued"):
        judge(["a"], rows(("b", STARTED, 1, 0.0)), {})


def test_a_report_that_is_not_a_category_is_refused() -> None:
    with pytest.raises(AssertionError):
        judge(["a"], [], {"a": "running"})


# -- combinations (issue 26): several restarts, several kills, two verdicts on one job -------


def test_several_restarts_after_a_kill_measure_to_the_first_and_count_once() -> None:
    """A job restarted three times after one kill: its rerun time is to the first start
    after the kill (never to a start before it, nor to a later one, nor to a finished
    row); the two finishes make it duplicated."""
    ledger = rows(("j", STARTED, 1, 10.0), ("j", FINISHED, 1, 10.1),  # before the kill
                  ("j", STARTED, 2, 12.0), ("j", STARTED, 3, 14.0),
                  ("j", STARTED, 4, 15.0), ("j", FINISHED, 4, 15.2))
    verdict = judge(["j"], ledger, {}, [Kill(11.0, 1, "j")])
    assert verdict.rerun_s == [pytest.approx(1.0)]
    assert verdict.categories == {"j": "duplicated"}
    assert verdict.to_json()["killed_jobs_rerun"] == 1


def test_two_kills_of_one_job_each_measure_from_their_own_moment() -> None:
    ledger = rows(("j", STARTED, 1, 0.0), ("j", STARTED, 2, 2.0), ("j", STARTED, 3, 5.0),
                  ("j", FINISHED, 3, 5.5))
    verdict = judge(["j"], ledger, {}, [Kill(1.0, 1, "j"), Kill(3.0, 2, "j")])
    assert verdict.rerun_s == [pytest.approx(1.0), pytest.approx(2.0)]
    assert verdict.to_json()["rerun_s_max"] == 2.0 and verdict.to_json()["rerun_s_min"] == 1.0
    assert verdict.categories == {"j": "completed"}


def test_a_finish_after_the_kill_is_not_a_restart() -> None:
    """The killed worker's own finished row (its effect landed just before the kill was
    seen) is not the job running again."""
    ledger = rows(("j", STARTED, 1, 0.0), ("j", FINISHED, 1, 1.5))
    assert judge(["j"], ledger, {}, [Kill(1.0, 1, "j")]).rerun_s == [None]


def test_a_job_both_duplicated_and_reported_failed_is_duplicated_and_not_misreported() -> None:
    """Work done twice is the worse news: the job is duplicated whatever the system says,
    and it is not counted among the finished-once jobs the system called failed."""
    ledger = rows(("j", STARTED, 1, 0.0), ("j", FINISHED, 1, 0.3),
                  ("j", STARTED, 2, 1.0), ("j", FINISHED, 2, 1.3),
                  ("k", STARTED, 1, 0.0), ("k", FINISHED, 1, 0.3))
    verdict = judge(["j", "k"], ledger, {"j": REPORTED_FAILED, "k": REPORTED_FAILED})
    assert verdict.categories == {"j": "duplicated", "k": "completed"}
    assert verdict.reported_failed_but_finished == 1  # k only


def test_the_ledger_read_from_a_sequence_number_returns_only_later_rows_in_order(tmp_path) -> None:
    path = str(tmp_path / "ledger.db")
    ledger_file.create(path)
    for job, kind in [("a", STARTED), ("b", STARTED), ("a", FINISHED), ("b", FINISHED)]:
        ledger_file.append(path, job, kind, pid=7)
    every = ledger_file.read(path)
    assert [(r.seq, r.job, r.kind) for r in every] == [
        (1, "a", STARTED), (2, "b", STARTED), (3, "a", FINISHED), (4, "b", FINISHED)]
    assert [r.seq for r in ledger_file.read(path, 2)] == [3, 4]  # after 2, not from it
    assert ledger_file.read(path, 4) == []
    assert all(r.pid == 7 for r in every)
