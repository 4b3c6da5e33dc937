"""Faults as plug-ins: what the harness does to a run, one class per column of the matrix.

A :class:`Fault` is made fresh for every run (``Fault(settings)``) and the harness
calls its hooks in this order:

1. ``applies(adapter)`` (or ``why_not``): whether the configuration has the fault at
   all; when it does not, the matrix's cell says n/a with the reason;
2. ``prepare(run, adapter)`` before the adapter's setup: it may change endpoints or the
   environment (a private server, a proxy) and choose its targets from its seeded source;
3. ``worker_env(run)``: what the task body must know (the targeted jobs);
4. ``step(run, rows, commands)`` once per poll: decides, performs and returns its kills
   (or other actions) as :class:`~failfirst.peers.judge.Kill` rows;
5. ``done(run, rows)``: whether its actions are over (the run may then end when every
   job finished);
6. ``struck(kill, rows)`` after the run: the point each kill STRUCK, read from the
   ledger (the victim's last row of its job before the kill), never the intention;
7. ``finish(run)`` after the workers are gone and before the judge, ``cleanup(run)``
   at the very end, whatever happened.

A result row needs at least one action, and every action's ``struck`` must equal its
``aim`` (:func:`failfirst.peers.matrix.check_row`): a fault that did not do what its
column says produced a failed run, not a result.

:data:`FAULTS` lists them in column order; another module registers more with
:func:`failfirst.peers.faults.register` (the deploy faults: ``sigterm``, ``restart``, ``cut``, ``long-task``).

The kill points. A targeted job (a seeded choice, first attempt only, named to the
task body through ``FAILFIRST_PEERS_HOLD``) writes its point's row and holds there
(:func:`failfirst.peers.ledger.hold`), so the SIGKILL lands exactly at the point:

- ``kill@claimed``: the process executing the job, after its ``started`` row and before
  its effect;
- ``kill@effect``: the process executing the job, after its effect (``finished``) and
  before the task returns, so the system has not acknowledged it;
- ``kill@backoff``: every worker process, while a job that failed its first attempt
  waits out its retry's backoff (configurations with a retry that waits only);
- ``kill@prefetched``: every worker process, while a worker holds jobs it reserved from
  the broker and has not started (systems that prefetch only).

The clock-based schedule of the first version is gone: its kills nearly always struck
``claimed`` (a job spends its time there) and almost never the milliseconds after an
effect, which is the point that tells at-least-once from exactly-once.
"""

from __future__ import annotations

import json
import random
import time
from typing import ClassVar

from failfirst.peers import ledger
from failfirst.peers.harness import (
    Adapter,
    Command,
    PeersInputError,
    RunContext,
    Settings,
    job_ids,
    kill_process,
)
from failfirst.peers.judge import Kill
from failfirst.peers.ledger import COMMITTING, FINISHED, RETRY, STARTED, Row

#: The point a ledger row announces.
POINT_OF_KIND = {STARTED: "claimed", FINISHED: "effect", COMMITTING: "effect", RETRY: "backoff"}
#: A retry is killed this long after its ``retry`` row: the system has recorded the retry
#: by then, and every backoff here is at least a second.
RETRY_SETTLE_S = 0.3
#: A prefetch kill waits at most this long for the broker to show reserved jobs.
PREFETCH_WAIT_S = 5.0


class Fault:
    """One column of the matrix. Subclasses set ``name`` and ``description`` and the hooks."""

    name: ClassVar[str] = ""
    #: One line: what the fault does.
    description: ClassVar[str] = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rng = random.Random(f"{self.name}:{settings.seed}")
        self.adapter: Adapter | None = None

    @classmethod
    def why_not(cls, adapter: type[Adapter] | Adapter) -> str:
        """Why the fault does not apply to ``adapter`` ("" when it does)."""
        return ""

    @classmethod
    def applies(cls, adapter: type[Adapter] | Adapter) -> bool:
        return not cls.why_not(adapter)

    @classmethod
    def at_ci_size(cls, adapter: type[Adapter] | Adapter) -> bool:
        """Whether ``make peers`` (CI size) runs this cell; ``make peers-full`` runs them all."""
        return True

    @classmethod
    def extra_s(cls, adapter: type[Adapter] | Adapter) -> float:
        """Seconds a run of this cell may take beyond the usual bound (a deliberately long task)."""
        return 0.0

    def prepare(self, run: RunContext, adapter: Adapter) -> None:
        self.adapter = adapter

    def worker_env(self, run: RunContext) -> dict[str, str]:
        return {}

    def step(self, run: RunContext, rows: list[Row], commands: list[Command]) -> list[Kill]:
        return []

    def done(self, run: RunContext, rows: list[Row]) -> bool:
        return True

    def busy(self, run: RunContext, rows: list[Row]) -> bool:
        """Whether the run must go on although the ledger is quiet: an action under way, or
        a system's own delay after it that the quiet period does not cover."""
        return False

    def struck(self, kill: Kill, rows: list[Row]) -> str:
        return kill.aim

    def finish(self, run: RunContext) -> None:
        """After the workers are gone, before the judge reads the system's state."""

    def cleanup(self, run: RunContext) -> None:
        """At the very end, whatever happened."""


#: Every fault, in the matrix's column order (name -> class).
FAULTS: dict[str, type[Fault]] = {}


def register(fault: type[Fault]) -> type[Fault]:
    """Add ``fault`` to :data:`FAULTS` (a class decorator); a name is registered once."""
    assert fault.name and fault.name not in FAULTS, fault.name
    FAULTS[fault.name] = fault
    return fault


def last_row_before(rows: list[Row], job: str, t_s: float, pid: int | None = None) -> Row | None:
    """The last row of ``job`` (written by ``pid`` when given) before ``t_s``."""
    found = None
    for r in rows:
        if r.job == job and r.t_s <= t_s and (pid is None or r.pid == pid):
            found = r
    return found


class KillAtPoint(Fault):
    """SIGKILL at a named point: targeted jobs hold there until the harness strikes."""

    point: ClassVar[str] = ""
    #: Kill every worker command (a host or container dying), not only the job's process.
    whole: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.targets: dict[str, str] = {}
        self.struck_jobs: set[str] = set()

    def kind(self, adapter: Adapter) -> str:
        """The ledger kind the adapter's task body writes at this point."""
        return STARTED

    def count(self) -> int:
        return self.settings.kills

    def candidates(self) -> list[str]:
        return job_ids(self.settings)

    def prepare(self, run: RunContext, adapter: Adapter) -> None:
        super().prepare(run, adapter)
        chosen = self.rng.sample(self.candidates(), min(self.count(), len(self.candidates())))
        self.targets = {job: self.kind(adapter) for job in sorted(chosen)}

    def worker_env(self, run: RunContext) -> dict[str, str]:
        return {ledger.ENV_HOLD: json.dumps(self.targets, sort_keys=True)}

    def ready(self, run: RunContext, row: Row, rows: list[Row], now_s: float) -> bool:
        """Whether to strike now, the target's row being ``row``."""
        return True

    def evidence(self, run: RunContext, rows: list[Row]) -> str:
        """What the fault read from the system just before it strikes (kept in the Kill)."""
        return ""

    def step(self, run: RunContext, rows: list[Row], commands: list[Command]) -> list[Kill]:
        kills = []
        for job, kind in self.targets.items():
            if job in self.struck_jobs:
                continue
            row = next((r for r in rows if r.job == job and r.kind == kind), None)
            if row is None or not self.ready(run, row, rows, time.time()):  # real-time: the ledger's clock
                continue
            detail = self.evidence(run, rows)
            t_s = time.time()  # real-time: the ledger's clock
            if self.whole:
                for command in commands:
                    command.kill()  # the supervisor starts it again
            else:
                kill_process(row.pid, commands)
            self.struck_jobs.add(job)
            kills.append(Kill(t_s, row.pid, job, aim=self.point, detail=detail))
        return kills

    def done(self, run: RunContext, rows: list[Row]) -> bool:
        return len(self.struck_jobs) == len(self.targets)

    def struck(self, kill: Kill, rows: list[Row]) -> str:
        row = last_row_before(rows, kill.job, kill.t_s, None if self.whole else kill.pid)
        return POINT_OF_KIND.get(row.kind, row.kind) if row is not None else "before the job started"


@register
class KillClaimed(KillAtPoint):
    name = "kill@claimed"
    description = "SIGKILL the process executing a job after it started and before its effect"
    point = "claimed"


@register
class KillEffect(KillAtPoint):
    name = "kill@effect"
    description = ("SIGKILL the process executing a job after its effect and before the task "
                   "returns (the system has not acknowledged it)")
    point = "effect"

    def kind(self, adapter: Adapter) -> str:
        return adapter.effect_kind


@register
class KillBackoff(KillAtPoint):
    name = "kill@backoff"
    description = ("SIGKILL every worker process while a job that failed its first attempt "
                   "waits out its retry's backoff")
    point = "backoff"
    whole = True

    @classmethod
    def why_not(cls, adapter: type[Adapter] | Adapter) -> str:
        return adapter.no_backoff

    def kind(self, adapter: Adapter) -> str:
        return RETRY

    def count(self) -> int:
        return 1

    def ready(self, run: RunContext, row: Row, rows: list[Row], now_s: float) -> bool:
        return now_s - row.t_s >= RETRY_SETTLE_S

    def struck(self, kill: Kill, rows: list[Row]) -> str:
        row = last_row_before(rows, kill.job, kill.t_s)
        if row is None:
            return "before the job started"
        if row.kind == RETRY and kill.t_s - row.t_s < RETRY_SETTLE_S:
            return "before the retry was recorded"
        return POINT_OF_KIND.get(row.kind, row.kind)


@register
class KillPrefetched(KillAtPoint):
    name = "kill@prefetched"
    description = ("SIGKILL every worker process while a worker holds jobs it reserved from the "
                   "broker and has not started")
    point = "prefetched"
    whole = True

    @classmethod
    def why_not(cls, adapter: type[Adapter] | Adapter) -> str:
        return adapter.no_prefetch

    def count(self) -> int:
        return 1

    def candidates(self) -> list[str]:
        # One of the first jobs delivered (the queues are FIFO): it holds at ``started``
        # while its worker's reservations wait behind it.
        return job_ids(self.settings)[:self.settings.workers]

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.delivered = 0

    def ready(self, run: RunContext, row: Row, rows: list[Row], now_s: float) -> bool:
        # Strike once the broker shows more jobs delivered than the ledger shows started, or
        # when the target has held PREFETCH_WAIT_S (the kill then struck "nothing reserved").
        assert self.adapter is not None
        self.delivered = self.settings.jobs - self.adapter.queued(run)  # delivered by now, at least
        started = len({r.job for r in rows if r.kind == STARTED})
        return self.delivered > started or now_s - row.t_s >= PREFETCH_WAIT_S

    def evidence(self, run: RunContext, rows: list[Row]) -> str:
        return str(self.delivered)

    def struck(self, kill: Kill, rows: list[Row]) -> str:
        # Delivered before the kill (read from the broker just before it) minus the jobs the
        # ledger shows started before it: jobs reserved and not started, at least.
        started = {r.job for r in rows if r.kind == STARTED and r.t_s <= kill.t_s}
        reserved = int(kill.detail) - len(started)
        return "prefetched" if reserved > 0 else "nothing reserved"


def select(names: str | None) -> list[type[Fault]]:
    """The faults named in ``names`` (comma-separated), in column order; all when None."""
    if names is None:
        return list(FAULTS.values())
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in FAULTS]
    if unknown or not wanted:
        raise PeersInputError(f"--faults: unknown {', '.join(unknown) or '(none given)'}; "
                              f"choose from {', '.join(FAULTS)}")
    return [f for n, f in FAULTS.items() if n in wanted]

