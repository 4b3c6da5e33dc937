"""The fleet: the one place that starts real worker processes (``python -m
failfirst.realrun.process``), restarts them, kills them and stops them.

A worker slot (``w1``) runs one process at a time; each process is an incarnation
with a name of its own (``w1``, then ``w1#2``), so the leases of a dead one are told
apart from its successor's. A store URL reaches a child through its environment (it
may hold a password), never through its command line.

No child outlives the parent by more than a moment, however the parent dies —
SIGKILL under CPU load included:

1. between fork and exec, each child asks the kernel for SIGKILL when its parent dies
   (``PR_SET_PDEATHSIG``, Linux) and exits at once if the parent is already gone.
   This happens before the interpreter starts, so a child still importing on a loaded
   machine is covered too (a request made from the child's own ``main`` left children
   alive for seconds after their parent, while they imported);
2. every child runs in one process group led by a watchdog: a small process that
   blocks reading a pipe whose only writer is the parent. When the parent dies, the
   kernel closes the pipe, and the watchdog kills the whole group, itself last;
3. each child checks its parent between steps and exits after ``max_runtime_s``
   whatever happens (:mod:`failfirst.realrun.process`).

Children are in a process group of their own, so Ctrl-C at a terminal reaches only
the parent, which stops them. Their logs are anonymous files: a killed run leaves
nothing behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from failfirst.realrun.process import (
    EXIT_CONNECTION_LOST,
    EXIT_ORPHANED,
    PR_SET_PDEATHSIG,
    STORE_URL_ENV,
    RealConfig,
)

#: How long ``stop`` waits for children to end on SIGTERM before it kills them.
STOP_GRACE_S = 5.0
#: The watchdog: reads its stdin until the parent (the pipe's only writer) is gone, then
#: kills its process group (every worker, and itself). No import beyond the built-ins.
WATCHDOG_SOURCE = """
import os, signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
try:
    while os.read(0, 64):
        pass
except OSError:
    pass
os.killpg(0, signal.SIGKILL)
"""


class FleetError(RuntimeError):
    """A worker process exited on its own for a reason the run does not expect."""


#: Blocked in the parent while it forks a worker: a Ctrl-C or SIGTERM that lands inside
#: the fork's own Python hooks is swallowed there ("Exception ignored"), and the parent
#: would never stop. Blocked, it waits and is delivered after the fork.
_PARENT_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _bind_to_parent(parent_pid: int) -> Callable[[], None]:
    """The child's first act, between fork and exec: die with the parent; then ignore
    Ctrl-C (the parent decides when it stops) and let SIGTERM end it."""
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

    def bind() -> None:
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before the request: too late
            os._exit(EXIT_ORPHANED)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_SIGNALS)  # the parent's, inherited

    return bind


@dataclass
class Worker:
    """One incarnation of a worker slot: one process."""

    slot: str
    incarnation: int
    proc: subprocess.Popen[bytes]
    #: An anonymous file (already unlinked): nothing is left on disk however we die.
    log: IO[bytes]
    netns: str | None = None

    @property
    def name(self) -> str:
        return actor_name(self.slot, self.incarnation)

    def log_tail(self) -> str:
        try:
            self.log.seek(0)
            return self.log.read()[-2000:].decode("utf-8", errors="replace").strip()
        except (OSError, ValueError):
            return ""


def actor_name(slot: str, incarnation: int) -> str:
    """The actor's name, its lease owner: ``w1``, then ``w1#2`` after a restart."""
    return slot if incarnation == 1 else f"{slot}#{incarnation}"


@dataclass
class Route:
    """A slot whose processes run in a network namespace, reaching the store by ``url``."""

    netns: str
    url: str


@dataclass
class Fleet:
    """Worker processes on one store. ``db`` is a SQLite path or a store URL."""

    db: str
    is_url: bool
    guard: bool
    config: RealConfig
    workers: dict[str, Worker] = field(default_factory=dict)
    routes: dict[str, Route] = field(default_factory=dict)
    #: Processes started in place of ones that ended (killed, or their connection lost).
    restarts: int = 0
    _watchdog: subprocess.Popen[bytes] | None = None

    # -- starting -----------------------------------------------------------------

    def _group(self) -> int:
        """The process group every worker joins, led by the watchdog (started once)."""
        if self._watchdog is None or self._watchdog.poll() is not None:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", WATCHDOG_SOURCE], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0)
        return self._watchdog.pid

    def spawn(self, slot: str, incarnation: int = 1) -> Worker:
        """Start the process of ``slot``'s ``incarnation``: THE place a worker process starts."""
        from failfirst.store.interface import ACTOR_ENV  # the name pg_stat_activity shows

        name = actor_name(slot, incarnation)
        route = self.routes.get(slot)
        env = {**os.environ, ACTOR_ENV: name}
        if self.is_url:
            env[STORE_URL_ENV] = route.url if route else self.db
        argv = [sys.executable, "-m", "failfirst.realrun.process", "worker",
                "--db", "env" if self.is_url else self.db, "--name", name,
                "--guard", "on" if self.guard else "off", "--parent-pid", str(os.getpid()),
                *self.config.argv()]
        if route is not None:
            # `ip netns exec` execs the command in place (no fork): the child stays ours.
            argv = ["ip", "netns", "exec", route.netns, *argv]
        log = tempfile.TemporaryFile(prefix="failfirst-worker-")  # unlinked at once
        group = self._group()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _PARENT_SIGNALS)
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=env, process_group=group, preexec_fn=_bind_to_parent(os.getpid()))
        except BaseException:
            log.close()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal that came is delivered now
        old = self.workers.get(slot)
        if old is not None:
            old.log.close()
        worker = Worker(slot, incarnation, proc, log, route.netns if route else None)
        self.workers[slot] = worker
        return worker

    def start(self, slots: list[str]) -> None:
        for slot in slots:
            self.spawn(slot)

    def restart(self, slot: str) -> Worker:
        """The next incarnation of ``slot`` (the previous one has ended)."""
        old = self.workers[slot]
        assert old.proc.poll() is not None, f"{old.name} is still running"
        self.restarts += 1
        return self.spawn(slot, old.incarnation + 1)

    # -- striking -----------------------------------------------------------------

    def kill(self, slot: str) -> Worker:
        """SIGKILL the process of ``slot`` and reap it; returns the dead incarnation."""
        worker = self.workers[slot]
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(timeout=30.0)  # real-time: SIGKILL is not refused; bounded anyway
        return worker

    def signal(self, slot: str, signum: int) -> Worker:
        worker = self.workers[slot]
        if worker.proc.poll() is None:
            worker.proc.send_signal(signum)
        return worker

    # -- watching -----------------------------------------------------------------

    def exited(self) -> list[tuple[Worker, int]]:
        """Workers whose process has ended (and was not restarted yet), with its code."""
        return [(w, code) for w in self.workers.values() if (code := w.proc.poll()) is not None]

    @staticmethod
    def lost_connection(code: int) -> bool:
        return code == EXIT_CONNECTION_LOST

    def exit_problem(self, worker: Worker, code: int) -> FleetError:
        """Its first line says who and why (the log's last line); its log follows."""
        tail = worker.log_tail()
        last = tail.splitlines()[-1].strip() if tail else ""
        return FleetError(f"{worker.name} exited on its own with code {code}"
                          + (f" ({last})" if last else "") + (f"\n{tail}" if tail else ""))

    # -- stopping -----------------------------------------------------------------

    def stop(self) -> None:
        """SIGTERM (after SIGCONT: a paused worker must be able to die) every worker, wait
        a bounded time, SIGKILL what is left; then the watchdog goes with the group."""
        procs = [w.proc for w in self.workers.values()]
        for proc in procs:
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGCONT)
                    proc.terminate()
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_S  # real-time: bounded wait for children
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01))  # real-time: bounded
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30.0)  # real-time: SIGKILL cannot be refused; bounded anyway
        for worker in self.workers.values():
            worker.log.close()
        if self._watchdog is not None:
            self._watchdog.stdin.close()  # the watchdog kills the (now empty) group and itself
            self._watchdog.wait(timeout=30.0)  # real-time: bounded
            self._watchdog = None
