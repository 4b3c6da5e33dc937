"""Helpers of the PostgreSQL tests, the chapter and the benchmarks: find a server, make a
throwaway database, judge a run with plain SQL (independent of failfirst's store code),
and start a private server that a test may crash (initdb into a temporary folder).
"""

from __future__ import annotations

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


# -- a private server: initdb into a temporary folder, its own port -------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
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
    return all(shutil.which(b) for b in ("initdb", "pg_ctl", "postgres"))


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
        return subprocess.run(argv, check=True, capture_output=True, timeout=120, **kwargs)

    def _reachable(self, path: str) -> bool:
        """Can the server's user write there? (As root the server runs as ``postgres``,
        who cannot pass a folder such as a ``mktemp -d`` of root's.)"""
        if not self._as_root:
            return True
        return subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", path],
                              capture_output=True, timeout=30, check=False).returncode == 0

    def init(self) -> PrivateServer:
        if self._as_root:
            shutil.chown(self.root, "postgres")
        if not self._reachable(self.root):
            # Never loosen the permissions of the user's folders: the server's files go to
            # a temporary folder of its own, and the folder names it (stop and cleanup find it).
            home = tempfile.mkdtemp(prefix="failfirst-pg-")
            shutil.chown(home, "postgres")
            with open(os.path.join(self.root, self.POINTER), "w", encoding="utf-8") as f:
                f.write(home + "\n")
            self._place(home)
        self._run(["initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as conf:
            # '*': a worker in a network namespace reaches it over a veth (see pgstress).
            conf.write(f"port = {self.port}\nlisten_addresses = '*'\n"
                       f"unix_socket_directories = '{self.home}'\nfsync = on\n"
                       "synchronous_commit = on\nmax_connections = 60\n")
        with open(os.path.join(self.data, "pg_hba.conf"), "a") as hba:
            hba.write("host all all 10.231.0.0/16 trust\n")
        return self

    def start(self) -> None:
        self._run(["pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start"])

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
        while time.monotonic() < deadline and any(_alive(v) for v in victims):  # real-time
            time.sleep(0.05)  # real-time: bounded wait
        # A killed postmaster that nobody reaps stays a zombie, and its PID keeps the lock
        # file "alive" for the next start; it is dead, so its lock file goes.
        if not _alive(pid):
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
        self.stop()
        if self.home != self.root:
            shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m failfirst.store.pgtools serve FOLDER [PORT]``: a throwaway server
    (``make pg-server``); ``... stop FOLDER`` stops it."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] not in ("serve", "stop"):
        print("usage: python -m failfirst.store.pgtools serve|stop FOLDER [PORT]", file=sys.stderr)
        return 2
    if not binaries_available():
        print("initdb, pg_ctl and postgres must be on PATH (Debian: apt-get install postgresql)",
              file=sys.stderr)
        return 2
    folder = os.path.abspath(args[1])
    port = int(args[2]) if len(args) > 2 else 55432
    server = PrivateServer(folder, port)
    if args[0] == "stop":
        server.stop()
        return 0
    os.makedirs(folder, exist_ok=True)
    if not os.path.exists(os.path.join(server.data, "PG_VERSION")):
        server.init()
    server.start()
    print(f"PostgreSQL running in {folder}; try:\n"
          f"  failfirst explore FM_001 --store {server.url}\n"
          f"stop it with: python -m failfirst.store.pgtools stop {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
