"""`failfirst peers`: bad input is one line and exit 2; the results contract is enforced."""

from __future__ import annotations

import pytest

from failfirst.cli import main
from failfirst.peers.harness import PeersError
from failfirst.peers.matrix import ADAPTERS, check_row, select


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
