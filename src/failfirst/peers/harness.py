"""One run of the crash experiment against one system in one configuration.

1. The adapter sets up its isolated names (its own queue names, Redis keys, vhost or
   database objects) and the harness enqueues ``jobs`` jobs through it.
2. The worker commands start, each in its own process group, each under
   ``timeout -s KILL`` so that no worker outlives a broken harness. A command that
   exits is restarted, the way a process supervisor (systemd ``Restart=always``)
   runs a worker in production; a system whose own parent process replaces a
   killed child (Celery's prefork pool, huey's consumer, RQ's work horses) does so
   itself.
3. The fault (:mod:`failfirst.peers.faults`) acts once per poll: a kill point's
   targeted job holds at its point (a ledger row, then a bounded wait) and the fault
   SIGKILLs the process executing it, or every worker process. After the run, each
   kill's STRUCK point is read from the ledger; a kill that did not strike where it
   aimed makes the result a failed run (:func:`failfirst.peers.matrix.check_row`).
4. The run ends when the ledger has been quiet for the quiet period (counted from the
   last row, kill, or restart plus the time the first start took): the system's own
   stated recovery delay (visibility timeout, heartbeat timeout, lease) plus a margin,
   so that a job the system would run again has had its chance (a job killed after its
   effect has its ``finished`` row already: only the quiet period tells). Then every
   worker is killed, the adapter reads the system's public state, and
   :mod:`failfirst.peers.judge` decides.

Every wait is bounded by ``timeout_s``; every child process is killed at the end,
whatever happens. The seed names the targeted jobs, not an exact history: the
operating system's scheduling is not seeded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

from failfirst.peers import ledger
from failfirst.peers.judge import Kill, judge
from failfirst.peers.ledger import FINISHED, Row

#: How often the harness reads the ledger, supervises and looks for a kill.
POLL_S = 0.02
#: A supervised command restarted more often than this means the run is broken.
MAX_RESTARTS = 50
#: Every worker command dies this long after it started, even if the harness died.
CHILD_MAX_RUNTIME_S = 900
#: Ledger rows kept in a result's timeline.
MAX_TIMELINE = 12


if TYPE_CHECKING:
    import failfirst.peers.faults


class PeersError(RuntimeError):
    """The run itself broke (a timeout, a service that is not there, a broken worker)."""


class PeersInputError(ValueError):
    """Bad input to the experiment (a number out of range, a selection that matches nothing)."""


@dataclass(frozen=True)
class Settings:
    """The same for every system: N jobs, the work time, worker processes, kills."""

    jobs: int = 12
    workers: int = 2
    work_s: float = 0.3
    kills: int = 2
    seed: int = 0
    #: Added to the system's own recovery delay to make the quiet period.
    quiet_margin_s: float = 3.0
    timeout_s: float = 120.0

    def __post_init__(self) -> None:
        assert 1 <= self.jobs <= 100_000 and 1 <= self.workers <= 16
        assert 0 < self.work_s <= 10 and 1 <= self.kills <= self.jobs
        assert 0 < self.quiet_margin_s and 0 < self.timeout_s


@dataclass
class RunContext:
    """What one run gives its adapter: a folder, the ledger, a unique name, the settings."""

    settings: Settings
    folder: str
    run_id: str

    @property
    def ledger(self) -> str:
        return os.path.join(self.folder, "ledger.db")

    def base_env(self) -> dict[str, str]:
        return {ledger.ENV_LEDGER: self.ledger, ledger.ENV_WORK_S: repr(self.settings.work_s)}


class Adapter:
    """One system in one configuration. Subclasses fill in the five verbs."""

    system = ""
    #: The distribution whose version the results name.
    package = ""
    broker = ""
    config = ""
    #: Seconds the system itself waits before a killed job can run again (its visibility
    #: timeout, heartbeat timeout or lease); 0 when it never does or does so at once.
    recovery_s = 0.0
    #: How a killed worker comes back: "its own parent" or "the supervisor (harness)".
    restart = "the supervisor (harness)"
    #: One sentence: the setting that matters and what the system's documentation says.
    note = ""
    #: The servers it needs (names in :data:`failfirst.peers.services.PORTS`).
    services: tuple[str, ...] = ()
    #: The ledger row its task body writes at the effect point (failfirst: ``committing``).
    effect_kind = FINISHED
    #: Why ``kill@backoff`` does not apply ("" when the configuration retries after a wait).
    no_backoff = "no retries configured"
    #: Why ``kill@prefetched`` does not apply ("" when workers reserve jobs ahead).
    no_prefetch = "a worker takes one job at a time: nothing is reserved ahead"

    def version(self) -> str:
        return metadata.version(self.package)

    def setup(self, run: RunContext) -> None:
        """Create the isolated queue, keys or tables; fail with PeersError if the service is down."""

    def enqueue(self, run: RunContext, job_ids: list[str]) -> None:
        raise NotImplementedError

    def worker_commands(self, run: RunContext) -> list[list[str]]:
        raise NotImplementedError

    def worker_env(self, run: RunContext) -> dict[str, str]:
        return {}

    def public_state(self, run: RunContext, job_ids: list[str]) -> dict[str, str]:
        """After the workers are gone: job id -> "failed" or "held" for what the system shows."""
        raise NotImplementedError

    def queued(self, run: RunContext) -> int:
        """Jobs still in the broker's queue, not delivered to any worker (prefetching systems)."""
        raise NotImplementedError

    def finished_rows(self, run: RunContext) -> list[Row]:
        """``finished`` rows kept outside the ledger file (failfirst's effects)."""
        return []

    def teardown(self, run: RunContext) -> None:
        """Remove what setup created."""


@dataclass
class Command:
    argv: list[str]
    env: dict[str, str]
    log_path: str
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    groups: list[int] = field(default_factory=list)

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["timeout", "-s", "KILL", str(CHILD_MAX_RUNTIME_S), *self.argv],
                env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.groups.append(self.proc.pid)

    def kill(self) -> None:
        # Children that left our process group first (RQ's work horse), then the groups.
        for pid in _descendants(set(self.groups)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)  # real-time: bounded reap of the killed group


def _tail(path: str, chars: int = 1500) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()[-chars:].strip()
    except OSError:
        return ""


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _ours(pid: int, commands: list[Command]) -> bool:
    """Only a descendant of a worker command we started is ever signalled (some systems,
    RQ's work horse for one, move their children to a process group of their own)."""
    roots = {g for c in commands for g in c.groups}
    for _ in range(32):  # bounded: process trees here are a few levels deep
        if pid in roots:
            return True
        parent = _parent(pid)
        if parent is None or parent <= 1:
            return False
        pid = parent
    return False


def _descendants(roots: set[int]) -> list[int]:
    """Every live process below ``roots`` (one scan of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found, todo = [], list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def job_ids(settings: Settings) -> list[str]:
    """The run's job ids, the same for every system: ``j0000``, ``j0001``, ..."""
    return [f"j{i:04d}" for i in range(settings.jobs)]


def run_one(adapter: Adapter, settings: Settings, fault: failfirst.peers.faults.Fault, *,
            keep: str | None = None) -> dict[str, Any]:
    """Run ``adapter`` once under ``fault`` (made for ``settings``); return the result row.
    ``keep``: a folder for the ledger and logs."""
    if not fault.applies(adapter):
        raise PeersError(f"{fault.name} does not apply to {adapter.system} {adapter.config}: "
                         f"{fault.why_not(adapter)}")
    folder = keep or tempfile.mkdtemp(prefix="failfirst-peers-")
    os.makedirs(folder, exist_ok=True)
    if os.path.exists(os.path.join(folder, "ledger.db")):
        raise PeersError(f"{folder}: holds a ledger already; give a new folder")
    run = RunContext(settings, folder, f"ffp{os.getpid()}s{settings.seed}{random.Random().randrange(10**6)}")
    ledger.create(run.ledger)
    commands: list[Command] = []
    try:
        fault.prepare(run, adapter)
        adapter.setup(run)
        jobs = job_ids(settings)
        adapter.enqueue(run, jobs)
        env = {**os.environ, **run.base_env(), **adapter.worker_env(run), **fault.worker_env(run)}
        for i, argv in enumerate(adapter.worker_commands(run)):
            commands.append(Command(argv, env, os.path.join(folder, f"worker{i}.log")))
            commands[-1].start()
        kills, elapsed_s = _drive(adapter, fault, settings, run, commands, jobs)
        for command in commands:
            command.kill()
        fault.finish(run)
        rows = _merged(ledger.read(run.ledger), adapter.finished_rows(run))
        kills = [dataclasses.replace(k, struck=fault.struck(k, rows)) for k in kills]
        reported = adapter.public_state(run, jobs)
        verdict = judge(jobs, rows, reported, kills)
    finally:
        for command in commands:
            command.kill()
        try:
            adapter.teardown(run)
        finally:
            try:
                fault.cleanup(run)
            finally:
                if keep is None:
                    shutil.rmtree(folder, ignore_errors=True)
    row: dict[str, Any] = {
        "system": adapter.system, "version": adapter.version(), "config": adapter.config,
        "broker": adapter.broker, "fault": fault.name, "jobs": settings.jobs, "kills": len(kills),
        "struck": [{"job": k.job, "aim": k.aim, "struck": k.struck, "pid": k.pid, "detail": k.detail,
                    "action": k.action}
                   for k in kills],
        **{c: verdict.counts[c] for c in ("completed", "duplicated", "lost", "failed", "stuck")},
        "categories": {k.job: verdict.categories[k.job] for k in kills},
        "seed": settings.seed, "workers": settings.workers, "work_s": settings.work_s,
        "quiet_s": adapter.recovery_s + settings.quiet_margin_s, "recovery_s": adapter.recovery_s,
        "restart": adapter.restart,
        "restarts": sum(c.restarts for c in commands), "elapsed_s": round(elapsed_s, 3),
        **{k: v for k, v in verdict.to_json().items() if k not in verdict.counts},
        "timeline": _timeline(rows, kills, verdict.categories, reported),
    }
    assert sum(row[c] for c in ("completed", "duplicated", "lost", "failed", "stuck")) == row["jobs"]
    return row


def _drive(adapter: Adapter, fault: failfirst.peers.faults.Fault, settings: Settings, run: RunContext,
           commands: list[Command], job_ids: list[str]) -> tuple[list[Kill], float]:
    quiet_s = adapter.recovery_s + settings.quiet_margin_s
    kills: list[Kill] = []
    rows: list[Row] = []
    outside_seen = 0
    startup_s: float | None = None
    started_at = last_change = time.monotonic()  # real-time: the harness's stopwatch
    deadline = started_at + settings.timeout_s
    for _ in range(int(settings.timeout_s / POLL_S) + 1):  # bounded by the timeout
        now = time.monotonic()  # real-time: a real run's clock
        new = ledger.read(run.ledger, rows[-1].seq if rows else 0)
        outside = adapter.finished_rows(run)
        if (new or len(outside) != outside_seen) and startup_s is None:
            startup_s = now - started_at  # the first start took this long
        if new or len(outside) != outside_seen:
            rows.extend(new)
            outside_seen = len(outside)
            last_change = now
        every = _merged(rows, outside)
        finished = {r.job for r in every if r.kind == FINISHED}
        if not kills and len(finished) == len(job_ids) and fault.done(run, every):
            break  # a fault that never acts (it waits for nothing more)
        # Quiet only once the workers are up, and not while a fault is still at work.
        if rows and now - last_change >= quiet_s and not fault.busy(run, every):
            # A job killed after its effect has its finished row: only the quiet period
            # tells whether the system runs it again.
            break
        if now > deadline:
            raise PeersError(f"{adapter.system} {adapter.config}, {fault.name}: no end within "
                             f"{settings.timeout_s:g} s ({len(finished)} of {len(job_ids)} finished); "
                             f"worker log: {_tail(commands[0].log_path) if commands else ''}")
        for command in commands:  # the supervisor: a worker command that exits is restarted
            assert command.proc is not None
            if command.proc.poll() is not None:
                if command.restarts >= MAX_RESTARTS:
                    raise PeersError(f"{adapter.system}: a worker exited {MAX_RESTARTS} times: "
                                     f"{_tail(command.log_path)}")
                command.restarts += 1
                command.start()
                # The quiet period waits for the new process to start as the first did.
                last_change = max(last_change, now + (startup_s or 0.0))
        acted = fault.step(run, every, commands)
        if acted:
            kills.extend(acted)
            last_change = max(last_change, time.monotonic())  # real-time: the quiet starts after it
        time.sleep(POLL_S)  # real-time: the harness polls
    else:
        raise PeersError(f"{adapter.system}: the run did not end within {settings.timeout_s:g} s")
    return kills, time.monotonic() - started_at  # real-time: a real run's clock


def kill_process(pid: int, commands: list[Command]) -> bool:
    """SIGKILL ``pid`` if it descends from one of ``commands``; wait until it is dead."""
    if not _ours(pid, commands):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    _wait_dead(pid)
    return True


def _merged(rows: list[Row], outside: list[Row]) -> list[Row]:
    """The ledger's rows and the rows kept elsewhere, in time order."""
    return sorted(rows + outside, key=lambda r: (r.t_s, r.seq)) if outside else rows


def _wait_dead(pid: int, bound_s: float = 2.0) -> None:
    """A SIGKILLed process is gone within a moment; its parent may not have reaped it."""
    end = time.monotonic() + bound_s  # real-time: bounded
    while time.monotonic() < end:  # real-time: a real run's clock
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return
        time.sleep(0.005)  # real-time: a real run's clock


def _timeline(rows: list[Row], kills: list[Kill], categories: dict[str, str],
              reported: dict[str, str]) -> dict[str, Any] | None:
    """The first killed job's story, times relative to its kill."""
    if not kills:
        return None
    kill = kills[0]
    events: list[dict[str, Any]] = [
        {"t_s": round(r.t_s - kill.t_s, 3), "event": r.kind, "pid": r.pid}
        for r in rows if r.job == kill.job]
    events.append({"t_s": 0.0, "event": kill.action, "pid": kill.pid})  # at the point it struck
    events.sort(key=lambda e: (e["t_s"], e["event"] != kill.action))
    return {"job": kill.job, "events": events[:MAX_TIMELINE], "category": categories[kill.job],
            "reported": reported.get(kill.job), "struck": kill.struck}
