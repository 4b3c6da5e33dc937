"""Helpers of the PostgreSQL tests, the chapter and the benchmarks: find a server, make a
throwaway database, judge a run with plain SQL (independent of failfirst's store code),
look at and end the backends of a run's workers (the faults of failfirst.realrun.faults),
and start a private server that a test may crash (initdb into a temporary folder).

A private server listens on 127.0.0.1 and on a Unix socket in its own folder, and
trusts local connections only (initdb's ``-A trust`` writes exactly those lines); one
more address is let in only for a worker behind a network partition, and only on the
server that run crashes (:meth:`PrivateServer.allow_peer`).
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from failfirst.store import paths

#: The server the tests use unless told otherwise (trust authentication).
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
REQUIRE_ENV = "FAILFIRST_REQUIRE_PG"
URL_ENV = "FAILFIRST_PG_URL"


def admin_url() -> str:
    return os.environ.get(URL_ENV, DEFAULT_ADMIN_URL)


def server_problem(url: str | None = None) -> str | None:
    """None when a server answers at ``url``; else one line saying why not."""
    import psycopg

    try:
        psycopg.connect(url or admin_url(), connect_timeout=3).close()
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def with_database(url: str, database: str, query: str = "") -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, query, ""))


@contextmanager
def throwaway_database(url: str | None = None, tag: str = "ff") -> Iterator[str]:
    """A database of its own (unique name), dropped afterwards: tests running beside
    other users of the same server never see each other's tables."""
    import psycopg

    url = url or admin_url()
    name = f"{tag}_{os.getpid()}_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(url, name)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Verdict:
    """What plain SQL says about a finished real run."""

    jobs: int
    terminal: int
    succeeded: int
    lost: int
    #: Succeeded jobs whose effect row count is not exactly one.
    not_exactly_once: int
    extra_effect_rows: int

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.not_exactly_once == 0 and self.terminal == self.jobs


def judge_sql(url: str, schema: str = "failfirst") -> Verdict:
    """Every job terminal, none lost, exactly one effect row per succeeded job: counted
    by SQL written here, not by the store's methods or the run's own counters."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        jobs, terminal, succeeded = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE state IN ('succeeded', 'dead')), "
            "count(*) FILTER (WHERE state = 'succeeded') FROM jobs").fetchone()
        not_once, extra = conn.execute(
            "SELECT count(*) FILTER (WHERE n <> 1), coalesce(sum(greatest(n - 1, 0)), 0) FROM ("
            "  SELECT j.id, count(e.id) AS n FROM jobs j LEFT JOIN effects e ON e.job_id = j.id"
            "  WHERE j.state = 'succeeded' GROUP BY j.id) per_job").fetchone()
    return Verdict(jobs, terminal, succeeded, jobs - terminal, not_once, int(extra))


# -- the backends of a run's workers (faults strike them) ------------------------------

#: The application name a worker's connection carries: ``failfirst:w1``, ``failfirst:w1#2``
#: (see failfirst.store.interface.ACTOR_ENV).
WORKER_APPS = "failfirst:w%"


def worker_backends(url: str, states: tuple[str, ...]) -> list[tuple[int, str, str]] | None:
    """(backend pid, worker name, state) of each worker connection to ``url``'s database
    whose state is one of ``states`` (``idle``: between transactions; ``active`` and
    ``idle in transaction``: inside one). None while the server does not answer."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
            rows = conn.execute(
                "SELECT pid, application_name, state, xact_start IS NOT NULL FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE %s "
                "AND pid <> pg_backend_pid() AND state = ANY(%s)", (WORKER_APPS, list(states))).fetchall()
    except psycopg.Error:
        return None
    return [(pid, app.split(":", 1)[1], state) for pid, app, state, in_xact in rows
            if in_xact or state == "idle"]


def terminate_backend(url: str, pid: int) -> bool:
    """``pg_terminate_backend``: the server ends that connection (its open transaction
    rolls back). False when it was already gone or the server does not answer."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
            return bool(conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0])
    except psycopg.Error:
        return False


# -- a private server: initdb into a temporary folder, its own port -------------------


class ServerError(RuntimeError):
    """A private server that cannot be set up or started: one line saying why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_problem(port: int, host: str = "127.0.0.1") -> str | None:
    """None when ``port`` can be listened on at ``host``; else one line. (SO_REUSEADDR,
    as the server sets it: connections of a crashed server left in TIME_WAIT do not
    count, a listening socket does.)"""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} in use"
            return f"port {port}: {exc.strerror}"
    return None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of another process stays a zombie until reaped: count it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def binaries_available() -> bool:
    return binaries_problem() is None


def binaries_problem() -> str | None:
    """None when a private server can be made here; else one line naming what to install."""
    missing = [b for b in ("initdb", "pg_ctl", "postgres") if shutil.which(b) is None]
    if missing:
        return (f"{', '.join(missing)} not on PATH: install PostgreSQL's server binaries "
                "(Debian: apt-get install postgresql; put /usr/lib/postgresql/*/bin on PATH)")
    if os.geteuid() == 0:  # the server refuses root: it runs as the postgres user
        if shutil.which("runuser") is None:
            return "runuser not on PATH (as root the server runs as postgres): install util-linux"
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "no postgres user to run the server as (as root): create one (useradd postgres)"
    return None


class PrivateServer:
    """A PostgreSQL server of our own, which a test may crash (SIGKILL of the postmaster)
    and restart. Never the machine's shared server. Runs as the current user, or as
    ``postgres`` when we are root (the server refuses to run as root)."""

    #: In the folder when the server's files live elsewhere (see ``init()``).
    POINTER = "server-home"

    def __init__(self, root: str | None = None, port: int | None = None) -> None:
        self.root = root or tempfile.mkdtemp(prefix="failfirst-pg-")
        self.port = port or _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_root = os.geteuid() == 0
        pointer = os.path.join(self.root, self.POINTER)
        home = self.root
        if os.path.isfile(pointer):  # a server that init() placed elsewhere
            with open(pointer, encoding="utf-8") as f:
                home = f.read().strip()
        self._place(home)

    def _place(self, home: str) -> None:
        """Where the server's own files go: its data folder, socket and log."""
        self.home = home
        self.data = os.path.join(home, "data")
        self.log = os.path.join(home, "server.log")

    def _run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        if self._as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        try:
            return subprocess.run(argv, check=True, capture_output=True, timeout=120, **kwargs)
        except FileNotFoundError as exc:
            raise ServerError(binaries_problem() or f"{argv[0]}: {exc.strerror}") from None

    def _reachable(self, path: str) -> bool:
        """Can the server's user write there? (As root the server runs as ``postgres``,
        who cannot pass a folder such as a ``mktemp -d`` of root's.)"""
        if not self._as_root:
            return True
        return subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", path],
                              capture_output=True, timeout=30, check=False).returncode == 0

    def init(self) -> PrivateServer:
        problem = binaries_problem()
        if problem is not None:
            raise ServerError(problem)
        paths.mark_ours(self.root)
        if self._as_root:
            shutil.chown(self.root, "postgres")
        if not self._reachable(self.root):
            # Never loosen the permissions of the user's folders: the server's files go to
            # a temporary folder of its own, and the folder names it (stop and cleanup find it).
            home = tempfile.mkdtemp(prefix="failfirst-pg-")
            paths.mark_ours(home)
            shutil.chown(home, "postgres")
            with open(os.path.join(self.root, self.POINTER), "w", encoding="utf-8") as f:
                f.write(home + "\n")
            self._place(home)
        try:
            # -A trust: initdb's pg_hba.conf then trusts the local socket, 127.0.0.1/32 and
            # ::1/128, and nothing else.
            self._run(["initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync"])
        except subprocess.CalledProcessError as exc:
            raise ServerError(f"initdb failed: {_last_line(exc.stderr)}") from None
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf:
            conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.home}'\nfsync = on\n"
                       "synchronous_commit = on\nmax_connections = 60\n")
        return self

    def allow_peer(self, client_ip: str, server_ip: str) -> None:
        """Let exactly one more client in, over one more address of this host: the worker
        that a partition cuts off runs in a network namespace and reaches the server over
        a veth pair (client_ip/32 -> server_ip), so its packets can be dropped while the
        other workers' are not. Restarts the server (listen_addresses needs it). Only the
        server a partition run uses calls this; the line names the one address, /32."""
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1,{server_ip}'  # a partitioned worker's veth\n")
        with open(os.path.join(self.data, "pg_hba.conf"), "a") as hba:
            hba.write(f"host all all {client_ip}/32 trust  # the partitioned worker only\n")
        self.stop()
        self.start()

    def start(self) -> None:
        problem = port_problem(self.port)
        if problem is not None:
            raise ServerError(problem)
        try:
            self._run(["pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start"])
        except subprocess.CalledProcessError:
            raise ServerError(f"the server did not start: {self._log_reason()}") from None

    def _log_reason(self) -> str:
        """The server log's last error line (why a start failed), or a pointer to the log."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                lines = [ln.strip() for ln in f if "FATAL" in ln or "ERROR" in ln]
        except OSError:
            lines = []
        return lines[-1] if lines else f"see {self.log}"

    def postmaster_pid(self) -> int:
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def crash(self) -> None:
        """SIGKILL the postmaster and every backend at once: what a power cut does to the
        processes (the data folder then needs crash recovery, which start() runs)."""
        pid = self.postmaster_pid()
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True,
                                  timeout=30).stdout.split()
        victims = [pid, *(int(c) for c in children)]
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30  # real-time: bounded wait for them to be gone
        while time.monotonic() < deadline and any(process_alive(v) for v in victims):  # real-time: bounded
            time.sleep(0.05)  # real-time: bounded wait
        # A killed postmaster that nobody reaps stays a zombie, and its PID keeps the lock
        # file "alive" for the next start; it is dead, so its lock file goes.
        if not process_alive(pid):
            for lock in (os.path.join(self.data, "postmaster.pid"),
                         os.path.join(self.home, f".s.PGSQL.{self.port}.lock")):
                try:
                    os.remove(lock)
                except FileNotFoundError:
                    pass

    def stop(self) -> None:
        try:
            self._run(["pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"])
        except subprocess.CalledProcessError:
            pass

    def cleanup(self) -> None:
        """Stop the server and remove its folders: only folders failfirst made."""
        self.stop()
        for folder in {self.home, self.root}:
            if paths.is_ours(folder):
                shutil.rmtree(folder, ignore_errors=True)


def _last_line(text: bytes | str | None) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "no reason given"


def main(argv: list[str] | None = None) -> int:
    """``python -m failfirst.store.pgtools serve FOLDER [PORT]``: a throwaway server
    (``make pg-server``); ``... stop FOLDER`` stops it."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] not in ("serve", "stop"):
        print("usage: python -m failfirst.store.pgtools serve|stop FOLDER [PORT]", file=sys.stderr)
        return 2
    problem = binaries_problem()
    if problem is not None:
        print(f"pg-server: {problem}", file=sys.stderr)
        return 2
    try:
        port = int(args[2]) if len(args) > 2 else 55432
        if not (args[2] if len(args) > 2 else "1").isascii() or not 1 <= port <= 65535:
            raise ValueError
    except ValueError:
        print(f"pg-server: PORT must be an integer in 1..65535, got {args[2][:40]!r}", file=sys.stderr)
        return 2
    try:
        folder = paths.own_folder(args[1], "FOLDER")
        server = PrivateServer(folder, port)
        if args[0] == "stop":
            server.stop()
            return 0
        problem = port_problem(port)  # before initdb: say it at once
        if problem is not None:
            raise ServerError(problem)
        if not os.path.exists(os.path.join(server.data, "PG_VERSION")):
            server.init()
        server.start()
    except (paths.PathRefused, ServerError, OSError) as exc:
        print(f"pg-server: {exc}", file=sys.stderr)
        return 2
    print(f"PostgreSQL running in {folder} (127.0.0.1:{port}, local connections only); try:\n"
          f"  failfirst explore FM_001 --store {server.url}\n"
          f"stop it with: python -m failfirst.store.pgtools stop {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
