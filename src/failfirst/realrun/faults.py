"""Faults struck at a running fleet: plug-ins of one shape.

A fault is a subclass of :class:`Fault`: a ``name``, the stores it applies to, and a
``strike`` that hits the run once and says what it did (a :class:`Strike`), or
returns None when its target is not there yet (the driver looks again at its next
poll). A fault that lasts (a pause, a partition) says for how long, and the driver
calls its ``heal`` when that time is up; one that needs set-up (a network namespace)
does it in ``prepare`` and undoes it in ``close``. *When* a fault strikes — at seeded
points of the run's progress, or at a rate — is the driver's business, never the
fault's. A new kind of fault is a new subclass registered in :data:`FAULTS`.

The faults:

- ``sigkill``: a worker holding a lease is SIGKILLed and restarted (any store);
- ``terminate``: the server ends a worker's connection inside a transaction
  (``pg_terminate_backend``); the worker exits and is restarted (PostgreSQL);
- ``server_crash``: the postmaster of a *private* server is SIGKILLed with every
  backend, then restarted: crash recovery replays its write-ahead log, and every worker
  loses its connection and is restarted (PostgreSQL, a private server only);
- ``partition``: one worker runs in a network namespace joined to the server by a veth
  pair; while it holds a lease between transactions its link goes down for longer
  than the lease, then comes back: the zombie's late writes must be refused
  (PostgreSQL, a private server, and permission to make namespaces);
- ``pause``: the stand-in where namespaces are not permitted: the worker holding a
  lease is SIGSTOPped past its lease, then SIGCONTed (PostgreSQL);
- ``mixed``: each strike draws one of sigkill, terminate and (with a private server)
  server_crash.

Every fault strikes through :class:`Target`, the run's view for faults: its fleet, who
holds leases, the history, the store's URL and the private server.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from failfirst.realrun.fleet import Fleet, Route
from failfirst.store import pgtools
from failfirst.store.url import parse_store_url

#: How long a crashed server stays down before it is started again.
SERVER_DOWN_S = 0.2
#: The partitioned worker's network: a /24 of its own, host side .1, namespace side .2.
NET_PREFIX = "10.231.7"
#: The slot that a partition cuts off (it runs in the namespace from the start).
PARTITIONED_SLOT = "w1"


class FaultError(RuntimeError):
    """A fault could not be set up here (no namespaces, no private server)."""


@dataclass(frozen=True)
class Strike:
    """What one strike did."""

    kind: str
    #: The worker struck (its incarnation's name), if one was.
    worker: str | None = None
    #: A job it held then.
    job: int | None = None
    #: False when the strike found nothing to hit (a backend that had already gone).
    hit: bool = True
    #: A worker process died by SIGKILL.
    sigkilled: bool = False
    #: A lasting fault: heal after this many seconds.
    lasts_s: float | None = None
    #: The slot struck (for ``heal``).
    slot: str | None = None


class Target(Protocol):
    """The run, as a fault sees it."""

    fleet: Fleet
    #: The store's URL (PostgreSQL), or None for a SQLite file.
    url: str | None
    #: The private server of the run (``server_crash``, ``partition``), or None.
    server: pgtools.PrivateServer | None
    lease_s: float
    #: How long a lasting fault lasts (seconds).
    fault_s: float

    def holders(self) -> list[str]:
        """The slots whose current process holds a lease now."""

    def job_leased_by(self, worker: str) -> int | None: ...

    def log(self, actor: str, kind: str, job: int | None = None, **data: Any) -> None:
        """One event in the run's history (the driver's own record of a fault)."""

    def replace(self, slot: str, point: str, job: int | None = None) -> None:
        """The process of ``slot`` has ended: record its crash, start the next one."""

    def acted_after_heal(self, worker: str) -> bool:
        """Has ``worker`` written to the history since its fault healed (its late write:
        an effect, or a refusal of it)?"""

    def effects_written(self, job: int) -> bool:
        """Does ``job`` have an effect row (committed)?"""


class Fault:
    """One kind of fault. Subclasses set ``name`` and implement ``strike``.

    ``window``: strike only while a worker is between a job's committed effect and its
    completion (only a run without the idempotent commit boundary has such a moment:
    the one its negative control needs), and wait for that moment however long the run
    takes to offer it, never striking elsewhere."""

    name: ClassVar[str]
    #: The stores it applies to (``sqlite``, ``postgresql``).
    stores: ClassVar[frozenset[str]] = frozenset({"sqlite", "postgresql"})
    #: It needs a private server of the run's own (never the shared one).
    needs_server: ClassVar[bool] = False
    #: The workers it strikes lose their connection: the driver restarts them.
    breaks_connections: ClassVar[bool] = False

    def __init__(self, *, window: bool = False) -> None:
        self.window = window

    def _targets(self, target: Target, workers: list[str]) -> list[str]:
        """The workers (incarnation names) this fault may strike among ``workers``."""
        return [w for w in workers if _in_window(target, w)] if self.window else workers

    def prepare(self, target: Target) -> None:
        """Set-up before the fleet starts (a namespace). Default: none."""

    def strike(self, target: Target, rng: random.Random, *, insist: bool = False) -> Strike | None:
        """Strike once; None when there is nothing to strike yet. ``insist``: the strike
        is overdue; take any target rather than wait for the best one."""
        raise NotImplementedError

    @property
    def strikes_idle(self) -> bool:
        """Can an overdue strike always land, on a worker that holds nothing (so a run
        with planned strikes left is held open for them)? Default: no."""
        return False

    def heal(self, target: Target, strike: Strike) -> None:
        """End a lasting fault. Default: none."""

    def settled(self, target: Target, strike: Strike) -> bool:
        """After ``heal``: has the struck worker done what the fault is about (a zombie's
        late write)? The run does not end before: it waits for that event, never for a
        time. Default: at once."""
        return True

    def close(self, target: Target) -> None:
        """Undo ``prepare``. Default: none."""


class SigKill(Fault):
    name = "sigkill"

    @property
    def strikes_idle(self) -> bool:
        return not self.window  # a windowed kill needs a worker inside its window

    def strike(self, target: Target, rng: random.Random, *, insist: bool = False) -> Strike | None:
        # A kill of a process that holds nothing tests nothing: the victim is drawn among
        # the workers holding a lease now; an overdue kill takes any worker.
        pool = target.holders() or (sorted(target.fleet.workers) if insist and not self.window else [])
        if self.window:
            allowed = set(self._targets(target, [target.fleet.workers[s].name for s in pool]))
            pool = [s for s in pool if target.fleet.workers[s].name in allowed]
        if not pool:
            return None
        slot = rng.choice(pool)
        victim = target.fleet.kill(slot)
        held = target.job_leased_by(victim.name)
        target.replace(slot, "sigkill", held)
        return Strike(self.name, victim.name, held, sigkilled=True, slot=slot)


class Terminate(Fault):
    name = "terminate"
    stores = frozenset({"postgresql"})
    breaks_connections = True

    def strike(self, target: Target, rng: random.Random, *, insist: bool = False) -> Strike | None:
        backends = pgtools.worker_backends(_admin_url(target), ("idle in transaction", "active")) or []
        allowed = set(self._targets(target, [worker for _pid, worker, _ in backends]))
        backends = [b for b in backends if b[1] in allowed]
        if not backends:
            return None
        pid, worker, _state = backends[rng.randrange(len(backends))]
        done = pgtools.terminate_backend(_admin_url(target), pid)
        return Strike(self.name, worker, target.job_leased_by(worker), hit=done)


def _in_window(target: Target, worker: str) -> bool:
    """Is ``worker`` between a job's committed effect and its completion? (Its newest
    lease's job has its effect: the batch's effects are written, its completions not.)"""
    job = target.job_leased_by(worker)
    return job is not None and target.effects_written(job)


class ServerCrash(Fault):
    name = "server_crash"
    stores = frozenset({"postgresql"})
    needs_server = True
    breaks_connections = True

    def strike(self, target: Target, rng: random.Random, *, insist: bool = False) -> Strike | None:
        assert target.server is not None, "a server crash needs the run's private server"
        if self.window and not self._targets(target, [target.fleet.workers[s].name
                                                      for s in target.holders()]):
            return None
        target.server.crash()
        time.sleep(SERVER_DOWN_S)  # real-time: the server stays down a moment
        target.server.start()  # crash recovery replays the WAL
        return Strike(self.name)


def _admin_url(target: Target) -> str:
    """The store's URL as libpq takes it (without failfirst's own parameters)."""
    assert target.url is not None, "a PostgreSQL fault on a PostgreSQL store"
    return parse_store_url(target.url).conninfo


def _idle_holders(target: Target) -> list[str]:
    """Holders between transactions: a zombie, not a lock holder (its lease can expire
    and move on while it cannot speak)."""
    idle = {worker for _pid, worker, _ in pgtools.worker_backends(_admin_url(target), ("idle",)) or []}
    return [slot for slot in target.holders() if target.fleet.workers[slot].name in idle]


class Pause(Fault):
    name = "pause"
    stores = frozenset({"postgresql"})

    def strike(self, target: Target, rng: random.Random, *, insist: bool = False) -> Strike | None:
        pool = _idle_holders(target)
        if not pool:
            return None
        slot = rng.choice(pool)
        victim = target.fleet.signal(slot, signal.SIGSTOP)
        held = target.job_leased_by(victim.name)
        target.log(victim.name, "pause", held, point="sigstop")
        return Strike(self.name, victim.name, held, lasts_s=target.fault_s, slot=slot)

    def heal(self, target: Target, strike: Strike) -> None:
        assert strike.slot is not None
        # Recorded before the worker can act again: its late write comes after this event.
        target.log(strike.worker or "?", "heal", fault=self.name)
        target.fleet.signal(strike.slot, signal.SIGCONT)

    def settled(self, target: Target, strike: Strike) -> bool:
        return _zombie_acted(target, strike)


def _zombie_acted(target: Target, strike: Strike) -> bool:
    """The struck worker wrote again after the heal, or its process is gone (then it
    cannot)."""
    assert strike.slot is not None and strike.worker is not None
    current = target.fleet.workers[strike.slot]
    if current.name != strike.worker or current.proc.poll() is not None:
        return True
    return target.acted_after_heal(strike.worker)


@dataclass
class Netns:
    """A network namespace joined to the host by a veth pair (needs CAP_NET_ADMIN)."""

    name: str
    host_if: str
    ns_if: str
    host_ip: str = f"{NET_PREFIX}.1"
    ns_ip: str = f"{NET_PREFIX}.2"

    @classmethod
    def create(cls, tag: str) -> Netns:
        net = cls(f"ff{tag}", f"ffh{tag}", f"ffn{tag}")
        cmds = [
            ["ip", "netns", "add", net.name],
            ["ip", "link", "add", net.host_if, "type", "veth", "peer", "name", net.ns_if],
            ["ip", "link", "set", net.ns_if, "netns", net.name],
            ["ip", "addr", "add", f"{net.host_ip}/24", "dev", net.host_if],
            ["ip", "link", "set", net.host_if, "up"],
            ["ip", "netns", "exec", net.name, "ip", "addr", "add", f"{net.ns_ip}/24", "dev", net.ns_if],
            ["ip", "netns", "exec", net.name, "ip", "link", "set", net.ns_if, "up"],
            ["ip", "netns", "exec", net.name, "ip", "link", "set", "lo", "up"],
        ]
        try:
            for cmd in cmds:
                subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        except (subprocess.CalledProcessError, OSError) as exc:
            net.destroy()
            raise FaultError(f"network namespaces not permitted here: {exc}") from None
        return net

    def _link(self, state: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.name, "ip", "link", "set", self.ns_if, state],
                       check=True, capture_output=True, timeout=30)

    def cut(self) -> None:
        """Drop every packet between the namespace and the server: the link goes down."""
        self._link("down")

    def heal(self) -> None:
        self._link("up")

    def destroy(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)


def namespaces_permitted() -> str | None:
    """None when this process may create network namespaces; else why not."""
    if shutil.which("ip") is None:
        return "the ip command is missing"
    probe = f"ffprobe{os.getpid() % 100000}"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        return (proc.stderr.strip().splitlines() or ["ip netns add failed"])[0]
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)
    return None


class Partition(Fault):
    name = "partition"
    stores = frozenset({"postgresql"})
    needs_server = True

    def __init__(self, *, window: bool = False) -> None:
        super().__init__(window=window)
        self.netns: Netns | None = None

    def prepare(self, target: Target) -> None:
        problem = namespaces_permitted()
        if problem is not None:
            raise FaultError(f"partition: network namespaces not permitted here: {problem}")
        assert target.server is not None and target.url is not None
        self.netns = Netns.create(str(os.getpid() % 100000))
        target.server.allow_peer(self.netns.ns_ip, self.netns.host_ip)
        parsed = parse_store_url(target.url)
        url = parsed.conninfo.replace("127.0.0.1", self.netns.host_ip)
        if parsed.schema:
            url += ("&" if "?" in url else "?") + f"schema={parsed.schema}"
        target.fleet.routes[PARTITIONED_SLOT] = Route(self.netns.name, url)

    def strike(self, target: Target, rng: random.Random, *, insist: bool = False) -> Strike | None:
        assert self.netns is not None
        if PARTITIONED_SLOT not in _idle_holders(target):
            return None
        victim = target.fleet.workers[PARTITIONED_SLOT]
        held = target.job_leased_by(victim.name)
        self.netns.cut()
        target.log(victim.name, "partition", held)
        return Strike(self.name, victim.name, held, lasts_s=target.fault_s, slot=PARTITIONED_SLOT)

    def heal(self, target: Target, strike: Strike) -> None:
        assert self.netns is not None
        # Recorded before the worker can reach the server again: its late write comes after.
        target.log(strike.worker or "?", "heal", fault=self.name)
        self.netns.heal()

    def settled(self, target: Target, strike: Strike) -> bool:
        return _zombie_acted(target, strike)

    def close(self, target: Target) -> None:
        if self.netns is not None:
            self.netns.destroy()
            self.netns = None


class Mixed(Fault):
    """Each strike draws one kind: what ``make stress-pg`` runs (the network left alone)."""

    name = "mixed"
    stores = frozenset({"postgresql"})
    breaks_connections = True

    def strike(self, target: Target, rng: random.Random, *, insist: bool = False) -> Strike | None:
        kinds: list[Fault] = [SigKill(window=self.window), Terminate(window=self.window)] + (
            [ServerCrash(window=self.window)] if target.server else [])
        return rng.choice(kinds).strike(target, rng, insist=insist)


#: Every fault by name: the driver's ``fault=`` and ``make stress-pg``'s ``--fault``.
FAULTS: dict[str, type[Fault]] = {
    cls.name: cls for cls in (SigKill, Terminate, ServerCrash, Partition, Pause, Mixed)
}


def make(name: str | Fault) -> Fault:
    """A fresh fault of that kind (a fault may keep state between prepare and close); a
    fault given as an instance (one with options) is used as it is."""
    if isinstance(name, Fault):
        return name
    try:
        return FAULTS[name]()
    except KeyError:
        raise ValueError(f"fault: one of {', '.join(FAULTS)}, got {name!r}") from None
