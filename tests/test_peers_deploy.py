"""The deploy faults (failfirst.peers.deploy): each strikes while its targeted job runs,
says so from the ledger, and the judge's categories show what the system did.

The real runs pick, per fault, a configuration whose outcome the system's own
documentation predicts (cited in deploy.REMEDIES). Without the servers the tests skip;
with FAILFIRST_REQUIRE_SERVICES=1 they fail instead.
"""

from __future__ import annotations

import pytest

from failfirst.peers import deploy, faults, matrix, sys_arq, sys_celery, sys_failfirst, sys_huey
from failfirst.peers.harness import Settings, run_one
from failfirst.peers.judge import Kill
from failfirst.peers.ledger import FINISHED, STARTED, Row

SMALL = Settings(jobs=4, workers=2, work_s=0.3, kills=1, seed=1, quiet_margin_s=4.0, timeout_s=120)
DEPLOY = ("sigterm", "restart", "cut", "long-task")


def test_the_deploy_faults_are_registered_after_the_kill_points() -> None:
    assert list(faults.FAULTS)[-4:] == list(DEPLOY)
    assert all(faults.FAULTS[name].description for name in DEPLOY)


def test_each_fault_applies_only_where_it_makes_sense() -> None:
    restart, cut, long_task = (faults.FAULTS[n] for n in ("restart", "cut", "long-task"))
    # A queue in a SQLite file has no server to restart or connection to cut.
    for sqlite in (sys_failfirst.FailfirstSqlite, sys_huey.HueySqlite):
        assert "SQLite file" in restart.why_not(sqlite) and "SQLite file" in cut.why_not(sqlite)
    assert restart.applies(sys_celery.CeleryRabbit) and cut.applies(sys_arq.Arq)
    # A long task needs a threshold to outlive: every configuration named has one, and exists.
    names = {a.__name__ for a in matrix.ADAPTERS}
    assert set(deploy.THRESHOLDS) <= names
    assert long_task.applies(sys_celery.CeleryRedisSolo) and not long_task.applies(sys_celery.CeleryRabbit)
    assert all(faults.FAULTS["sigterm"].applies(a) for a in matrix.ADAPTERS)


def test_every_cell_that_applies_has_a_remedy_with_citations() -> None:
    for adapter in matrix.ADAPTERS:
        for name in DEPLOY:
            if faults.FAULTS[name].applies(adapter):
                remedy = deploy.remedy(name, adapter.system)
                assert remedy["remedy"], (name, adapter.system)
                # Every claim about another system cites that system; failfirst cites its chapter.
                assert remedy["cites"] or adapter.system == "failfirst", (name, adapter.system)
                assert remedy["chapter"] in ("FM_001_retry_duplication", "FM_004_stuck_queue")
                assert all(url.startswith("https://") for _title, url in remedy["cites"])


def test_a_deploy_fault_struck_while_the_job_ran_only_if_the_ledger_says_so() -> None:
    fault = faults.FAULTS["cut"](SMALL)
    rows = [Row(1, "j1", STARTED, 7, 10.0), Row(2, "j1", FINISHED, 7, 11.0)]
    assert fault.struck(Kill(10.5, 7, "j1", aim="running"), rows) == "running"
    assert fault.struck(Kill(11.5, 7, "j1", aim="running"), rows) == "after its finished row"
    assert fault.struck(Kill(9.0, 7, "j1", aim="running"), rows) == "before the job started"


def strike(adapter, fault_name: str) -> dict:  # noqa: ANN001 - an adapter instance
    row = run_one(adapter, SMALL, faults.FAULTS[fault_name](SMALL))
    matrix.check_row(row)  # it struck where it aimed (running), every job in one category
    (kill,) = row["struck"]
    assert kill["aim"] == kill["struck"] == "running"
    return row


@pytest.mark.services("rabbitmq", "redis")
def test_sigterm_past_the_grace_loses_the_job_celery_acknowledged_early() -> None:
    row = strike(sys_celery.CeleryRabbit(), "sigterm")
    (job,) = row["categories"]
    assert row["categories"][job] == "lost"  # acknowledged on receipt, killed after the grace
    assert "was SIGKILLed after" in row["struck"][0]["detail"]  # the warm shutdown waited for it


@pytest.mark.services("redis")
def test_sigterm_makes_arq_cancel_and_run_the_job_again_at_once() -> None:
    row = strike(sys_arq.Arq(), "sigterm")
    (job,) = row["categories"]
    assert row["categories"][job] == "completed"
    # Cancelled on SIGTERM and put back: run again without waiting for the in-progress key.
    assert row["rerun_s_min"] is not None and row["rerun_s_min"] < sys_arq.IN_PROGRESS_EXTRA_S
    assert "exited within the grace period" in row["struck"][0]["detail"]


@pytest.mark.services("redis")  # RabbitMQ itself is a private one; the result backend is the shared Redis
def test_a_rabbitmq_restart_makes_celery_acks_late_run_the_running_task_twice() -> None:
    row = strike(sys_celery.CeleryRabbitAcksLate(), "restart")
    (job,) = row["categories"]
    assert row["categories"][job] == "duplicated"
    assert "private rabbitmq restarted" in row["struck"][0]["detail"]


@pytest.mark.services("rabbitmq", "redis")
def test_a_cut_connection_makes_celery_acks_late_run_the_running_task_twice() -> None:
    row = strike(sys_celery.CeleryRabbitAcksLate(), "cut")
    (job,) = row["categories"]
    assert row["categories"][job] == "duplicated"
    assert row["struck"][0]["detail"].split()[0] != "0"  # connections were reset


@pytest.mark.services("postgresql")
def test_a_cut_backend_does_not_make_failfirst_run_a_job_twice() -> None:
    row = strike(sys_failfirst.FailfirstPostgres(), "cut")
    assert row["duplicated"] == 0 and row["lost"] == 0
    assert "backend(s) of the worker terminated" in row["struck"][0]["detail"]
    assert row["struck"][0]["action"] == "connections cut"


@pytest.mark.services("redis")
def test_a_task_longer_than_the_visibility_timeout_runs_twice_on_celery_redis() -> None:
    row = strike(sys_celery.CeleryRedisSolo(), "long-task")
    (job,) = row["categories"]
    assert row["categories"][job] == "duplicated"  # kombu#337, celery#5935
    # The second run started while the first was still running (its finished row came later).
    first = row["struck"][0]["pid"]
    events = row["timeline"]["events"]
    assert {e["event"] for e in events if e["t_s"] == 0.0} >= {"threshold passed"}  # not "SIGKILL"
    assert all(e["event"] != "SIGKILL" for e in events)
    second_start = min(e["t_s"] for e in events if e["event"] == "started" and e["pid"] != first)
    first_end = min(e["t_s"] for e in events if e["event"] == "finished" and e["pid"] == first)
    assert second_start < first_end


def test_a_task_longer_than_its_lease_runs_once_on_failfirst() -> None:
    row = strike(sys_failfirst.FailfirstSqlite(), "long-task")
    assert row["completed"] == SMALL.jobs  # the heartbeat renewed the lease: no second run


def test_sigterm_is_an_immediate_shutdown_for_huey_and_its_task_is_lost() -> None:
    row = strike(sys_huey.HueySqlite(), "sigterm")
    (job,) = row["categories"]
    assert row["categories"][job] == "lost"


@pytest.mark.services("redis")
def test_arq_fails_a_task_longer_than_its_job_timeout_and_never_runs_it_twice() -> None:
    row = strike(sys_arq.Arq(), "long-task")
    (job,) = row["categories"]
    assert row["categories"][job] == "failed" and row["duplicated"] == 0
