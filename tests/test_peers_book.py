"""The peers chapter's matrix: cells sum the seeds and name those that show harm; a fault
that does not apply says why; a cell without results says it was not measured."""

from __future__ import annotations

from failfirst_book.tables import PEERS_NOT_RUN, peers_cell, peers_matrix


def result(fault: str, seed: int, **counts: int) -> dict:
    base = {"completed": 0, "duplicated": 0, "lost": 0, "failed": 0, "stuck": 0}
    return {"system": "S", "broker": "B", "config": "c", "fault": fault, "seed": seed,
            "jobs": sum(counts.values()), **base, **counts}


def test_a_cell_sums_its_seeds_and_names_the_seeds_that_show_harm() -> None:
    runs = [result("kill@effect", 0, completed=5, duplicated=1), result("kill@effect", 1, completed=6),
            result("kill@effect", 2, completed=5, duplicated=1)]
    assert peers_cell(runs) == "completed 16 · duplicated 2 (seeds 0, 2)"
    runs[1]["reported_failed_but_finished"] = 1
    assert peers_cell(runs).endswith("of which reported failed 1")


def test_the_matrix_says_na_with_why_and_not_measured_and_highlights_harm() -> None:
    key = ("S", "B", "c")
    rows = [result("kill@claimed", 0, completed=6), result("kill@effect", 0, completed=5, lost=1)]
    table = peers_matrix([(key, "S on B: c")],
                         [("kill@claimed", lambda k: ""), ("kill@effect", lambda k: ""),
                          ("kill@backoff", lambda k: "no retries"), ("sigterm", lambda k: "")], rows)
    assert table.columns == ["configuration", "kill@claimed", "kill@effect", "kill@backoff", "sigterm"]
    assert table.rows[0][1:] == ["completed 6", "completed 5 · lost 1 (seed 0)", "n/a: no retries",
                                 PEERS_NOT_RUN]
    assert table.highlight == [True]
    clean = peers_matrix([(key, "S on B: c")], [("kill@claimed", lambda k: "")], rows[:1])
    assert clean.highlight == [False]
