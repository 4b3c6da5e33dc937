"""A counterexample as a reader reads it: which call, which fault, which invariant.

:func:`timeline` keeps the events a reader of their own task needs (the claims, the
task's calls and what they applied, the faults, the acknowledgements, the retries)
and writes one line each, in simulated time.
"""

from __future__ import annotations

from typing import Any

_POINTS = {
    "request": "before its request",
    "reply": "after the service applied the request, before the task read the reply",
    "sql_commit": "before its SQL commit (the open transaction rolls back)",
    "sql_committed": "after its SQL commit, before the task went on",
    "claimed": "after the task returned, before the acknowledgement",
    "network": "on the network",
}


def _line(e: dict[str, Any], calls: dict[int, str], last_call: dict[str, str]) -> str | None:
    kind, actor, job = e["kind"], e["actor"], e["job"]
    if kind == "claim":
        return f"{actor} takes job {job}, {calls.get(job, '')} (attempt {e['attempt']})"
    if kind == "request":
        last_call[actor] = e["call"]
        return None
    if kind == "call":
        what = ("replayed the first answer (same idempotency key)" if e.get("replayed")
                else f"status {e['status']}")
        key = f" with key {e['key']}" if e.get("key") else ""
        return f"{actor} got {e['method']} {e['path']}{key}: {what}"
    if kind == "applied":
        return f"{actor} APPLIED {e['effect']} -> {e['ref']}"
    if kind in ("request_lost", "response_lost"):
        what = "the request is lost" if kind == "request_lost" else "the reply is lost"
        return f"FAULT {kind}: {e.get('call', '')}: {what}; the task will time out"
    if kind == "scripted":
        return f"SCRIPTED {e['answer']}: {e['call']} (the test scripted this answer)"
    if kind == "crash":
        where = _POINTS.get(e.get("point"), f"at {e.get('point')}")
        at_call = e.get("point") in ("request", "reply") and actor in last_call
        call = f" ({last_call[actor]})" if at_call else ""
        return f"FAULT crash: {actor} dies {where}{call}"
    if kind == "pause":
        where = _POINTS.get(e.get("point"), f"at {e.get('point')}")
        return f"FAULT pause: {actor} stalls {e.get('pause_s', 0):g} s {where}"
    if kind == "lost_ack":
        return f"FAULT lost_ack: {actor}'s acknowledgement of job {job} never reaches the queue"
    if kind == "sql_commit":
        rows = ", ".join(f"{t} {i}" for t, i in e["rows"])
        return f"{actor} commits its SQL transaction" + (f" (inserted {rows})" if rows else "")
    if kind == "task_error":
        then = "retry" if e["retry"] else "no retry: the task failed"
        return f"{actor}: the task raised {e['error']} ({then})"
    if kind == "task_end":
        return f"{actor}: the task returned {e['result']}"
    if kind == "complete":
        return f"{actor} acknowledges job {job}: succeeded"
    if kind == "retry":
        return f"{actor}: job {job} retries in {e.get('delay_s', 0):g} s"
    if kind == "dead":
        return f"{actor}: job {job} is dead-lettered ({e.get('reason', '')})"
    if kind in ("expire", "expire_dead"):
        if kind == "expire":
            return f"{actor}: the lease of job {job} expired; the job goes back to the queue"
        return f"{actor}: the lease of job {job} expired with its attempts spent: dead"
    if kind == "restart":
        return f"{actor} restarts"
    if kind == "refused":
        return f"{actor}: {e.get('attempted', 'a write')} refused ({e.get('reason', '')})"
    return None


def timeline(events: list[dict[str, Any]], calls: dict[int, str] | None = None) -> list[str]:
    """The reader's timeline of a run: ``t=  actor  what happened`` lines."""
    calls = calls or {}
    last_call: dict[str, str] = {}
    lines = []
    for e in events:
        text = _line(e, calls, last_call)
        if text is not None:
            lines.append(f"  t={e['t']:>7.2f}s  {text}")
    return lines
