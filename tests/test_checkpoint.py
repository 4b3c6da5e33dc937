"""``explore --checkpoint FILE``: an exploration interrupted part-way resumes from its
checkpoint and reports exactly what an uninterrupted one reports; the checkpoint is
removed when the exploration ends; a path or file that is not a checkpoint of the same
exploration is refused before anything runs, and nothing is written over it."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from failfirst.cli import main
from failfirst.proofs import explorer
from failfirst.proofs.explorer import BoundError, explore, with_bounds
from failure_modes.FM_001_retry_duplication.scenario import SCENARIO

SMALL = dataclasses.replace(with_bounds(SCENARIO, 1), jobs=SCENARIO.jobs[:2])


def _counts(x):
    return (x.schedules, x.distinct, x.violating, x.reached, x.sleep_blocked, x.invariants_violated,
            x.shortest_violation, x.coverage, x.sometimes, x.exhaustive,
            x.counterexample.schedule if x.counterexample else None)


def _interrupt_after(n: int, *, calls: bool = False):
    """A progress callback that interrupts (as Ctrl-C does) once ``n`` schedules ran, or
    at its ``n``-th call (a parallel exploration reports a subtree per call)."""
    seen = [0]

    def progress(done: int) -> None:
        seen[0] += 1
        if (seen[0] if calls else done) >= n:
            raise KeyboardInterrupt

    return progress


CASES = {
    "sleep sets": dict(mode="exhaustive", reduction="full"),
    "depth-first": dict(mode="exhaustive", reduction="symmetry"),
    "random": dict(mode="random", runs=120, seed=4),
    "pct": dict(mode="pct", runs=120, seed=4),
    "parallel sleep sets": dict(mode="exhaustive", reduction="full", workers=2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_interrupted_exploration_resumes_to_the_same_result(tmp_path, monkeypatch, case):
    monkeypatch.setattr(explorer._Saver, "due", lambda self: True)  # a checkpoint after every step
    kwargs = {"shrink_counterexample": False, **CASES[case]}
    whole = explore(SMALL, False, **kwargs)
    path = str(tmp_path / "explore.ckpt")
    parallel = case.startswith("parallel")  # a subtree is one step there
    with pytest.raises(KeyboardInterrupt):
        explore(SMALL, False, checkpoint=path, **kwargs,
                progress=_interrupt_after(3 if parallel else whole.schedules // 2, calls=parallel))
    saved = json.loads(open(path).read())["state"]
    assert saved["position"]["search"] != "start" and 0 < saved["tally"]["schedules"] < whole.schedules
    resumed = explore(SMALL, False, checkpoint=path, **kwargs)
    assert resumed.resumed and not os.path.exists(path), "a finished exploration removes it"
    assert _counts(resumed) == _counts(whole)


def test_a_checkpoint_of_another_exploration_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(explorer._Saver, "due", lambda self: True)
    path = str(tmp_path / "explore.ckpt")
    with pytest.raises(KeyboardInterrupt):
        explore(SMALL, False, checkpoint=path, progress=_interrupt_after(5))
    before = open(path).read()
    with pytest.raises(BoundError, match="another exploration .differs in guard"):
        explore(SMALL, True, checkpoint=path)
    with pytest.raises(BoundError, match="differs in .*scenario"):
        explore(dataclasses.replace(SMALL, jobs=SCENARIO.jobs[:3]), False, checkpoint=path)
    assert open(path).read() == before, "a refused checkpoint is left as it was"


@pytest.mark.parametrize("make", ["directory", "symlink", "fifo", "not json", "other json", "no dir"])
def test_a_path_that_is_not_a_checkpoint_is_one_line_and_exit_2(tmp_path, capsys, make):
    path = tmp_path / "ckpt"
    if make == "directory":
        path.mkdir()
    elif make == "symlink":
        (tmp_path / "target").write_text("")
        path.symlink_to(tmp_path / "target")
    elif make == "fifo":
        os.mkfifo(path)
    elif make == "not json":
        path.write_text("my notes\n")
    elif make == "other json":
        path.write_text('{"format": "something else"}')
    elif make == "no dir":
        path = tmp_path / "missing" / "ckpt"
    before = path.read_text() if make in ("not json", "other json") else None
    code = main(["explore", "FM_001", "--max-faults", "1", "--checkpoint", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "--checkpoint" in err
    if before is not None:
        assert path.read_text() == before


def test_the_cli_resumes_and_removes_its_checkpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(explorer._Saver, "due", lambda self: True)
    path = str(tmp_path / "c.json")
    argv = ["explore", "FM_001", "--guard", "off", "--max-faults", "1", "--all", "--workers", "1",
            "--json"]
    code = main(argv)
    whole = json.loads(capsys.readouterr().out)
    real_explore = explorer.explore

    def interrupted(*args, **kwargs):
        return real_explore(*args, **kwargs, progress=_interrupt_after(10))

    monkeypatch.setattr(explorer, "explore", interrupted)
    assert main([*argv, "--checkpoint", path]) == 130
    out, err = capsys.readouterr()
    hint = f"{path} keeps its progress (the same command resumes it)"
    assert out == "" and err == f"failfirst: interrupted; {hint}\n"
    monkeypatch.setattr(explorer, "explore", real_explore)
    assert main([*argv, "--checkpoint", path]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert not os.path.exists(path)
    whole.pop("elapsed_s"), resumed.pop("elapsed_s")
    assert code == 0 and resumed == whole
