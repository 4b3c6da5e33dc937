"""Kill points: the task body announces and holds; each kill's point is read from the ledger;
a row whose kill did not strike where it aimed is refused."""

from __future__ import annotations

import json

import pytest

from failfirst.peers import faults, ledger, sys_celery, sys_dramatiq, sys_failfirst, sys_huey, sys_rq
from failfirst.peers.faults import FAULTS, KillBackoff, KillClaimed, KillEffect, KillPrefetched
from failfirst.peers.harness import PeersError, Settings
from failfirst.peers.judge import Kill
from failfirst.peers.ledger import COMMITTING, FINISHED, RETRY, STARTED, Row
from failfirst.peers.matrix import ADAPTERS, check_row

SETTINGS = Settings(jobs=6, kills=1, seed=4)


def rows(*spec: tuple[str, str, int, float]) -> list[Row]:
    return [Row(i + 1, job, kind, pid, t) for i, (job, kind, pid, t) in enumerate(spec)]


def test_the_kill_points_come_first_in_column_order() -> None:
    assert list(FAULTS)[:4] == ["kill@claimed", "kill@effect", "kill@backoff", "kill@prefetched"]
    assert all(f.description for f in FAULTS.values())


def test_the_struck_point_is_the_victims_last_row_before_the_kill() -> None:
    ledger_rows = rows(("j", STARTED, 7, 1.0), ("j", FINISHED, 7, 1.3), ("k", STARTED, 8, 1.4))
    claimed, effect = KillClaimed(SETTINGS), KillEffect(SETTINGS)
    assert claimed.struck(Kill(1.1, 7, "j", aim="claimed"), ledger_rows) == "claimed"
    assert effect.struck(Kill(1.35, 7, "j", aim="effect"), ledger_rows) == "effect"
    # Aimed at claimed, landed after the effect: the ledger says effect, not the intention.
    assert claimed.struck(Kill(1.35, 7, "j", aim="claimed"), ledger_rows) == "effect"
    assert claimed.struck(Kill(0.5, 7, "j", aim="claimed"), ledger_rows) == "before the job started"
    # failfirst's effect point is its committing announcement.
    assert effect.struck(Kill(2.0, 9, "m", aim="effect"), rows(("m", STARTED, 9, 1.0),
                                                            ("m", COMMITTING, 9, 1.5))) == "effect"


def test_a_backoff_kill_must_land_after_the_retry_was_recorded_and_before_the_next_start() -> None:
    backoff = KillBackoff(SETTINGS)
    ledger_rows = rows(("j", RETRY, 7, 1.0), ("j", STARTED, 8, 3.0))
    assert backoff.struck(Kill(1.5, 7, "j", aim="backoff"), ledger_rows) == "backoff"
    assert backoff.struck(Kill(1.1, 7, "j", aim="backoff"), ledger_rows) == "before the retry was recorded"
    assert backoff.struck(Kill(3.1, 7, "j", aim="backoff"), ledger_rows) == "claimed"


def test_a_prefetch_kill_strikes_only_when_more_were_delivered_than_started() -> None:
    prefetched = KillPrefetched(SETTINGS)
    ledger_rows = rows(("a", STARTED, 7, 1.0), ("b", STARTED, 8, 1.1))
    # detail: the jobs the broker had delivered just before the kill; two of them had started.
    assert prefetched.struck(Kill(1.5, 7, "a", aim="prefetched", detail="5"), ledger_rows) == "prefetched"
    assert prefetched.struck(Kill(1.5, 7, "a", aim="prefetched", detail="2"),
                             ledger_rows) == "nothing reserved"


def row(struck: list[dict], **changes: object) -> dict:
    base = {"system": "s", "version": "1", "config": "c", "broker": "b", "fault": "kill@effect",
            "jobs": 4, "kills": len(struck), "struck": struck, "completed": 4, "duplicated": 0,
            "lost": 0, "failed": 0, "stuck": 0, "seed": 0}
    return {**base, **changes}


def test_a_row_whose_kill_did_not_strike_where_it_aimed_is_refused() -> None:
    check_row(row([{"job": "j", "aim": "effect", "struck": "effect", "pid": 1}]))
    with pytest.raises(PeersError, match="aimed at effect struck claimed"):
        check_row(row([{"job": "j", "aim": "effect", "struck": "effect", "pid": 1},
                       {"job": "k", "aim": "effect", "struck": "claimed", "pid": 2}]))
    with pytest.raises(PeersError, match="no kill"):
        check_row(row([]))


def test_which_faults_apply_and_why_not() -> None:
    assert KillBackoff.applies(sys_failfirst.FailfirstSqlite)
    assert KillBackoff.applies(sys_dramatiq.DramatiqRabbit)
    assert not KillBackoff.applies(sys_celery.CeleryRabbit)
    assert "Retry" in KillBackoff.why_not(sys_rq.RQRetry)
    assert KillPrefetched.applies(sys_celery.CeleryRabbitReject)
    assert not KillPrefetched.applies(sys_huey.HueyRedis)
    for adapter in ADAPTERS:  # every configuration has the two points every task passes
        assert KillClaimed.applies(adapter) and KillEffect.applies(adapter)
        assert KillBackoff.applies(adapter) or KillBackoff.why_not(adapter)


def test_targets_are_seeded_and_named_to_the_task_body(tmp_path) -> None:
    def env(seed: int) -> dict:
        fault = KillEffect(Settings(jobs=12, kills=2, seed=seed))
        fault.prepare(None, sys_failfirst.FailfirstSqlite())  # type: ignore[arg-type]
        return json.loads(fault.worker_env(None)[ledger.ENV_HOLD])  # type: ignore[arg-type]

    assert env(1) == env(1) and len(env(1)) == 2
    assert set(env(1).values()) == {COMMITTING}  # failfirst's effect point
    assert any(env(1) != env(s) for s in range(2, 6))


@pytest.fixture
def task_env(tmp_path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    path = str(tmp_path / "ledger.db")
    ledger.create(path)
    monkeypatch.setenv(ledger.ENV_LEDGER, path)
    monkeypatch.setenv(ledger.ENV_WORK_S, "0.001")
    holds: list[str] = []
    # The hold is the wait for a SIGKILL; here nobody kills, so it records where it held.
    monkeypatch.setattr(ledger, "hold", lambda: holds.append(ledger.read(path)[-1].kind))
    return holds


def kinds(job: str) -> list[str]:
    import os

    return [r.kind for r in ledger.read(os.environ[ledger.ENV_LEDGER]) if r.job == job]


@pytest.mark.parametrize("kind", [STARTED, FINISHED])
def test_a_targeted_job_holds_at_its_point_on_its_first_attempt_only(
        kind: str, task_env: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ledger.ENV_HOLD, json.dumps({"t": kind}))
    ledger.run_job("other")
    assert task_env == []  # a job not targeted never holds
    ledger.run_job("t")
    assert task_env == [kind]
    ledger.run_job("t")  # the second attempt (after the kill) runs straight through
    assert task_env == [kind]
    assert kinds("t") == [STARTED, FINISHED, STARTED, FINISHED]


def test_a_job_targeted_at_retry_fails_its_first_attempt_only(task_env: list[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ledger.ENV_HOLD, json.dumps({"t": RETRY}))
    with pytest.raises(ledger.RetryRequested):
        ledger.run_job("t")
    ledger.run_job("t")
    assert kinds("t") == [RETRY, STARTED, FINISHED] and task_env == []


def test_failfirst_announces_committing_only_for_its_target(task_env: list[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ledger.ENV_HOLD, json.dumps({"t": COMMITTING}))
    for job in ("t", "u"):
        ledger.begin(job)
        ledger.effect(job, COMMITTING)
    assert kinds("t") == [STARTED, COMMITTING] and kinds("u") == [STARTED]
    assert task_env == [COMMITTING]


def test_unknown_faults_are_bad_input() -> None:
    from failfirst.peers.matrix import PeersInputError

    assert faults.select("kill@effect,kill@claimed") == [KillClaimed, KillEffect]
    with pytest.raises(PeersInputError, match="--faults: unknown kill@nowhere"):
        faults.select("kill@nowhere")
