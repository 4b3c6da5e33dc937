"""Servers of the harness's own, for the faults that restart one or cut its connections.

Never the machine's shared servers: each private server lives in a temporary folder
of its own, listens on 127.0.0.1 on a free port of its own, and is removed afterwards.

- :class:`PrivateRedis`: ``redis-server --save "" --appendonly no`` in its folder;
  a restart is what a deploy does to a persisted Redis (``SHUTDOWN SAVE``, then the
  same port and folder: the dump is loaded again), so a queue's keys survive it.
- :class:`PrivateRabbit`: a RabbitMQ node with its own node name, ports (AMQP,
  distribution, epmd), Mnesia and log folders, configuration file and ``HOME`` (so
  its Erlang cookie is its own). Durable queues and persistent messages survive its
  restart (a graceful stop, then a start on the same data).
- :class:`PrivatePostgres`: :class:`failfirst.store.pgtools.PrivateServer` (initdb on
  127.0.0.1, its own port), which the real runs use already.

Each has ``start()``, ``url``, ``restart()`` and ``stop()``; every wait is bounded, and
``stop()`` kills the server's whole process group (and the node's own epmd).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any

from failfirst.store import pgtools

#: No private server outlives this, even if the harness dies without stopping it.
MAX_RUNTIME_S = 1800
#: A server that does not accept connections within this is a broken run.
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


class PrivateServerError(RuntimeError):
    """A private server that cannot start here: one line saying why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int, timeout_s: float = 0.5) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def _wait(ready: Any, what: str, proc: subprocess.Popen[bytes] | None, log: str,
          timeout_s: float = START_TIMEOUT_S) -> float:
    """Wait until ``ready()``; return the seconds it took. Bounded by ``timeout_s``."""
    started = time.monotonic()  # real-time: a server's start is waited for
    for _ in range(int(timeout_s / 0.05) + 1):  # bounded
        if ready():
            return time.monotonic() - started  # real-time: a real run's clock
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)  # real-time: polling a starting server
    raise PrivateServerError(f"{what} did not start within {timeout_s:g} s: {_tail(log)}")


def _tail(path: str, lines: int = 3) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return " | ".join(ln.strip() for ln in f.read().splitlines()[-lines:] if ln.strip())
    except OSError:
        return f"no log at {path}"


def _kill_group(proc: subprocess.Popen[bytes] | None, first: int = signal.SIGTERM) -> None:
    """Signal the server's process group, wait (bounded), then SIGKILL what is left."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, first)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_TIMEOUT_S)  # real-time: bounded graceful stop
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)  # real-time: bounded reap


class PrivateService:
    """What every private server offers; a context manager that stops and removes it."""

    name = ""
    #: Seconds the last start took until the server accepted connections.
    start_s = 0.0

    def __init__(self, folder: str | None = None) -> None:
        self.folder = folder or tempfile.mkdtemp(prefix=f"failfirst-peers-{self.name}-")
        self._made_folder = folder is None
        os.makedirs(self.folder, exist_ok=True)

    @property
    def url(self) -> str:
        raise NotImplementedError

    def start(self) -> PrivateService:
        raise NotImplementedError

    def restart(self) -> None:
        """Stop gracefully and start again on the same port and data."""
        self.stop()
        self.start()

    def stop(self) -> None:
        raise NotImplementedError

    def remove(self) -> None:
        self.stop()
        if self._made_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivateService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()


class PrivateRedis(PrivateService):
    name = "redis"

    def __init__(self, folder: str | None = None, port: int | None = None) -> None:
        super().__init__(folder)
        self.port = port or free_port()
        self.log = os.path.join(self.folder, "redis.log")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise PrivateServerError("redis-server not on PATH: install Redis (apt-get install redis-server)")
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                ["timeout", "-s", "KILL", str(MAX_RUNTIME_S), binary, "--port", str(self.port),
                 "--bind", "127.0.0.1", "--dir", self.folder, "--save", "", "--appendonly", "no",
                 "--protected-mode", "yes", "--daemonize", "no"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.start_s = _wait(self._ping, f"private Redis on port {self.port}", self._proc, self.log)
        return self

    def _ping(self) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """``SHUTDOWN SAVE``: the dump is written although no save points are set (as a
        deploy's restart of a persisted Redis keeps its data); then the group is gone."""
        if self._proc is None or self._proc.poll() is not None:
            _kill_group(self._proc, signal.SIGKILL)
            self._proc = None
            return
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=STOP_TIMEOUT_S)
        with contextlib.suppress(redis.RedisError):
            client.shutdown(save=True)
        client.close()
        _kill_group(self._proc)
        self._proc = None


class PrivateRabbit(PrivateService):
    name = "rabbitmq"
    SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"

    def __init__(self, folder: str | None = None, port: int | None = None) -> None:
        super().__init__(folder)
        self.port = port or free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = f"ffpeers{self.port}@localhost"
        self.log = os.path.join(self.folder, "server.log")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        home = os.path.join(self.folder, "home")
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin:/usr/sbin"), "HOME": home,
            "LANG": "C.UTF-8", "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
            # An epmd of its own: the machine's (port 4369) never learns about this node.
            "ERL_EPMD_PORT": str(self.epmd_port), "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_MNESIA_BASE": os.path.join(self.folder, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.folder, "log"),
            # Its own files instead of /etc/rabbitmq's (which name the shared node's port).
            "RABBITMQ_CONFIG_FILE": os.path.join(self.folder, "rabbitmq"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.folder, "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.folder, "enabled_plugins"),
            "RABBITMQ_PID_FILE": os.path.join(self.folder, "rabbitmq.pid"),
        }

    def start(self) -> PrivateRabbit:
        if not os.path.exists(self.SERVER):
            raise PrivateServerError(f"{self.SERVER} not found: install RabbitMQ "
                                     "(apt-get install rabbitmq-server)")
        env = self._env()
        for sub in ("home", "mnesia", "log"):
            os.makedirs(os.path.join(self.folder, sub), exist_ok=True)
        with open(env["RABBITMQ_CONFIG_FILE"] + ".conf", "w", encoding="utf-8") as f:
            f.write(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n")
        open(env["RABBITMQ_CONF_ENV_FILE"], "a").close()  # noqa: SIM115 - an empty file
        with open(env["RABBITMQ_ENABLED_PLUGINS_FILE"], "w", encoding="utf-8") as f:
            f.write("[].\n")
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(
                ["timeout", "-s", "KILL", str(MAX_RUNTIME_S), self.SERVER], env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.start_s = _wait(self._amqp_ready, f"private RabbitMQ on port {self.port}", self._proc, self.log)
        return self

    def _amqp_ready(self) -> bool:
        if not accepts(self.port):
            return False
        from kombu import Connection

        try:
            with Connection(self.url, connect_timeout=2) as conn:
                conn.connect()
            return True
        except Exception:  # still booting: the listener may accept before the broker answers
            return False

    def stop(self) -> None:
        """SIGTERM: the node stops gracefully (durable queues and persistent messages are on
        disk); then the group, and the node's own epmd, are gone."""
        _kill_group(self._proc)
        self._proc = None
        epmd = shutil.which("epmd")
        if epmd is not None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run([epmd, "-kill"], env={"ERL_EPMD_PORT": str(self.epmd_port),
                                                     "PATH": os.environ.get("PATH", "")},
                               capture_output=True, timeout=10, check=False)


class PrivatePostgres(PrivateService):
    """The real runs' private server (initdb, 127.0.0.1, its own port): reused as it is."""

    name = "postgresql"

    def __init__(self, folder: str | None = None, port: int | None = None) -> None:
        super().__init__(folder)
        self.server = pgtools.PrivateServer(self.folder, port)
        self.port = self.server.port
        self._running = False

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> PrivatePostgres:
        try:
            if not os.path.exists(os.path.join(self.server.data, "PG_VERSION")):
                self.server.init()
            started = time.monotonic()  # real-time: how long the start took
            self.server.start()
            self.start_s = time.monotonic() - started  # real-time: a real run's clock
        except pgtools.ServerError as exc:
            raise PrivateServerError(f"private PostgreSQL: {exc}") from None
        self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self.server.stop()
            self._running = False

    def remove(self) -> None:
        self.stop()
        self.server.cleanup()
        if self._made_folder:
            shutil.rmtree(self.folder, ignore_errors=True)


#: The private server for each service name of :data:`failfirst.peers.services.PORTS`.
PRIVATE: dict[str, type[PrivateService]] = {
    "redis": PrivateRedis, "rabbitmq": PrivateRabbit, "postgresql": PrivatePostgres,
}
