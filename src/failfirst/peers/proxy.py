"""A TCP proxy the harness owns, between a worker and its broker, that can cut.

It runs in a process of its own (asyncio there; the harness process has no threads):
``python -m failfirst.peers.proxy --upstream HOST:PORT``. It listens on 127.0.0.1 on a
free port, prints ``ready PORT``, and forwards every connection to the upstream. On
the line ``cut`` on its standard input it resets every open connection, both sides
(``SO_LINGER`` 0, then close: the peers see a RST, as when a NAT or load balancer
drops a flow), and answers ``cut N`` with the number of connections it reset; new
connections are accepted again at once. ``count`` answers ``count N`` (open now).

:class:`Proxy` is the harness's handle: ``start()``, ``port``, ``cut()``, ``stop()``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import select
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence

#: A proxy never outlives this, even if the harness dies without stopping it.
MAX_RUNTIME_S = 1800
REPLY_TIMEOUT_S = 10.0
CHUNK = 65536


class ProxyError(RuntimeError):
    """The proxy did not start or did not answer."""


class Proxy:
    """The harness's handle on a proxy process."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proxy:
        self._proc = subprocess.Popen(
            ["timeout", "-s", "KILL", str(MAX_RUNTIME_S), sys.executable, "-m", "failfirst.peers.proxy",
             "--upstream", f"{self.upstream[0]}:{self.upstream[1]}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True)
        word, value = self._reply()
        if word != "ready":
            raise ProxyError(f"the proxy said {word!r} instead of ready")
        self.port = value
        return self

    def _reply(self) -> tuple[str, int]:
        assert self._proc is not None and self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], REPLY_TIMEOUT_S)  # real-time: bounded
        line = self._proc.stdout.readline().decode().split() if ready else []
        if len(line) != 2:
            raise ProxyError(f"the proxy did not answer within {REPLY_TIMEOUT_S:g} s")
        return line[0], int(line[1])

    def _ask(self, command: str) -> int:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(command.encode() + b"\n")
        self._proc.stdin.flush()
        word, value = self._reply()
        assert word == command, (word, command)
        return value

    def cut(self) -> int:
        """Reset every open connection now; the number reset."""
        return self._ask("cut")

    def count(self) -> int:
        """Connections open through the proxy now."""
        return self._ask("count")

    def stop(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)  # real-time: bounded reap
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._proc = None

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the proxy process ----------------------------------------------------------------


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a RST, not a FIN: linger on, timeout 0."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Forwarder:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(writer)
            return
        pair = (writer, up_writer)
        self.pairs.add(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self.pairs.discard(pair)
            for w in pair:
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()

    async def cut(self) -> int:
        cut = list(self.pairs)
        for client, upstream in cut:
            _reset(client)
            _reset(upstream)
        self.pairs.clear()
        # abort() closes the sockets in callbacks of the loop's next turn: let them run, so
        # that the reply "cut N" comes after the RSTs went out.
        for _ in range(3):
            await asyncio.sleep(0)
        return len(cut)


async def _serve(upstream: tuple[str, int]) -> None:
    forwarder = _Forwarder(upstream)
    server = await asyncio.start_server(forwarder.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()
    loop.add_reader(sys.stdin.fileno(), lambda: commands.put_nowait(sys.stdin.readline()))
    while True:  # ends with its stdin (the harness is gone) or a SIGKILL
        line = (await commands.get()).strip()
        if line == "cut":
            print(f"cut {await forwarder.cut()}", flush=True)
        elif line == "count":
            print(f"count {len(forwarder.pairs)}", flush=True)
        elif not line:
            break
    server.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m failfirst.peers.proxy")
    parser.add_argument("--upstream", required=True, metavar="HOST:PORT")
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    if not host or not port.isdigit():
        print(f"--upstream: HOST:PORT, got {args.upstream!r}", file=sys.stderr)
        return 2
    asyncio.run(_serve((host, int(port))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
