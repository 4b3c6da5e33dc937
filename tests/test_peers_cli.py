"""`failfirst peers`: bad input is one line and exit 2; the results contract is enforced."""

from __future__ import annotations

import pytest

from failfirst.cli import main
from failfirst.peers.harness import PeersError, RunContext
from failfirst.peers.matrix import ADAPTERS, check_row, read, run_matrix, select
from failfirst.peers.sys_failfirst import FailfirstSqlite


@pytest.mark.parametrize("argv, message", [
    (["--jobs", "3", "--kills", "4"], "--kills"),
    (["--faults", "kill@nowhere"], "--faults"),
    (["--only", "no-such-queue"], "--only"),
    (["--parallel", "9"], "--parallel"),
    (["--seeds", "0"], "--seeds"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str, tmp_path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    assert main(["peers", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("failfirst: error:") and message in err and "\n" not in err
    assert not out.exists()  # nothing was run or written


def row(**changes: object) -> dict:
    struck = [{"job": "j", "aim": "claimed", "struck": "claimed", "pid": 1}]
    base = {"system": "s", "version": "1", "config": "c", "broker": "b", "fault": "kill@claimed",
            "jobs": 4, "kills": 1, "struck": struck,
            "completed": 4, "duplicated": 0, "lost": 0, "failed": 0, "stuck": 0, "seed": 0}
    return {**base, **changes}


def test_a_row_needs_a_kill_and_categories_that_add_up() -> None:
    check_row(row())
    with pytest.raises(PeersError, match="no kill"):
        check_row(row(kills=0, struck=[]))
    with pytest.raises(PeersError, match="add up"):
        check_row(row(completed=3))
    with pytest.raises(PeersError, match="without"):
        check_row({k: v for k, v in row().items() if k != "seed"})


def test_every_configuration_is_selectable_and_named_once() -> None:
    names = [(a.system, a.broker, a.config) for a in ADAPTERS]
    assert len(set(names)) == len(names)
    assert {a.system for a in ADAPTERS} >= {"Celery", "RQ", "huey", "Dramatiq", "procrastinate",
                                           "pgqueuer", "failfirst"}
    assert select("huey") == [a for a in ADAPTERS if a.system == "huey"]


class _ServiceDown(FailfirstSqlite):
    config = "its service is down"

    def setup(self, run: RunContext) -> None:
        raise PeersError("the service is down")


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_broken_run_is_reported_and_the_other_cells_are_still_written(parallel: int, tmp_path) -> None:
    """One bad cell must not cost the others: the matrix runs them all, writes the good
    rows and then fails, naming each broken run."""
    out = tmp_path / "results.json"
    with pytest.raises(PeersError) as caught:
        run_matrix(str(out), jobs=2, seeds=1, work_s=0.1, fault_names="kill@claimed",
                   adapters=[_ServiceDown, FailfirstSqlite], parallel=parallel)
    message = str(caught.value)
    assert message.startswith("1 of 2 runs broke (1 written to ")
    assert "failfirst its service is down, kill@claimed, seed 0: the service is down" in message
    (good,) = read(str(out))
    assert good["config"] == FailfirstSqlite.config and good["completed"] == 2
