"""Crashed for real on PostgreSQL: worker processes, a reaper process, and one kind of
fault injected while they drain the queue; judged afterwards by plain SQL.

Faults (``fault=``):

- ``sigkill``: a worker holding a lease is SIGKILLed and restarted;
- ``terminate``: the server ends a worker's connection in the middle of a transaction
  (``pg_terminate_backend`` on a backend that is ``idle in transaction`` or
  ``active``); the worker sees its connection gone, exits, and is restarted;
- ``server_crash``: the postmaster of a *private* server is SIGKILLed (every backend
  with it), then the server restarts and recovers from its WAL; every worker loses its
  connection and is restarted until the server answers again;
- ``partition``: one worker runs in a network namespace of its own, joined to the
  server by a veth pair; while it holds a lease its link goes down for longer than the
  lease (its packets are dropped), then comes back up: the zombie's late writes must
  be refused;
- ``pause``: the closest alternative where namespaces are not permitted: the worker
  holding a lease is SIGSTOPped past its lease, then SIGCONTed (labelled as such).

A worker that loses its connection exits with :data:`failfirst.realrun.process.EXIT_CONNECTION_LOST`
and is restarted as a new incarnation (a new lease owner name), like a killed one.
Every wait is bounded.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from failfirst.realrun.process import EXIT_CONNECTION_LOST, JOB_TYPE, STORE_URL_ENV, RealConfig, open_queue
from failfirst.store.postgresql import ACTOR_ENV
from failfirst.store.url import parse_store_url

FAULTS = ("sigkill", "terminate", "server_crash", "partition", "pause", "mixed")
#: Planned faults strike while this share of the jobs is claimed (see failfirst.realrun.stress).
FAULT_POINTS_SHARE = (0.02, 0.8)
MAX_FAULTS = 10_000
MAX_RESTARTS = 20_000
#: A worker that lost its connection is restarted after this long (the server may be down).
RESTART_DELAY_S = 0.5
POLL_S = 0.05
#: The partitioned worker's network: a /24 of its own, host side .1, namespace side .2.
NET_PREFIX = "10.231.7"


class PgStressError(RuntimeError):
    """The run itself broke (timeout, too many restarts)."""


@dataclass
class _Worker:
    slot: str
    incarnation: int
    proc: subprocess.Popen[bytes]
    log: str
    netns: str | None = None

    @property
    def name(self) -> str:
        return self.slot if self.incarnation == 1 else f"{self.slot}#{self.incarnation}"


@dataclass
class Netns:
    """A namespace joined to the host by a veth pair (needs CAP_NET_ADMIN)."""

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
            raise PgStressError(f"network namespaces not permitted here: {exc}") from None
        return net

    def cut(self) -> None:
        """Drop every packet between the namespace and the server: the link goes down."""
        subprocess.run(["ip", "netns", "exec", self.name, "ip", "link", "set", self.ns_if, "down"],
                       check=True, capture_output=True, timeout=30)

    def heal(self) -> None:
        subprocess.run(["ip", "netns", "exec", self.name, "ip", "link", "set", self.ns_if, "up"],
                       check=True, capture_output=True, timeout=30)

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


@dataclass
class _Fleet:
    url: str  # the full URL (children read it from their environment)
    guard: bool
    config: RealConfig
    logs: str
    workers: dict[str, _Worker] = field(default_factory=dict)
    reaper: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    exited_at: dict[str, float] = field(default_factory=dict)

    def spawn(self, slot: str, incarnation: int = 1, netns: Netns | None = None,
              url: str | None = None) -> _Worker:
        name = slot if incarnation == 1 else f"{slot}#{incarnation}"
        log = os.path.join(self.logs, f"{slot}.{incarnation}.log")
        argv = [sys.executable, "-m", "failfirst.realrun.process", "worker", "--db", "env", "--name", name,
                "--guard", "on" if self.guard else "off", *self.config.argv()]
        if netns is not None:
            argv = ["ip", "netns", "exec", netns.name, *argv]
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env={**os.environ, STORE_URL_ENV: url or self.url, ACTOR_ENV: name})
        worker = _Worker(slot, incarnation, proc, log, netns.name if netns else None)
        self.workers[slot] = worker
        return worker

    def spawn_reaper(self) -> None:
        self.reaper = subprocess.Popen(
            [sys.executable, "-m", "failfirst.realrun.process", "reaper", "--db", "env", "--name", "reaper",
             "--guard", "on" if self.guard else "off", *self.config.argv()],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, STORE_URL_ENV: self.url})

    def tend(self, netns: Netns | None, ns_url: str | None) -> int:
        """Restart every worker (and the reaper) that exited: connection lost, or killed.
        A worker that exits for any other reason breaks the run."""
        restarted = 0
        for slot, w in list(self.workers.items()):
            code = w.proc.poll()
            if code is None:
                continue
            if code not in (EXIT_CONNECTION_LOST, -signal.SIGKILL):
                with open(w.log, encoding="utf-8", errors="replace") as f:
                    tail = f.read()[-1500:]
                raise PgStressError(f"{w.name} exited with code {code}:\n{tail}")
            now = time.monotonic()  # real-time: the restart delay
            if code == EXIT_CONNECTION_LOST and now - self.exited_at.setdefault(slot, now) < RESTART_DELAY_S:
                continue
            self.exited_at.pop(slot, None)
            self.restarts += 1
            restarted += 1
            if self.restarts > MAX_RESTARTS:
                raise PgStressError(f"more than {MAX_RESTARTS} restarts")
            in_ns = w.netns is not None
            self.spawn(slot, w.incarnation + 1, netns if in_ns else None, ns_url if in_ns else None)
        if self.reaper is not None and self.reaper.poll() is not None:
            self.spawn_reaper()
        return restarted

    def stop(self) -> None:
        procs = [w.proc for w in self.workers.values()] + ([self.reaper] if self.reaper else [])
        for p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.terminate()
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10  # real-time: bounded
        for p in procs:
            try:
                p.wait(timeout=max(deadline - time.monotonic(), 0.01))  # real-time: bounded
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _connect(url: str):  # a short-lived admin connection; None while the server is down
    import psycopg

    try:
        return psycopg.connect(parse_store_url(url).conninfo, autocommit=True, connect_timeout=2)
    except psycopg.Error:
        return None


def _query(url: str, sql: str, params: tuple = ()) -> list[tuple] | None:
    import psycopg

    conn = _connect(url)
    if conn is None:
        return None
    try:
        with conn:
            conn.execute(f"SET search_path TO {parse_store_url(url).schema or 'failfirst'}")
            return conn.execute(sql, params).fetchall()
    except psycopg.Error:
        return None


def _log_event(url: str, actor: str, kind: str, job: int | None = None, **data: Any) -> None:
    """The parent's own record of a fault in the history (t from the server's clock)."""
    import json

    _query(url, 'INSERT INTO events (t, actor, job, kind, data) VALUES '
                "(extract(epoch FROM clock_timestamp()), %s, %s, %s, %s) RETURNING seq",
           (actor, job, kind, json.dumps(data, sort_keys=True)))


def run(url: str, *, jobs: int, workers: int, fault: str, guard: bool = True, seed: int = 0,
        faults_per_s: float = 0.5, batch: int = 16, lease_s: float = 1.0, heartbeat_s: float = 0.25,
        timeout_s: float = 600.0, server: Any = None, fault_s: float | None = None,
        work_s: float = 0.0, faults: int = 0) -> dict[str, Any]:
    """Drain ``jobs`` jobs with ``workers`` worker processes and a reaper process while
    ``fault`` strikes about ``faults_per_s`` times a second, or, with ``faults``, exactly
    that many times at seeded points of progress (so many jobs claimed: the same count
    on a fast machine as on a slow one); return the counts.
    ``server``: the private server (:class:`failfirst.store.pgtools.PrivateServer`) that
    ``server_crash`` crashes; ``fault_s``: how long a partition or pause lasts
    (default three leases)."""
    if fault not in FAULTS:
        raise ValueError(f"fault: one of {FAULTS}, got {fault!r}")
    if fault == "server_crash" and server is None:
        raise ValueError("server_crash needs a private server, never the shared one")
    fault_s = 3 * lease_s if fault_s is None else fault_s
    rng = random.Random(seed)
    config = RealConfig(lease_s=lease_s, heartbeat_s=heartbeat_s, batch=batch,
                        max_runtime_s=timeout_s + 60, work_s=work_s)
    queue = open_queue(url, guard, config, create=True)
    held = sum(queue.store.counts_by_state().values())
    if held:
        queue.store.close()
        raise ValueError(f"{parse_store_url(url).redacted}: already holds {held} jobs")
    queue.enqueue_batch(JOB_TYPE, [{"n": i} for i in range(jobs)], actor="client")
    queue.store.close()

    netns = ns_url = None
    if fault == "partition":
        netns = Netns.create(str(os.getpid() % 100000))
        parsed = parse_store_url(url)
        ns_url = parsed.conninfo.replace("127.0.0.1", netns.host_ip)
        if parsed.schema:
            ns_url += ("&" if "?" in ns_url else "?") + f"schema={parsed.schema}"
    fleet = _Fleet(url, guard, config, tempfile.mkdtemp(prefix="failfirst-pgstress-"))
    names = [f"w{i + 1}" for i in range(workers)]
    fired = 0
    hits = 0  # faults that struck a worker inside a transaction or holding a lease
    timeline: list[dict[str, Any]] = []
    started = time.monotonic()  # real-time: the run's own stopwatch
    next_fault_s = rng.uniform(0.5, 1.5) / max(faults_per_s, 1e-9) if not faults else math.inf
    fault_points = sorted(rng.uniform(*FAULT_POINTS_SHARE) * jobs for _ in range(faults))
    ongoing: tuple[str, float, _Worker] | None = None  # (kind, until, worker)
    healed_s = -math.inf  # the run ends no sooner than two leases after a heal (the zombie acts)
    try:
        fleet.spawn_reaper()
        for i, name in enumerate(names):
            in_ns = netns is not None and i == 0  # w1 is the worker behind the veth
            fleet.spawn(name, netns=netns if in_ns else None, url=ns_url if in_ns else None)
        for _ in range(int(timeout_s / POLL_S) + 1):
            now = time.monotonic() - started  # real-time
            if now > timeout_s:
                counts = _query(url, "SELECT state, count(*) FROM jobs GROUP BY state")
                raise PgStressError(f"timed out after {timeout_s:g} s: {counts}, {fired} faults, "
                                    f"{fleet.restarts} restarts")
            fleet.tend(netns, ns_url)
            if ongoing is not None and now >= ongoing[1]:
                kind, _, victim = ongoing
                if kind == "partition":
                    netns.heal()
                else:
                    victim.proc.send_signal(signal.SIGCONT)
                _log_event(url, victim.name, "heal" if kind == "partition" else "restart",
                           fault=kind)
                timeline.append({"t_s": round(now, 3), "what": "heal" if kind == "partition"
                                 else "SIGCONT", "worker": victim.name})
                ongoing = None
                healed_s = now
            rows = _query(url, "SELECT count(*) FILTER (WHERE state IN ('pending', 'leased')), "
                               "count(*) FILTER (WHERE state = 'pending') FROM jobs")
            if rows is not None and rows[0][0] == 0 and ongoing is None and now - healed_s > 2 * lease_s:
                break
            claimed = jobs - rows[0][1] if rows is not None else 0
            due = now >= next_fault_s or (fired < faults and claimed >= fault_points[fired])
            if ongoing is None and due and fired < MAX_FAULTS and (
                    fault != "partition" or fired == 0):
                result = _strike(fault, url, fleet, names, rng, server, netns)
                if result is not None:
                    fired += 1
                    hits += result["hit"]
                    timeline.append({"t_s": round(now, 3), **{k: v for k, v in result.items()
                                                              if k != "victim"}})
                    if fault in ("partition", "pause"):
                        ongoing = (fault, now + fault_s, result["victim"])
                    if not faults:
                        next_fault_s = now + rng.expovariate(faults_per_s)
            # While planned faults wait, look often: a short run must not slip past them.
            time.sleep(POLL_S if fired >= faults else POLL_S / 5)  # real-time: the parent polls
        elapsed_s = time.monotonic() - started  # real-time
    finally:
        fleet.stop()
        if netns is not None:
            netns.destroy()
        shutil.rmtree(fleet.logs, ignore_errors=True)
    refused = _query(url, "SELECT count(*) FROM events WHERE kind = 'refused'")
    return {"fault": fault, "guard": "on" if guard else "off", "jobs": jobs, "workers": workers,
            "faults": fired, "hits": hits, "restarts": fleet.restarts,
            "refused_writes": refused[0][0] if refused else None,
            "elapsed_s": round(elapsed_s, 3), "lease_s": lease_s, "timeline": timeline,
            "db": parse_store_url(url).redacted}


def _strike(fault: str, url: str, fleet: _Fleet, names: list[str], rng: random.Random,
            server: Any, netns: Netns | None) -> dict[str, Any] | None:
    """Inject one fault; None when its target is not there yet (try again next poll)."""
    if fault == "mixed":  # the CI run: every fault that leaves the network alone, drawn
        fault = rng.choice(["sigkill", "terminate"] + (["server_crash"] if server else []))
    holders = _query(url, "SELECT DISTINCT lease_owner FROM jobs WHERE state = 'leased'") or []
    owners = {r[0] for r in holders}
    if fault in ("sigkill", "pause", "partition"):
        pool = [n for n in names if fleet.workers[n].name in owners]
        if fault == "partition":
            pool = [n for n in pool if n == names[0]]
        if fault != "sigkill":
            # A zombie, not a lock holder: strike while the victim has no transaction open
            # (between its claim and its commit), so its lease can expire and move on.
            idle = _query(url, "SELECT application_name FROM pg_stat_activity "
                               "WHERE datname = current_database() AND application_name LIKE 'failfirst:w%%' "
                               "AND state = 'idle'") or []
            idle_names = {r[0].split(":", 1)[1] for r in idle}
            pool = [n for n in pool if fleet.workers[n].name in idle_names]
        if not pool:
            return None
        victim = fleet.workers[rng.choice(pool)]
        job = _query(url, "SELECT min(id) FROM jobs WHERE state = 'leased' AND lease_owner = %s",
                     (victim.name,))
        held = job[0][0] if job else None
        if fault == "sigkill":
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()
            _log_event(url, victim.name, "crash", held, point="sigkill")
        elif fault == "pause":
            victim.proc.send_signal(signal.SIGSTOP)
            _log_event(url, victim.name, "pause", held, point="sigstop")
        else:
            assert netns is not None
            netns.cut()
            _log_event(url, victim.name, "partition", held)
        return {"what": fault, "worker": victim.name, "job": held, "hit": True, "victim": victim}
    if fault == "terminate":
        rows = _query(url, "SELECT pid, state FROM pg_stat_activity WHERE datname = current_database() "
                           "AND application_name LIKE 'failfirst:w%%' AND pid <> pg_backend_pid() "
                           "AND state IN ('idle in transaction', 'active') AND xact_start IS NOT NULL")
        if not rows:
            return None
        pid, state = rows[rng.randrange(len(rows))]
        done = _query(url, "SELECT pg_terminate_backend(%s)", (pid,))
        return {"what": "pg_terminate_backend", "backend": pid, "state": state,
                "hit": bool(done and done[0][0])}
    assert fault == "server_crash"
    server.crash()
    time.sleep(0.2)  # real-time: the server stays down a moment
    server.start()  # crash recovery replays the WAL
    return {"what": "server crash (SIGKILL of the postmaster) and restart", "hit": True}


def describe(r: dict[str, Any]) -> str:
    return (f"{r['fault']} x{r['faults']} ({r['hits']} hits), guard {r['guard']}: {r['jobs']} jobs, "
            f"{r['workers']} workers, {r['restarts']} restarts, {r['refused_writes']} refused writes, "
            f"{r['elapsed_s']:g} s")


def main(argv: list[str] | None = None) -> int:
    """``python -m failfirst.realrun.pgstress``: one run on a private server started into a folder
    (``make stress-pg``), judged by plain SQL; exit 1 when the verdict is not clean."""
    import argparse
    import json

    from failfirst.store import pgtools

    parser = argparse.ArgumentParser(prog="python -m failfirst.realrun.pgstress")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--fault", choices=FAULTS, default="mixed")
    parser.add_argument("--faults-per-s", type=float, default=0.5)
    parser.add_argument("--faults", type=int, default=0,
                        help="instead of a rate: exactly this many faults, at seeded points of progress")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--guard", choices=("on", "off"), default="on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folder", default="_build/pg-stress", help="the private server's folder")
    parser.add_argument("--timeout-s", type=float, default=900.0)
    args = parser.parse_args(argv)
    if not pgtools.binaries_available():
        print("pgstress: initdb/pg_ctl/postgres not on PATH", file=sys.stderr)
        return 2
    shutil.rmtree(args.folder, ignore_errors=True)
    os.makedirs(args.folder)
    server = pgtools.PrivateServer(os.path.abspath(args.folder)).init()
    server.start()
    try:
        with pgtools.throwaway_database(server.url, tag="ff_stress") as url:
            result = run(f"{url}?schema=stress", jobs=args.jobs, workers=args.workers, fault=args.fault,
                         guard=args.guard == "on", seed=args.seed, faults_per_s=args.faults_per_s,
                         batch=args.batch, timeout_s=args.timeout_s, server=server,
                         faults=args.faults)
            verdict = pgtools.judge_sql(url, "stress")
    finally:
        server.cleanup()
    result["verdict"] = {**verdict.__dict__, "ok": verdict.ok}
    result["faults_by_kind"] = dict(Counter(entry["what"] for entry in result["timeline"]
                                            if entry["what"] not in ("heal", "SIGCONT")))
    print(json.dumps({k: v for k, v in result.items() if k != "timeline"}, sort_keys=True))
    if args.guard == "on" and result["hits"] == 0:  # a clean verdict of a run nothing struck
        print("pgstress: no fault struck a worker; the run proves nothing", file=sys.stderr)
        return 1
    if result["faults"] < args.faults:
        print(f"pgstress: {result['faults']} of {args.faults} faults struck", file=sys.stderr)
        return 1
    return 0 if verdict.ok or args.guard == "off" else 1


__all__ = ["FAULTS", "run", "describe", "namespaces_permitted", "Netns", "PgStressError"]

if __name__ == "__main__":
    sys.exit(main())
