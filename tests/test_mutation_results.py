"""``make mutate --out`` (#24): the kill rate per module as JSON, and the contributing
chapter's table of it, labelled when the run was partial or absent."""

from __future__ import annotations

import collections
import json

from failfirst_book.mutation import kill_rate_table, planted_per_module, summary

from tests.mutation.mutations import MUTATIONS
from tests.mutation.run import _verdict, _write_results


def _results(tmp_path, *, complete=True):
    first, second = MUTATIONS[0], next(m for m in MUTATIONS if m.path != MUTATIONS[0].path)
    verdicts = [_verdict(1, first, "caught", "FAILED tests/test_x.py::test_y"),
                _verdict(2, second, "survived", "1 passed")]
    caught = collections.Counter({first.path: 1})
    total = collections.Counter({first.path: 1, second.path: 1})
    out = tmp_path / "mutate" / "results.json"
    _write_results(out, verdicts, caught, total, complete=complete, without=(), elapsed_s=1.25)
    return json.loads(out.read_text()), first.path, second.path


def test_the_results_file_counts_per_module(tmp_path):
    results, first, second = _results(tmp_path)
    assert results["mutations"] == 2 and results["caught"] == 1 and results["survived"] == [2]
    by_module = {r["module"]: r for r in results["by_module"]}
    assert by_module[first]["kill_rate"] == 1.0 and by_module[second]["kill_rate"] == 0.0
    assert [v["verdict"] for v in results["each"]] == ["caught", "survived"]


def test_the_chapter_table_reads_the_results(tmp_path):
    results, first, _ = _results(tmp_path)
    table = kill_rate_table(results)
    rows = {row[0]: row for row in table.rows}
    assert rows[first][2:] == ["1 of 1", "100%"]
    assert rows["all modules"][1:] == ["2", "1 of 2", "50%"]
    assert "partial" not in table.caption
    assert summary(results).startswith("The fast tests caught 1 of 2 planted bugs (50%); "
                                       "1 planted bug survived (numbers 2)")
    partial, _, _ = _results(tmp_path, complete=False)
    assert "a partial run" in kill_rate_table(partial).caption


def test_without_results_the_chapter_says_so():
    table = kill_rate_table(None)
    assert "had not run" in table.caption and "had not run" in summary(None)
    assert sum(planted_per_module().values()) == len(MUTATIONS)
    assert all(row[2] == "—" for row in table.rows)
