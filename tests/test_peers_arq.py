"""arq, the seventh peer: what its in-progress key and max_tries do to a killed worker's job.

arq keeps a running job in its queue, guarded by ``arq:in-progress:<id>`` (time to live:
the job timeout plus 10 s). A SIGKILLed worker's job runs again once that key expires,
counted against ``max_tries``; with ``max_tries=1`` arq records it failed instead.
Without Redis the tests skip; with FAILFIRST_REQUIRE_SERVICES=1 they fail.
"""

from __future__ import annotations

import pytest

from failfirst.peers import faults, matrix, sys_arq
from failfirst.peers.harness import Settings, run_one
from failfirst.peers.matrix import check_row

SMALL = Settings(jobs=4, workers=2, work_s=0.3, kills=1, seed=3, quiet_margin_s=4.0, timeout_s=90)


def test_arq_is_in_the_matrix() -> None:
    assert {sys_arq.Arq, sys_arq.ArqOneTry} <= set(matrix.ADAPTERS)
    assert matrix.select("arq") == [sys_arq.Arq, sys_arq.ArqOneTry]


@pytest.mark.services("redis")
def test_arq_runs_a_killed_job_again_once_its_in_progress_key_expired() -> None:
    row = run_one(sys_arq.Arq(), SMALL, faults.KillClaimed(SMALL))
    check_row(row)
    assert row["timeline"]["category"] == "completed"
    # Not before the key's time to live: arq's own guard against running a job twice.
    assert row["rerun_s_min"] >= sys_arq.JOB_TIMEOUT_S + sys_arq.IN_PROGRESS_EXTRA_S - 0.5


@pytest.mark.services("redis")
def test_arq_with_one_try_records_the_killed_job_failed() -> None:
    row = run_one(sys_arq.ArqOneTry(), SMALL, faults.KillClaimed(SMALL))
    check_row(row)
    assert row["timeline"]["category"] == "failed" and row["timeline"]["reported"] == "failed"
    assert row["killed_jobs_rerun"] == 0
