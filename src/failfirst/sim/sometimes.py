""""Sometimes" assertions more than one scenario makes: each a predicate on an explored
run's history (see :class:`failfirst.sim.scenario.Sometimes`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from failfirst.sim.scenario import Sometimes

History = list[dict[str, Any]]


def retry_refused_by_budget(events: History) -> bool:
    """The retry budget had no token left and a retry was refused, never sent."""
    return any(e["kind"] == "refused" and e.get("attempted") == "call" for e in events)


@dataclass(frozen=True)
class ClaimedAgainAfter:
    """A job had an event of ``kind`` (its worker crashed, its acknowledgement was lost)
    and was then claimed again. A class, not a closure: parallel explorers pickle the
    tallies that hold it."""

    kind: str

    def __call__(self, events: History) -> bool:
        marked: set[int] = set()
        for e in events:
            if e["kind"] == self.kind and e["job"] is not None:
                marked.add(e["job"])
            elif e["kind"] == "claim" and e["job"] in marked:
                return True
        return False


BUDGET_REFUSED_A_RETRY = Sometimes("a retry refused by the budget", retry_refused_by_budget)
CRASHED_JOB_TRIED_AGAIN = Sometimes("a crashed worker's job tried again", ClaimedAgainAfter("crash"))
#: A commit's acknowledgement was lost and the job claimed again: the redelivery of a job
#: whose worker believes it done (the double charge waiting to happen).
REDELIVERED_AFTER_A_LOST_ACK = Sometimes("redelivered after a lost acknowledgement",
                                         ClaimedAgainAfter("lost_ack"))
