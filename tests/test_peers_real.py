"""One small real run per peer family: real servers, real worker commands, real SIGKILLs.

Each asserts what the system's own documentation says happens to the job whose
worker was killed at a named point (the chapter book/peers.md cites where), and
that every kill struck the point it aimed at (read from the ledger). Without the servers the
tests skip; with FAILFIRST_REQUIRE_SERVICES=1 (as .ci/run sets) they fail instead.
"""

from __future__ import annotations

import pytest

from failfirst.peers import (
    sys_celery,
    sys_dramatiq,
    sys_failfirst,
    sys_huey,
    sys_pgqueuer,
    sys_procrastinate,
    sys_rq,
)
from failfirst.peers.faults import FAULTS, Fault
from failfirst.peers.harness import Adapter, Settings, run_one
from failfirst.peers.judge import CATEGORIES
from failfirst.peers.matrix import check_row

#: Small: a handful of jobs, one kill. The margin after the system's own recovery delay is
#: longer than make peers' 3 s: with four jobs the ledger falls quiet right after the kill.
SMALL = Settings(jobs=4, workers=2, work_s=0.3, kills=1, seed=3, quiet_margin_s=6.0, timeout_s=90)


def run_at(adapter: Adapter, fault: type[Fault], settings: Settings = SMALL) -> dict:
    row = run_one(adapter, settings, fault(settings))
    check_row(row)  # every kill struck where it aimed; every job in exactly one category
    assert row["fault"] == fault.name
    assert [k["struck"] for k in row["struck"]] == [fault.point] * row["kills"]  # type: ignore[attr-defined]
    assert sum(row[c] for c in CATEGORIES) == settings.jobs
    return row


def killed_job_category(adapter: Adapter, fault: str = "kill@claimed") -> str:
    return run_at(adapter, FAULTS[fault])["timeline"]["category"]


@pytest.mark.parametrize("fault", ["kill@claimed", "kill@effect", "kill@backoff"])
def test_failfirst_on_sqlite_strikes_each_point_and_completes_every_job_once(fault: str) -> None:
    row = run_at(sys_failfirst.FailfirstSqlite(), FAULTS[fault])
    assert row["completed"] == SMALL.jobs


@pytest.mark.services("rabbitmq", "redis")
@pytest.mark.parametrize("fault, killed", [
    ("kill@claimed", "completed"),    # requeued when the pool child dies, run once
    ("kill@effect", "duplicated"),    # requeued after its effect: the effect runs twice
    ("kill@prefetched", "completed"),  # the whole worker dies; its reservations come back
])
def test_celery_reject_on_worker_lost_on_rabbitmq_at_each_point(fault: str, killed: str) -> None:
    assert killed_job_category(sys_celery.CeleryRabbitReject(), fault) == killed


@pytest.mark.services("postgresql")
def test_failfirst_on_postgresql_runs_a_killed_job_again_once() -> None:
    assert killed_job_category(sys_failfirst.FailfirstPostgres()) == "completed"


@pytest.mark.services("rabbitmq", "redis")
def test_celery_acks_early_on_rabbitmq_reports_the_killed_task_failed() -> None:
    assert killed_job_category(sys_celery.CeleryRabbit()) == "failed"


@pytest.mark.services("redis")
def test_celery_reject_on_worker_lost_on_redis_runs_the_killed_task_again() -> None:
    assert killed_job_category(sys_celery.CeleryRedis()) == "completed"


@pytest.mark.services("redis")
def test_rq_without_retry_parks_the_killed_job_in_the_failed_registry() -> None:
    assert killed_job_category(sys_rq.RQ()) == "failed"


class _HueyNoWait(sys_huey.HueySqlite):
    # The killed task is gone at once; the test does not wait for the health check.
    recovery_s = 0.0


@pytest.mark.services("redis")  # the same adapter family on Redis runs in make peers
def test_huey_loses_the_task_its_worker_held() -> None:
    assert killed_job_category(_HueyNoWait()) == "lost"


@pytest.mark.services("rabbitmq")
def test_dramatiq_redelivers_the_unacknowledged_message() -> None:
    assert killed_job_category(sys_dramatiq.DramatiqRabbit()) == "completed"


@pytest.mark.services("postgresql")
def test_procrastinate_by_default_leaves_the_killed_job_doing() -> None:
    assert killed_job_category(sys_procrastinate.Procrastinate()) == "stuck"


@pytest.mark.services("postgresql")
def test_pgqueuer_repicks_a_job_whose_heartbeat_stopped() -> None:
    assert killed_job_category(sys_pgqueuer.PgQueuer()) == "completed"
