"""The judge: one category per job, from the ledger and the system's public state only.

Categories (each job gets exactly one):

- ``duplicated``: more than one ``finished`` row: the work was done twice;
- ``completed``: exactly one ``finished`` row;
- ``failed``: no ``finished`` row, and the system reports the job failed or dead
  (a failed-job registry, a dead-letter queue, a FAILURE result): an operator sees it;
- ``stuck``: no ``finished`` row, and the system still holds the job after the quiet
  period: running, reserved, unacknowledged, or queued and never run again;
- ``lost``: no ``finished`` row, and the system reports the job nowhere.

Precedence, when two apply: the ledger wins over what the system says, because it
records what happened (a job the system calls failed after its work finished once is
``completed``; any second ``finished`` row is ``duplicated``, whatever the system says).
Among jobs that never finished, ``failed`` wins over ``stuck`` (an operator is told),
and ``lost`` is what is left.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from failfirst.peers.ledger import FINISHED, STARTED, Row

CATEGORIES = ("completed", "duplicated", "lost", "failed", "stuck")
#: What an adapter may report about a job that the ledger cannot show.
REPORTED_FAILED = "failed"
REPORTED_HELD = "held"
REPORTS = (REPORTED_FAILED, REPORTED_HELD)
#: Categories in precedence order: the first that applies wins.
PRECEDENCE = ("duplicated", "completed", "failed", "stuck", "lost")


def classify(finished_rows: int, reported: str | None) -> str:
    """The one category of a job with ``finished_rows`` rows and the system's report."""
    assert finished_rows >= 0 and reported in (None, *REPORTS), (finished_rows, reported)
    if finished_rows > 1:
        return "duplicated"
    if finished_rows == 1:
        return "completed"
    if reported == REPORTED_FAILED:
        return "failed"
    if reported == REPORTED_HELD:
        return "stuck"
    return "lost"


@dataclass(frozen=True)
class Kill:
    """One action of a fault (a SIGKILL, or another fault's action): when, which process,
    the job it aimed at, the point it aimed at and the point it STRUCK.

    ``struck`` is filled in after the run from the ledger (and, for a prefetch, the
    system's public state read just before the kill), never from the harness's intention:
    a kill whose ``struck`` differs from its ``aim`` makes the run a failed run.
    """

    t_s: float
    pid: int
    job: str
    aim: str = ""
    struck: str = ""
    #: What the fault saw when it acted (e.g. the jobs a worker had reserved).
    detail: str = ""
    #: What the fault did, as a job's timeline shows it (a deploy fault's SIGTERM, restart...).
    action: str = "SIGKILL"


@dataclass(frozen=True)
class Verdict:
    categories: dict[str, str]
    counts: dict[str, int]
    #: Seconds from each kill to the next ``started`` row of the job it held (None: never).
    rerun_s: list[float | None]
    #: Jobs the system reported failed although their work finished once (completed wins).
    reported_failed_but_finished: int

    def to_json(self) -> dict[str, Any]:
        runs = [r for r in self.rerun_s if r is not None]
        return {
            **self.counts,
            "rerun_s_max": round(max(runs), 3) if runs else None,
            "rerun_s_min": round(min(runs), 3) if runs else None,
            "killed_jobs_rerun": len(runs),
            "reported_failed_but_finished": self.reported_failed_but_finished,
        }


def judge(job_ids: Sequence[str], rows: Iterable[Row], reported: Mapping[str, str],
          kills: Sequence[Kill] = ()) -> Verdict:
    """Judge every job in ``job_ids``. Rows of jobs not enqueued are a harness bug."""
    jobs = set(job_ids)
    assert len(jobs) == len(job_ids), "job ids are unique"
    rows = list(rows)
    unknown = {r.job for r in rows} - jobs
    assert not unknown, f"ledger rows for jobs never enqueued: {sorted(unknown)[:5]}"
    finished = Counter(r.job for r in rows if r.kind == FINISHED)
    categories = {job: classify(finished[job], reported.get(job)) for job in job_ids}
    counts = {c: 0 for c in CATEGORIES}
    for category in categories.values():
        counts[category] += 1
    assert sum(counts.values()) == len(job_ids)
    starts: dict[str, list[float]] = {}
    for r in rows:
        if r.kind == STARTED:
            starts.setdefault(r.job, []).append(r.t_s)
    rerun_s: list[float | None] = []
    for kill in kills:
        later = [t for t in starts.get(kill.job, []) if t > kill.t_s]
        rerun_s.append(min(later) - kill.t_s if later else None)
    misreported = sum(1 for job in job_ids
                      if finished[job] == 1 and reported.get(job) == REPORTED_FAILED)
    return Verdict(categories, counts, rerun_s, misreported)
