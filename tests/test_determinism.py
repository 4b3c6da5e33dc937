"""The same inputs give the same history digest: in one process, across processes,
and under different PYTHONHASHSEED values."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from failfirst.proofs.run import replay, run_happy_path, run_scenario


def test_same_seed_same_digest_in_process():
    for seed in range(20):
        a = run_scenario("FM_001", guard=False, seed=seed)
        b = run_scenario("FM_001", guard=False, seed=seed)
        assert a.digest == b.digest and a.events == b.events


def test_different_seeds_give_different_histories():
    digests = {run_scenario("FM_001", guard=False, seed=s).digest for s in range(30)}
    assert len(digests) > 5


def test_replay_of_recorded_schedule_gives_same_digest():
    for seed in range(20):
        run = run_scenario("FM_001", guard=False, seed=seed)
        again = replay("FM_001", run.schedule, guard=False)
        assert again.digest == run.digest


def _digest_in_subprocess(hash_seed: str) -> list[str]:
    code = (
        "import json; from failfirst.proofs.run import run_scenario, run_happy_path;"
        "print(json.dumps([run_scenario('FM_001', guard=g, seed=s).digest"
        " for g in (False, True) for s in (0, 1, 2)] + [run_happy_path(12, 3, 5).digest]))"
    )
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def test_digest_is_identical_across_processes_and_hash_seeds():
    here = [run_scenario("FM_001", guard=g, seed=s).digest for g in (False, True) for s in (0, 1, 2)]
    here.append(run_happy_path(12, 3, 5).digest)
    assert _digest_in_subprocess("0") == here
    assert _digest_in_subprocess("12345") == here
