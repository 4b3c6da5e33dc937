"""The verdict on a store a real run used: ``failfirst check``, and the judgement that
ends every ``stress`` and ``resume``.

Everything comes from the store, never from a run's own counters: the tables and the
history in them, read in **one snapshot** (one read transaction; REPEATABLE READ on
PostgreSQL), so a store that a run is writing right now is judged as it was at one
instant (reading jobs, effects and events in separate statements once reported
thousands of INV_007 "violations" that never happened). ``check`` opens the store
read-only, whatever names it (``--db``, ``sqlite:PATH``, ``postgresql://``): it never
creates, migrates or writes; an older schema version is judged as it is.

A job that is not terminal is, depending on the run that holds it
(:mod:`failfirst.realrun.ownership`):

- *in progress* while that run is live;
- *unfinished* when the run was interrupted (``failfirst resume`` finishes it);
- *lost* only when the run ended and left it so.

Jobs a run planned but never enqueued (an enqueue interrupted by an older failfirst,
which enqueued in batches; today a run's claim and its whole enqueue are one
transaction) are counted apart.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from failfirst.processor.transitions import TERMINAL_STATES
from failfirst.proofs import checkers
from failfirst.realrun import ownership, where
from failfirst.store import JobStore

#: Violations listed in a result (all are counted).
MAX_LISTED_VIOLATIONS = 20
#: Malformed leases listed (all are counted).
MAX_LISTED_LEASES = 20
#: A lease ending later than this many of its run's leases from now, plus the slack, is
#: absurd: no heartbeat of a real run extends a lease further than one lease ahead.
ABSURD_LEASES_AHEAD = 10
ABSURD_SLACK_S = 60.0
#: The lease of real runs, when a history does not say which one its run used.
DEFAULT_LEASE_S = 2.0


def run_lease_s(events: list[dict[str, Any]]) -> float:
    """The lease of the last run that opened in this history (its start or resume event)."""
    for event in reversed(events):
        if event["kind"] in ownership.OPENING_KINDS and isinstance(event.get("lease_s"), int | float):
            return float(event["lease_s"])
    return DEFAULT_LEASE_S


def malformed_leases(jobs: list[Any], now_s: float, lease_s: float) -> list[dict[str, Any]]:
    """Leased jobs whose lease no reaper could ever end: no expiry, not a number, or
    absurdly far ahead. Each is a finding: ``resume`` refuses at once instead of waiting."""
    horizon_s = now_s + ABSURD_LEASES_AHEAD * lease_s + ABSURD_SLACK_S
    out = []
    for job in jobs:
        if job.state != "leased":
            continue
        expires = job.lease_expires_s
        if expires is None:
            why = "no lease expiry (NULL)"
        elif not isinstance(expires, int | float) or not math.isfinite(expires):
            why = f"a lease expiry that is not a finite number ({expires!r})"
        elif expires > horizon_s:
            why = f"a lease ending {expires - now_s:,.0f} s from now (its run's lease is {lease_s:g} s)"
        else:
            continue
        out.append({"job": job.id, "owner": job.lease_owner, "why": why})
    return out


def judge(store: JobStore, *, live: bool | None = None) -> dict[str, Any]:
    """The verdict on ``store``, read in one snapshot. ``live``: whether a live run holds
    the store (None: the owner record in the history decides)."""
    with store.snapshot():
        jobs = store.jobs()
        events = store.events()
        effects = store.effects()
        violations = checkers.check(events, store)
        now_s = store.clock.now_s()
    opened = ownership.open_run(events)
    if opened is None:
        run = "ended" if any(e["kind"] == ownership.CLOSING_KIND for e in events) else "none"
    else:
        alive = ownership.lives(opened.get("owner")) if live is None else live
        run = "live" if alive else "interrupted"
    states = Counter(job.state for job in jobs)
    not_terminal = sum(n for state, n in states.items() if state not in TERMINAL_STATES)
    planned = next((e.get("jobs") for e in events if e["kind"] == "start"), None)
    per_part = Counter((job_id, part) for job_id, part, _token, _amount in effects)
    by_invariant = Counter(v.invariant for v in violations)
    kinds = Counter(e["kind"] for e in events if e["kind"] in ("crash", "restart", "refused"))
    leases = malformed_leases(jobs, now_s, run_lease_s(events))
    return {
        "enqueued": len(jobs),
        "never_enqueued": max(planned - len(jobs), 0) if isinstance(planned, int) else 0,
        "succeeded": states["succeeded"],
        "dead": states["dead"],
        "lost": not_terminal if run in ("ended", "none") else 0,
        "unfinished": not_terminal if run == "interrupted" else 0,
        "in_progress": not_terminal if run == "live" else 0,
        "run": run,
        "duplicate_effects": sum(n - 1 for n in per_part.values() if n > 1),
        "kills": kinds["crash"],
        "restarts": kinds["restart"],
        "refused_writes": kinds["refused"],
        "malformed_leases": len(leases),
        "malformed_lease_examples": leases[:MAX_LISTED_LEASES],
        "violations": {inv: by_invariant[inv] for inv in sorted(by_invariant)},
        "violation_examples": [v.to_json() for v in violations[:MAX_LISTED_VIOLATIONS]],
    }


def check(db: str) -> dict[str, Any]:
    """``failfirst check``: judge the store ``db`` names (a SQLite path or a store URL),
    read-only."""
    db = where.resolved(db)
    store = where.open_existing(db, read_only=True)
    try:
        return {**judge(store, live=store.run_lock_held()), "db": where.shown(db),
                "resume": where.resume_command(db)}
    finally:
        store.close()


# -- what a person reads ------------------------------------------------------------


def _run_line(r: dict[str, Any]) -> str:
    finish = f" ({r['resume']} finishes it)" if r.get("resume") else ""
    return {"ended": "the run ended", "none": "no run recorded",
            "interrupted": "the run was interrupted" + finish,
            "live": "a live run holds it: its jobs are in progress"}[r["run"]]


def _jobs_line(r: dict[str, Any]) -> str:
    line = f"  {r['enqueued']} jobs, {r['succeeded']} succeeded, {r['dead']} dead"
    if r["in_progress"]:
        line += f", {r['in_progress']} in progress"
    if r["unfinished"]:
        line += f", {r['unfinished']} unfinished (resume finishes them; none is lost)"
    line += f", {r['lost']} lost"
    return line


def violation_lines(r: dict[str, Any]) -> list[str]:
    lines = []
    if r.get("never_enqueued"):
        lines.append(f"  never enqueued: {r['never_enqueued']} of the jobs the run planned "
                     "(its enqueue was interrupted)")
    if r.get("malformed_leases"):
        shown = ", ".join(f"job {m['job']} ({m['why']})" for m in r["malformed_lease_examples"][:3])
        lines.append(f"  malformed leases: {r['malformed_leases']} (no reaper can end them): {shown}")
    if not r["violations"]:
        lines.append("  every invariant holds (checked from one snapshot of the store)")
        return lines
    counts = ", ".join(f"{inv} x{n}" for inv, n in r["violations"].items())
    lines.append(f"  violations: {counts}")
    lines.extend(f"    {v['invariant']} job {v['job']}: {v['detail']}" for v in r["violation_examples"][:5])
    return lines


def describe_check(result: dict[str, Any], what: str = "check") -> str:
    """The human-readable summary of a ``check`` or ``resume`` result."""
    r = result
    head = f"{what} of {r['db']}: {_run_line(r)}"
    if what == "resume":
        head = (f"resume of {r['db']}: {r['resumed']} jobs left to do, {r['workers']} workers, "
                f"{r['elapsed_s']:g} s")
    return "\n".join([
        head,
        _jobs_line(r),
        f"  {r['kills']} crashes in the history ({r['restarts']} restarts)",
        f"  duplicate effects: {r['duplicate_effects']}",
        *violation_lines(r),
    ])


def _faults_line(r: dict[str, Any]) -> str:
    if r["fault"] == "sigkill":
        if r["kill_rate"]:
            return f"SIGKILLs at up to {r['kill_rate']:g}/s"
        if r["planned_faults"]:
            return f"{r['planned_faults']} SIGKILLs planned by progress"
        return "no faults"
    how = (f"at up to {r['fault_rate_per_s']:g}/s" if r["fault_rate_per_s"]
           else f"{r['planned_faults']} planned by progress")
    return f"{r['fault']} faults {how}"


def describe(result: dict[str, Any]) -> str:
    """The human-readable summary of a stress result."""
    r = result
    struck = ", ".join(f"{n} {kind}" for kind, n in sorted(r["faults_by_kind"].items())) or "none"
    return "\n".join([
        f"stress on {r['db']}: {r['workers']} workers, guard {r['guard']}, seed {r['seed']}, "
        f"{_faults_line(r)}, batch {r['batch']}",
        f"  {r['enqueued']} enqueued, {r['succeeded']} succeeded, {r['dead']} dead, {r['lost']} lost",
        f"  faults struck: {struck} ({r['struck_holding_job']} while their worker held a job); "
        f"{r['kills']} SIGKILLs ({r['restarts']} restarts); "
        f"{r['elapsed_s']:g} s, {r['jobs_per_s']} jobs/s",
        f"  duplicate effects: {r['duplicate_effects']}",
        *violation_lines(r),
    ])
