""""Sometimes" assertions more than one scenario makes: each a predicate on an explored
run's history (see :class:`failfirst.sim.scenario.Sometimes`)."""

from __future__ import annotations

from typing import Any

from failfirst.sim.scenario import Sometimes


def retry_refused_by_budget(events: list[dict[str, Any]]) -> bool:
    """The retry budget had no token left and a retry was refused, never sent."""
    return any(e["kind"] == "refused" and e.get("attempted") == "call" for e in events)


def crashed_job_claimed_again(events: list[dict[str, Any]]) -> bool:
    """A worker crashed holding a job, and the job was claimed again."""
    crashed: set[int] = set()
    for e in events:
        if e["kind"] == "crash" and e["job"] is not None:
            crashed.add(e["job"])
        elif e["kind"] == "claim" and e["job"] in crashed:
            return True
    return False


BUDGET_REFUSED_A_RETRY = Sometimes("a retry refused by the budget", retry_refused_by_budget)
CRASHED_JOB_TRIED_AGAIN = Sometimes("a crashed worker's job tried again", crashed_job_claimed_again)
