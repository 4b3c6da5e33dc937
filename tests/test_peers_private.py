"""The harness's own servers and proxy (failfirst.peers.private, failfirst.peers.proxy).

Each private server starts on a port of its own, keeps its data across a restart (the
fault "restart" relies on it), and leaves no process behind; the proxy forwards, and
its cut resets the connections open through it while new ones are accepted again.
Without the binaries the tests skip; with FAILFIRST_REQUIRE_SERVICES=1 they fail.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from needs import skip_or_fail  # tests/ is on sys.path

from failfirst.peers import private, services
from failfirst.peers.proxy import Proxy

pytestmark = pytest.mark.services


def need_binary(path: str) -> None:
    if shutil.which(path) is None and not os.path.exists(path):
        skip_or_fail(f"{path} is not installed")


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_private_redis_keeps_its_keys_across_a_restart_and_leaves_nothing_running() -> None:
    need_binary("redis-server")
    import redis

    server = private.PrivateRedis()
    with server:
        assert server.port != services.REDIS_PORT
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        client.set("k", "v")
        client.close()
        pid = server._proc.pid
        server.restart()
        assert server._proc.pid != pid
        client = redis.Redis.from_url(server.url, socket_timeout=5)
        assert client.get("k") == b"v"
        client.close()
        pid = server._proc.pid
        folder = server.folder
    assert gone(pid) and not os.path.exists(folder)
    assert not private.accepts(server.port)


def test_private_rabbitmq_keeps_a_persistent_message_across_a_restart() -> None:
    need_binary(private.PrivateRabbit.SERVER)
    from kombu import Connection, Producer, Queue

    server = private.PrivateRabbit()
    with server:
        assert server.port != 5672 and server.start_s < 20, server.start_s
        with Connection(server.url, connect_timeout=5) as conn:
            channel = conn.channel()
            Queue("kept", durable=True, channel=channel).declare()
            Producer(channel).publish({"n": 1}, routing_key="kept", delivery_mode=2)
        pid = server._proc.pid
        server.restart()
        with Connection(server.url, connect_timeout=5) as conn:
            message = conn.channel().basic_get("kept", no_ack=True)
        assert message is not None and json.loads(message.body) == {"n": 1}
        pids = [pid, server._proc.pid]
        ports = [server.port, server.dist_port, server.epmd_port]
    assert all(gone(p) for p in pids)
    assert not any(private.accepts(p) for p in ports)  # the node and its own epmd are gone


def test_private_postgresql_is_the_real_runs_server_and_restarts_on_the_same_data() -> None:
    from failfirst.store import pgtools

    problem = pgtools.binaries_problem()
    if problem is not None:
        skip_or_fail(problem)
    import psycopg

    with private.PrivatePostgres() as server:
        assert server.port != 5432
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (7)")
        server.restart()
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT n FROM kept").fetchone() == (7,)
        port = server.port
    assert not private.accepts(port)


def test_the_proxy_forwards_and_its_cut_resets_the_open_connections() -> None:
    need_binary("redis-server")
    import socket

    def ping(sock: socket.socket) -> bytes:
        sock.sendall(b"PING\r\n")
        return sock.recv(64)

    with private.PrivateRedis() as server, Proxy("127.0.0.1", server.port) as proxy:
        held = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        assert ping(held) == b"+PONG\r\n" and proxy.count() == 1
        assert proxy.cut() == 1
        with pytest.raises(ConnectionResetError):  # a RST, not an orderly close
            ping(held)
        held.close()
        again = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        assert ping(again) == b"+PONG\r\n"  # new connections go through again
        again.close()
        proxy_pid = proxy._proc.pid
    assert gone(proxy_pid)
