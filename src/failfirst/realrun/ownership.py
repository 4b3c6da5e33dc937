"""Who holds a store: the owner record a real run writes, and whether that owner lives.

A run opens with one event — ``start`` (``stress``) or ``resume`` — that names its
owner: host, process id, the process's start time (a reused pid is not taken for it)
and the boot it started in. It closes with an ``end`` event. A run that opened and
did not close is *open*; it is *live* while its owner's process lives:

- ``resume`` refuses a store held by a live run (its workers hold the leases, and
  writing ``crash`` events for them would invent crashes), and ``stress`` refuses any
  store that already holds a run;
- ``check`` reports the jobs of a live run as in progress, those of a dead one as
  unfinished (``resume`` finishes them), and only those of a closed run as lost.

A SQLite file is used on one host (its WAL needs shared memory), so the owner's
process can be looked up there. On PostgreSQL, whose workers and judges may sit on
other hosts, the run also holds an advisory lock for its whole life (the store's
``hold_run_lock``, see :class:`failfirst.store.interface.JobStore`), which the server drops
when the owner's connection ends, however it ends; that lock decides there.
"""

from __future__ import annotations

import os
import socket
from typing import Any

#: The events that open a run (with an ``owner``) and the one that closes it.
OPENING_KINDS = frozenset({"start", "resume"})
CLOSING_KIND = "end"


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """The process's start time, in clock ticks since boot (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == "Z":  # a zombie has ended; only its parent has not reaped it
        return None
    return int(fields[19])


def me() -> dict[str, Any]:
    """This process, as an owner record."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _start_ticks(pid), "boot": _boot_id()}


def lives(owner: Any) -> bool:
    """Does the process an owner record names still run? A record from another host,
    another boot, or one that is malformed names no process that could hold this
    store now (a SQLite file is written on one host)."""
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return False
    if owner.get("host") != socket.gethostname() or owner.get("boot") != _boot_id():
        return False
    pid = owner["pid"]
    if owner.get("started") is None:  # no /proc: the pid alone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return _start_ticks(pid) == owner["started"]


def open_run(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The event that opened the last run, if no ``end`` closed it; else None."""
    for event in reversed(events):
        if event["kind"] == CLOSING_KIND:
            return None
        if event["kind"] in OPENING_KINDS:
            return event
    return None


def describe(owner: Any) -> str:
    if not isinstance(owner, dict):
        return "an unknown process"
    return f"pid {owner.get('pid')} on {owner.get('host')}"
