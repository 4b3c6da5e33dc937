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
  30 s). The targeted job runs longer than the grace (it holds :data:`failfirst.peers.ledger.HOLD_S`).
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
#: Celery's Redis transport puts an unacknowledged message back once it is older than the
#: visibility timeout, when a worker next looks for such messages: every second with the
#: adapter's ``unacked_restore_interval`` (kombu 5.7; its default looks every 100 s).
KOMBU_RESTORE_S = 1.0
#: Per adapter class name: how long a run goes on after a deploy fault's action, so that a
#: job the system brings back late is seen (the harness's quiet period counts from the
#: last ledger row, and the system's recovery_s is sized for a killed pool child).
SETTLE_S: dict[str, float] = {
    "CeleryRedis": 3.0 + KOMBU_RESTORE_S + 2.0, "CeleryRedisSolo": 3.0 + KOMBU_RESTORE_S + 2.0,
}


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
            self.acted_at = time.monotonic()  # real-time: the settle time counts from here
            return [kill]
        return []

    def act(self, run: RunContext, row: Row, commands: list[Command]) -> Kill | None:
        """Strike (or go on striking); the Kill row once the action is complete."""
        raise NotImplementedError

    @classmethod
    def at_ci_size(cls, adapter: type[Adapter] | Adapter) -> bool:
        return _name(adapter) in CI_CELLS[cls.name]

    def done(self, run: RunContext, rows: list[Row]) -> bool:
        return self.kill is not None

    def busy(self, run: RunContext, rows: list[Row]) -> bool:
        """The run goes on while the targeted job runs and the action is not complete (a
        grace period, a long task), then for the settle time: the harness's quiet period
        alone is shorter than some systems' own delays here."""
        if self.kill is None:
            return any(r.job == self.target and r.kind == STARTED for r in rows)
        assert self.acted_at is not None
        return time.monotonic() - self.acted_at < self.settle_s()  # real-time: the settle time

    def settle_s(self) -> float:
        """Seconds after the action before the run may end (besides the quiet period)."""
        assert self.adapter is not None
        return SETTLE_S.get(_name(self.adapter), 0.0)

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
                 else f"was SIGKILLed after {GRACE_S:g} s ({len(alive)} process(es) left)")
        return Kill(t_s, row.pid, row.job, aim=RUNNING, detail=f"SIGTERM to pid {main}; the worker {ended}",
                    action="SIGTERM")


def _name(adapter: type[Adapter] | Adapter) -> str:
    return adapter.__name__ if isinstance(adapter, type) else type(adapter).__name__


#: The cells ``make peers`` runs (CI size: a few minutes on 2 cores), per fault: one or two
#: configurations per outcome measured with the full matrix; ``make peers-full`` runs all.
CI_CELLS: dict[str, frozenset[str]] = {
    "sigterm": frozenset({"FailfirstSqlite", "CeleryRabbit", "RQ", "HueySqlite", "Procrastinate", "Arq"}),
    "restart": frozenset({"FailfirstPostgres", "CeleryRabbitAcksLate", "PgQueuer"}),
    "cut": frozenset({"FailfirstPostgres", "CeleryRabbitAcksLate", "DramatiqRabbit", "PgQueuer"}),
    "long-task": frozenset({"FailfirstSqlite", "CeleryRedisSolo", "PgQueuer", "Arq"}),
}


def _broker_service(adapter: type[Adapter] | Adapter) -> str:
    """The service name of the adapter's broker or database ("" for a SQLite file)."""
    return {"Redis": "redis", "RabbitMQ": "rabbitmq", "PostgreSQL": "postgresql"}.get(adapter.broker, "")


def _overrides(service: str, host: str, port: int, url: str) -> dict[str, str]:
    if service == "redis":
        return {services.ENV_REDIS_HOST: host, services.ENV_REDIS_PORT: str(port)}
    if service == "rabbitmq":
        return {services.ENV_AMQP_URL: url}
    return {services.ENV_PG_DSN: url}


class Redirected(WhileRunning):
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
class Restart(Redirected):
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
        return Kill(t_s, row.pid, row.job, aim=RUNNING, action=f"{self.server.name} restart",
                    detail=f"private {self.server.name} restarted in {self.server.start_s:.2f} s")


@register
class Cut(Redirected):
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
        return Kill(t_s, row.pid, row.job, aim=RUNNING, detail=what, action="connections cut")


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


#: Per adapter class name: the threshold a long task outlives, what the system calls it, and
#: how long the long task runs (Celery on Redis: past the timeout and kombu's next look).
THRESHOLDS: dict[str, tuple[float, str, float]] = {
    "CeleryRedis": (3.0, "the Redis transport's visibility_timeout", 3.0 + KOMBU_RESTORE_S + 3.0),
    "CeleryRedisSolo": (3.0, "the Redis transport's visibility_timeout", 3.0 + KOMBU_RESTORE_S + 3.0),
    "PgQueuer": (3.0, "heartbeat_timeout (the worker refreshes the heartbeat while the job runs)", 5.0),
    "ProcrastinateStalled": (3.0, "the stalled-job threshold of the periodic retry (worker heartbeats)", 5.0),
    "Arq": (2.0, "job_timeout (the in-progress key lives job_timeout + 10 s)", 4.0),
    "ArqOneTry": (2.0, "job_timeout (the in-progress key lives job_timeout + 10 s)", 4.0),
    "FailfirstSqlite": (2.0, "the lease (renewed by heartbeats while the job runs)", 4.0),
    "FailfirstPostgres": (2.0, "the lease (renewed by heartbeats while the job runs)", 4.0),
}


@register
class LongTask(WhileRunning):
    name = "long-task"
    description = ("a job runs longer than the visibility timeout, stalled threshold or heartbeat "
                   "timeout: a second run while the first is alive?")

    @classmethod
    def why_not(cls, adapter: type[Adapter] | Adapter) -> str:
        if _name(adapter) in THRESHOLDS:
            return ""
        return "no threshold below the experiment's scale (no visibility timeout, stalled or heartbeat limit)"

    @classmethod
    def extra_s(cls, adapter: type[Adapter] | Adapter) -> float:
        return THRESHOLDS[_name(adapter)][2] if _name(adapter) in THRESHOLDS else 0.0

    def limits(self) -> tuple[float, str, float]:
        assert self.adapter is not None
        return THRESHOLDS[_name(self.adapter)]

    def worker_env(self, run: RunContext) -> dict[str, str]:
        # The targeted job outlives the threshold, then finishes (its effect counts).
        return {ledger.ENV_HOLD: json.dumps({self.target: STARTED}),
                ledger.ENV_HOLD_S: repr(self.limits()[2])}

    def act(self, run: RunContext, row: Row, commands: list[Command]) -> Kill | None:
        # Recorded once the threshold has passed with the first run still going.
        threshold_s, what, runs_s = self.limits()
        if time.time() - row.t_s < threshold_s:  # real-time: the ledger's clock
            return None
        return Kill(row.t_s + threshold_s, row.pid, row.job, aim=RUNNING, action="threshold passed",
                    detail=f"running {threshold_s:g} s after its start, for {runs_s:g} s in all: {what}")

    def settle_s(self) -> float:
        # The long run goes on past the threshold: the run waits for its end, and a little.
        threshold_s, _, runs_s = self.limits()
        return runs_s - threshold_s + 1.0


# -- remedies: per fault and system, what makes the cell clean, with the system's own words --

CELERY_WORKERS = ("Celery workers guide: stopping the worker",
                  "https://docs.celeryq.dev/en/stable/userguide/workers.html#stopping-the-worker")
CELERY_SOFT_SHUTDOWN = ("Celery configuration: worker_soft_shutdown_timeout",
                        "https://docs.celeryq.dev/en/stable/userguide/configuration.html#worker-soft-shutdown-timeout")
CELERY_ACKS_LATE = ("Celery FAQ: should I use retry or acks_late?",
                    "https://docs.celeryq.dev/en/stable/faq.html#faq-acks-late-vs-retry")
CELERY_CONNECTION_LOSS = ("Celery configuration: worker_cancel_long_running_tasks_on_connection_loss",
                          "https://docs.celeryq.dev/en/stable/userguide/configuration.html"
                          "#worker-cancel-long-running-tasks-on-connection-loss")
CELERY_REDIS_VT = ("Celery, Using Redis: visibility timeout",
                   "https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html"
                   "#visibility-timeout")
CELERY_5935 = ("celery/celery#5935", "https://github.com/celery/celery/issues/5935")
KOMBU_337 = ("celery/kombu#337", "https://github.com/celery/kombu/issues/337")
RQ_WORKERS = ("RQ documentation: workers", "https://python-rq.org/docs/workers/")
RQ_JOBS = ("RQ documentation: jobs", "https://python-rq.org/docs/jobs/")
HUEY_CONSUMER = ("huey consumer documentation: shutdown",
                 "https://huey.readthedocs.io/en/latest/consumer.html#consumer-shutdown")
DRAMATIQ_GUIDE = ("Dramatiq user guide", "https://dramatiq.io/guide.html")
DRAMATIQ_330 = ("Bogdanp/dramatiq#330 (shutdown timeout)", "https://github.com/Bogdanp/dramatiq/pull/330")
PROCRASTINATE_STALLED = ("procrastinate how-to: retry stalled jobs",
                         "https://procrastinate.readthedocs.io/en/stable/howto/production/retry_stalled_jobs.html")
PROCRASTINATE_1518 = ("procrastinate-org/procrastinate#1518",
                      "https://github.com/procrastinate-org/procrastinate/issues/1518")
PGQUEUER_430 = ("janbjorge/pgqueuer#430", "https://github.com/janbjorge/pgqueuer/issues/430")
PGQUEUER_475 = ("janbjorge/pgqueuer#475", "https://github.com/janbjorge/pgqueuer/issues/475")
ARQ_DOCS = ("arq documentation: retrying jobs and cancellation", "https://arq-docs.helpmanual.io/")
ARQ_401 = ("python-arq/arq#401 (a timed-out job is not retried)", "https://github.com/python-arq/arq/issues/401")
ARQ_402 = ("python-arq/arq#402 (the in-progress key uses the longest timeout)",
           "https://github.com/python-arq/arq/issues/402")
RIVER_1302 = ("riverqueue/river#1302 (context: River's rescuer)", "https://github.com/riverqueue/river/issues/1302")
#: The chapters of this book that explain the mechanisms.
LEASES = "FM_004_stuck_queue"
COMMIT = "FM_001_retry_duplication"
#: What makes a duplicate harmless whatever the queue does (failfirst's own chapter).
IDEMPOTENT = "none in the queue: make the task idempotent (an idempotency key checked with the effect)"

#: (fault, system) -> what makes the cell clean and where the system says so: ``remedy`` is one
#: sentence a reader can act on, ``chapter`` the chapter of this book that explains the
#: mechanism, ``cites`` (title, link) pairs from the system's documentation and tracker. Read
#: with :func:`remedy`.
REMEDIES: dict[tuple[str, str], dict[str, Any]] = {
    ("sigterm", "failfirst"): {
        "remedy": "none needed: the lease expires, the reaper hands the job back, and the effect "
                  "commits only with the completion",
        "cites": []},
    ("sigterm", "Celery"): {
        "remedy": "a grace period longer than the longest task (terminationGracePeriodSeconds); "
                  "acks early loses the task SIGKILL ends, so use task_acks_late (Celery >= 5.5: "
                  "worker_soft_shutdown_timeout) and, for acks_late, " + IDEMPOTENT,
        "cites": [CELERY_WORKERS, CELERY_SOFT_SHUTDOWN, CELERY_ACKS_LATE]},
    ("sigterm", "RQ"): {
        "remedy": "a grace period longer than the longest job (SIGTERM is a warm shutdown that waits "
                  "for the work horse); a job SIGKILL ends is left to the StartedJobRegistry's cleanup",
        "cites": [RQ_WORKERS, RQ_JOBS]},
    ("sigterm", "huey"): {
        "remedy": "stop the consumer with SIGINT (graceful: running tasks finish), not SIGTERM "
                  "(immediate); a task SIGTERM interrupts is not run again",
        "cites": [HUEY_CONSUMER]},
    ("sigterm", "Dramatiq"): {
        "remedy": "a grace period longer than the longest actor; a message whose worker is killed is "
                  "redelivered by RabbitMQ, so " + IDEMPOTENT,
        "cites": [DRAMATIQ_GUIDE, DRAMATIQ_330]},
    ("sigterm", "procrastinate"): {
        "remedy": "a grace period longer than the longest job, and the periodic retry of stalled jobs "
                  "(a job SIGKILL ends stays 'doing' otherwise)",
        "cites": [PROCRASTINATE_STALLED, PROCRASTINATE_1518]},
    ("sigterm", "pgqueuer"): {
        "remedy": "none needed for the job: its heartbeat stops and another worker picks it again "
                  "after heartbeat_timeout; " + IDEMPOTENT + " if it had written its effect",
        "cites": [PGQUEUER_430, PGQUEUER_475]},
    ("sigterm", "arq"): {
        "remedy": "none needed for the job: arq cancels it on SIGTERM and runs it again at once "
                  "(counted against max_tries); the cancelled run must leave no half-done effect",
        "cites": [ARQ_DOCS]},
    ("restart", "failfirst"): {
        "remedy": "none needed: a worker that loses its connection cannot commit, its lease expires "
                  "and the job runs again, once",
        "cites": []},
    ("restart", "Celery"): {
        "remedy": "with acks_late the broker redelivers the unacknowledged task while the first run "
                  "goes on (Celery >= 5.1: worker_cancel_long_running_tasks_on_connection_loss "
                  "cancels it instead); " + IDEMPOTENT,
        "cites": [CELERY_CONNECTION_LOSS, CELERY_ACKS_LATE]},
    ("restart", "RQ"): {
        "remedy": "Redis must keep its data across the restart (persistence); RQ reconnects",
        "cites": [RQ_WORKERS]},
    ("restart", "huey"): {
        "remedy": "Redis must keep its data across the restart (persistence); huey reconnects",
        "cites": [HUEY_CONSUMER]},
    ("restart", "Dramatiq"): {
        "remedy": "durable queues and persistent messages (Dramatiq's defaults); a message whose "
                  "acknowledgement was lost with the connection is delivered again, so " + IDEMPOTENT,
        "cites": [DRAMATIQ_GUIDE]},
    ("restart", "procrastinate"): {
        "remedy": "the worker reconnects; a job whose status update failed with the connection needs "
                  "the periodic retry of stalled jobs",
        "cites": [PROCRASTINATE_STALLED, PROCRASTINATE_1518]},
    ("restart", "pgqueuer"): {
        "remedy": "the worker reconnects; a job whose completion was lost with the connection stays "
                  "'picked' and is picked again after heartbeat_timeout, a second run if the first "
                  "had finished: " + IDEMPOTENT,
        "cites": [PGQUEUER_475]},
    ("restart", "arq"): {
        "remedy": "Redis must keep its data across the restart (persistence); a job whose end could "
                  "not be recorded runs again once its in-progress key expires, a second time if its "
                  "first run had finished: " + IDEMPOTENT,
        "cites": [ARQ_DOCS, ARQ_402]},
    ("cut", "failfirst"): {
        "remedy": "none needed: the commit that follows a lost connection is refused by the lease's "
                  "fencing token, the job runs again once",
        "cites": []},
    ("cut", "Celery"): {
        "remedy": "with acks_late the broker redelivers the task whose connection dropped while the "
                  "first run goes on; worker_cancel_long_running_tasks_on_connection_loss cancels the "
                  "first run; " + IDEMPOTENT,
        "cites": [CELERY_CONNECTION_LOSS, CELERY_ACKS_LATE]},
    ("cut", "RQ"): {"remedy": "none needed: redis-py reconnects and RQ records the job once",
                    "cites": [RQ_WORKERS]},
    ("cut", "huey"): {"remedy": "none needed: huey reconnects; a task already dequeued is not affected",
                      "cites": [HUEY_CONSUMER]},
    ("cut", "Dramatiq"): {
        "remedy": "RabbitMQ requeues the unacknowledged message when the connection drops, so the "
                  "actor runs twice if its first run finishes: " + IDEMPOTENT,
        "cites": [DRAMATIQ_GUIDE]},
    ("cut", "procrastinate"): {
        "remedy": "the worker reconnects; a job whose status update failed needs the periodic retry "
                  "of stalled jobs",
        "cites": [PROCRASTINATE_STALLED, PROCRASTINATE_1518]},
    ("cut", "pgqueuer"): {
        "remedy": "the worker reconnects; a job whose completion was lost with the connection is "
                  "picked again after heartbeat_timeout, a second run if the first had finished: "
                  + IDEMPOTENT,
        "cites": [PGQUEUER_430, PGQUEUER_475]},
    ("cut", "arq"): {"remedy": "none needed: the in-progress key keeps the job from a second worker",
                     "cites": [ARQ_DOCS]},
    ("long-task", "failfirst"): {
        "remedy": "none needed: the heartbeat renews the lease while the job runs",
        "cites": []},
    ("long-task", "Celery"): {
        "remedy": "a visibility_timeout longer than the longest task (and than every ETA/countdown) on "
                  "Redis and SQS; RabbitMQ has no visibility timeout",
        "cites": [CELERY_REDIS_VT, CELERY_5935, KOMBU_337]},
    ("long-task", "procrastinate"): {
        "remedy": "retry only jobs whose worker stopped its heartbeat (procrastinate >= 3.0), not jobs "
                  "that merely ran long",
        "cites": [PROCRASTINATE_STALLED, PROCRASTINATE_1518]},
    ("long-task", "pgqueuer"): {
        "remedy": "a heartbeat_timeout well above the heartbeat interval; a blocked event loop stops "
                  "the heartbeat (pgqueuer#430)",
        "cites": [PGQUEUER_430]},
    ("long-task", "arq"): {
        "remedy": "a job_timeout longer than the longest job (arq fails a job at its timeout and does "
                  "not retry it); the in-progress key (job_timeout + 10 s) prevents a second run",
        "cites": [ARQ_DOCS, ARQ_401, ARQ_402]},
}


def remedy(fault: str, system: str) -> dict[str, Any]:
    """The remedy of a (fault, system) cell, with its ``chapter`` (a duplicate's mechanism is
    the commit boundary, anything else the lease); KeyError for a cell that does not exist."""
    found = dict(REMEDIES[(fault, system)])
    found.setdefault("chapter", COMMIT if "idempotent" in found["remedy"] else LEASES)
    return found
