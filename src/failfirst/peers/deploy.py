"""The faults a deploy brings, besides SIGKILL (issue 20, part B).

Each is a :class:`failfirst.peers.faults.Fault` registered into ``FAULTS``; each acts
once, on one targeted job (a seeded choice among the first jobs delivered), while that
job RUNS: the job holds at its ``started`` row on its first attempt (the ledger's
bounded hold), so the fault cannot miss the moment, and each action's struck point is
read from the ledger afterwards (``running``: the job's last row before the action
was its ``started`` row).

- ``sigterm``: what a deploy (Kubernetes, systemd) does to a worker: SIGTERM to the
  worker's main process while the job runs, then SIGKILL to every process of that
  worker still alive after the grace period (:data:`GRACE_S`; Kubernetes' default is
  30 s). The targeted job runs longer than the grace (it holds :data:`ledger.HOLD_S`).
  What the system does in between (a warm shutdown that waits, a cancellation that
  requeues, nothing) decides the job's fate.
- ``restart``: the broker or database, a private one the harness started
  (:mod:`failfirst.peers.private`), is restarted while the job runs; the job goes on
  (it holds :data:`SHORT_HOLD_S`) and finishes against the restarted server.
- ``cut``: the worker's connection to its broker is reset while the job runs: through
  a proxy the harness owns (:mod:`failfirst.peers.proxy`) for Redis and RabbitMQ, by
  ``pg_terminate_backend`` of the worker's own backends for PostgreSQL; the job goes
  on and finishes (and acknowledges) afterwards.
- ``long-task``: the job runs longer than the system's visibility timeout, stalled
  threshold or heartbeat timeout (:data:`THRESHOLDS`): does a second run start while
  the first one is still alive?

:data:`REMEDIES` holds, per fault and system, the setting or code change that makes a
cell clean (or "none: make the task idempotent") with the system's own documentation
and tracker, for the chapter to print next to the measured cells.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from typing import TYPE_CHECKING, Any, ClassVar

from failfirst.peers import ledger, private, services
from failfirst.peers.faults import Fault, job_ids, last_row_before, register
from failfirst.peers.judge import Kill
from failfirst.peers.ledger import STARTED, Row
from failfirst.peers.proxy import Proxy

if TYPE_CHECKING:
    from failfirst.peers.harness import Adapter, Command, RunContext

#: The grace period between SIGTERM and SIGKILL (Kubernetes: terminationGracePeriodSeconds,
#: 30 s by default; short here, and the targeted job runs longer).
GRACE_S = 2.0
#: How long the targeted job of ``restart`` and ``cut`` holds before it goes on: the fault
#: acts at the start of the hold, the job finishes (and acknowledges) after it.
SHORT_HOLD_S = 1.0
#: The struck point of every deploy fault: the job had started and not written its effect.
RUNNING = "running"
#: A long task runs this much longer than its system's threshold.
LONG_MARGIN_S = 2.0


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[19])


def _tree(root: int) -> list[int]:
    """``root`` and every live process below it (one scan of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _command_of(pid: int, commands: list[Command]) -> Command | None:
    """The worker command whose current process tree holds ``pid``."""
    for command in commands:
        if command.proc is not None and command.proc.poll() is None and pid in _tree(command.proc.pid):
            return command
    return None


def _worker_main(command: Command) -> int:
    """The worker's main process: the child of the ``timeout`` wrapper the harness starts."""
    assert command.proc is not None
    below = [p for p in _tree(command.proc.pid) if (_stat(p) or (0, 0))[0] == command.proc.pid]
    return below[0] if below else command.proc.pid


class WhileRunning(Fault):
    """Acts once, while a targeted job runs (it holds at ``started``, first attempt only)."""

    #: The targeted job holds this long (None: the ledger's default, longer than any grace).
    hold_s: ClassVar[float | None] = None

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.target = ""
        self.acted_at: float | None = None
        self.kill: Kill | None = None

    def prepare(self, run: RunContext, adapter: Adapter) -> None:
        super().prepare(run, adapter)
        # One of the first jobs delivered (the queues are FIFO): it starts early.
        self.target = self.rng.choice(job_ids(self.settings)[:max(1, self.settings.workers)])

    def worker_env(self, run: RunContext) -> dict[str, str]:
        env = {ledger.ENV_HOLD: json.dumps({self.target: STARTED})}
        if self.hold_s is not None:
            env[ledger.ENV_HOLD_S] = repr(self.hold_s)
        return env

    def step(self, run: RunContext, rows: list[Row], commands: list[Command]) -> list[Kill]:
        if self.kill is not None:
            return []
        row = next((r for r in rows if r.job == self.target and r.kind == STARTED), None)
        if row is None:
            return []
        kill = self.act(run, row, commands)
        if kill is not None:
            self.kill = kill
            return [kill]
        return []

    def act(self, run: RunContext, row: Row, commands: list[Command]) -> Kill | None:
        """Strike (or go on striking); the Kill row once the action is complete."""
        raise NotImplementedError

    def done(self, run: RunContext, rows: list[Row]) -> bool:
        return self.kill is not None

    def struck(self, kill: Kill, rows: list[Row]) -> str:
        last = last_row_before(rows, kill.job, kill.t_s, kill.pid)
        if last is None:
            return "before the job started"
        return RUNNING if last.kind == STARTED else f"after its {last.kind} row"


@register
class SigTerm(WhileRunning):
    name = "sigterm"
    description = (f"SIGTERM to the worker while a job runs, SIGKILL {GRACE_S:g} s later (a deploy's "
                   "grace period; the job runs longer)")

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._sent: tuple[float, float, int, list[tuple[int, int]]] | None = None

    def act(self, run: RunContext, row: Row, commands: list[Command]) -> Kill | None:
        now = time.monotonic()  # real-time: the grace period
        if self._sent is None:
            command = _command_of(row.pid, commands)
            if command is None:
                return None  # the worker is being restarted: the next poll finds it
            main = _worker_main(command)
            # Every process of this worker now, with its start time (a pid reused later is not it).
            victims = [(p, s[1]) for p in _tree(main) if (s := _stat(p)) is not None]
            t_s = time.time()  # real-time: the ledger's clock
            with contextlib.suppress(ProcessLookupError):
                os.kill(main, signal.SIGTERM)
            self._sent = (now, t_s, main, victims)
            return None
        sent_at, t_s, main, victims = self._sent
        if now - sent_at < GRACE_S:
            return None
        alive = [p for p, started in victims if (s := _stat(p)) is not None and s[1] == started]
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        ended = ("exited within the grace period" if not alive
                 else f"SIGKILLed after {GRACE_S:g} s ({len(alive)} process(es) left)")
        return Kill(t_s, row.pid, row.job, aim=RUNNING, detail=f"SIGTERM to pid {main}; the worker {ended}")


def _broker_service(adapter: type[Adapter] | Adapter) -> str:
    """The service name of the adapter's broker or database ("" for a SQLite file)."""
    return {"Redis": "redis", "RabbitMQ": "rabbitmq", "PostgreSQL": "postgresql"}.get(adapter.broker, "")


def _overrides(service: str, host: str, port: int, url: str) -> dict[str, str]:
    if service == "redis":
        return {services.ENV_REDIS_HOST: host, services.ENV_REDIS_PORT: str(port)}
    if service == "rabbitmq":
        return {services.ENV_AMQP_URL: url}
    return {services.ENV_PG_DSN: url}


class _Redirected(WhileRunning):
    """A fault that points the run (the harness's calls and the workers) elsewhere."""

    hold_s = SHORT_HOLD_S

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._exit = contextlib.ExitStack()
        self._env: dict[str, str] = {}

    @classmethod
    def why_not(cls, adapter: type[Adapter] | Adapter) -> str:
        return "" if _broker_service(adapter) else f"no server: the queue is a {adapter.broker} file"

    def redirect(self, overrides: dict[str, str]) -> None:
        self._env = overrides
        self._exit.enter_context(services.endpoints(overrides))

    def worker_env(self, run: RunContext) -> dict[str, str]:
        return {**super().worker_env(run), **self._env}

    def cleanup(self, run: RunContext) -> None:
        self._exit.close()


@register
class Restart(_Redirected):
    name = "restart"
    description = ("the broker or database (a private server of the harness's) restarted while a "
                   "job runs")

    def prepare(self, run: RunContext, adapter: Adapter) -> None:
        super().prepare(run, adapter)
        service = _broker_service(adapter)
        server = private.PRIVATE[service](os.path.join(run.folder, f"private-{service}"))
        self._exit.callback(server.remove)
        server.start()
        self.server = server
        self.redirect(_overrides(service, "127.0.0.1", server.port, server.url))

    def act(self, run: RunContext, row: Row, commands: list[Command]) -> Kill | None:
        t_s = time.time()  # real-time: the ledger's clock
        self.server.restart()
        return Kill(t_s, row.pid, row.job, aim=RUNNING,
                    detail=f"private {self.server.name} restarted in {self.server.start_s:.2f} s")


@register
class Cut(_Redirected):
    name = "cut"
    description = ("the worker's connection to its broker reset while a job runs (a proxy's RST; "
                   "pg_terminate_backend on PostgreSQL)")

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.proxy: Proxy | None = None
        self.dsn = ""

    def prepare(self, run: RunContext, adapter: Adapter) -> None:
        super().prepare(run, adapter)
        service = _broker_service(adapter)
        if service == "postgresql":
            return  # the worker's own backends are terminated: no proxy in the way
        host, port = services.PORTS[service]
        proxy = Proxy(host, port)
        self._exit.callback(proxy.stop)
        proxy.start()
        self.proxy = proxy
        url = services.amqp_url().replace(f"@{host}:{port}/", f"@127.0.0.1:{proxy.port}/")
        assert service != "rabbitmq" or f":{proxy.port}/" in url, "the AMQP URL names host:port"
        self.redirect(_overrides(service, "127.0.0.1", proxy.port, url))

    def act(self, run: RunContext, row: Row, commands: list[Command]) -> Kill | None:
        t_s = time.time()  # real-time: the ledger's clock
        if self.proxy is not None:
            reset = self.proxy.cut()
            what = f"{reset} connection(s) through the proxy reset"
        else:
            command = _command_of(row.pid, commands)
            pids = set(_tree(_worker_main(command))) if command is not None else {row.pid}
            reset = terminate_backends_of(pids)
            what = f"{reset} backend(s) of the worker terminated"
        return Kill(t_s, row.pid, row.job, aim=RUNNING, detail=what)


def _socket_ports(pids: set[int]) -> set[int]:
    """The local TCP ports of the sockets the processes ``pids`` hold."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:["):
                        inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as f:
            for line in list(f)[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def terminate_backends_of(pids: set[int]) -> int:
    """``pg_terminate_backend`` of every backend whose client is one of ``pids``; how many."""
    import psycopg

    ports = sorted(_socket_ports(pids))
    if not ports:
        return 0
    with psycopg.connect(services.pg_dsn(), autocommit=True, connect_timeout=5) as conn:
        found = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE client_port = ANY(%s) AND client_addr IN ('127.0.0.1', '::1') "
            "AND pid <> pg_backend_pid()", (ports,)).fetchone()
    return int(found[0]) if found else 0


#: Per adapter class name: the threshold a long task outlives, and what the system calls it.
THRESHOLDS: dict[str, tuple[float, str]] = {
    "CeleryRedis": (3.0, "the Redis transport's visibility_timeout"),
    "CeleryRedisSolo": (3.0, "the Redis transport's visibility_timeout"),
    "PgQueuer": (3.0, "heartbeat_timeout (the worker refreshes the heartbeat while the job runs)"),
    "ProcrastinateStalled": (3.0, "the stalled-job threshold of the periodic retry (worker heartbeats)"),
    "Arq": (2.0, "job_timeout (the in-progress key lives job_timeout + 10 s)"),
    "ArqOneTry": (2.0, "job_timeout (the in-progress key lives job_timeout + 10 s)"),
    "FailfirstSqlite": (2.0, "the lease (renewed by heartbeats while the job runs)"),
    "FailfirstPostgres": (2.0, "the lease (renewed by heartbeats while the job runs)"),
}


@register
class LongTask(WhileRunning):
    name = "long-task"
    description = ("a job runs longer than the visibility timeout, stalled threshold or heartbeat "
                   "timeout: a second run while the first is alive?")

    @classmethod
    def why_not(cls, adapter: type[Adapter] | Adapter) -> str:
        name = adapter.__name__ if isinstance(adapter, type) else type(adapter).__name__
        if name in THRESHOLDS:
            return ""
        return "no threshold below the experiment's scale (no visibility timeout, stalled or heartbeat limit)"

    def threshold(self) -> float:
        assert self.adapter is not None
        return THRESHOLDS[type(self.adapter).__name__][0]

    def worker_env(self, run: RunContext) -> dict[str, str]:
        # The targeted job outlives the threshold, then finishes (its effect counts).
        return {ledger.ENV_HOLD: json.dumps({self.target: STARTED}),
                ledger.ENV_HOLD_S: repr(self.threshold() + LONG_MARGIN_S)}

    def act(self, run: RunContext, row: Row, commands: list[Command]) -> Kill | None:
        # Recorded once the threshold has passed with the first run still going: from here
        # the harness's quiet period counts, so a late second run or effect is seen.
        if time.time() - row.t_s < self.threshold():  # real-time: the ledger's clock
            return None
        return Kill(row.t_s + self.threshold(), row.pid, row.job, aim=RUNNING,
                    detail=f"still running {self.threshold():g} s after its start "
                           f"({THRESHOLDS[type(self.adapter).__name__][1]})")
