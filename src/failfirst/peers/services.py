"""The shared servers of the machine, reached with isolated names.

Every run uses names of its own (``RunContext.run_id``): its own RabbitMQ queues,
its own Redis key prefix (in database ``REDIS_DB``), its own PostgreSQL database
(:func:`pg_database`). Nothing here stops, restarts or flushes a shared server.

Where a run's adapter reaches its server is read at each call from the environment
(``redis_host``, ``redis_port``, ``amqp_url``, ``pg_dsn``), so a fault can point a run at
a private server or a proxy (:func:`failfirst.peers.services.endpoints`): the harness's
calls and the worker processes it starts then use the same endpoint.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

ENV_REDIS_HOST = "FAILFIRST_PEERS_REDIS_HOST"
ENV_REDIS_PORT = "FAILFIRST_PEERS_REDIS_PORT"
ENV_AMQP_URL = "FAILFIRST_PEERS_AMQP_URL"
ENV_PG_DSN = "FAILFIRST_PEERS_PG_DSN"
#: The shared servers' endpoints, as the environment named them when this module loaded.
REDIS_HOST = os.environ.get("FAILFIRST_PEERS_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("FAILFIRST_PEERS_REDIS_PORT", "6379"))
#: A database number of its own; keys carry the run's prefix besides.
REDIS_DB = int(os.environ.get("FAILFIRST_PEERS_REDIS_DB", "11"))
AMQP_URL = os.environ.get("FAILFIRST_PEERS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
PG_DSN = os.environ.get("FAILFIRST_PEERS_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


#: Where each server listens (what :func:`reachable` tries).
PORTS = {"redis": (REDIS_HOST, REDIS_PORT), "rabbitmq": ("127.0.0.1", 5672),
         "postgresql": ("127.0.0.1", 5432)}


def reachable(name: str, timeout_s: float = 2.0) -> bool:
    """Whether server ``name`` accepts a connection now."""
    import socket

    try:
        socket.create_connection(PORTS[name], timeout=timeout_s).close()
    except OSError:
        return False
    return True


def redis_host() -> str:
    """The Redis host the run uses now (a fault may point the run at a private server)."""
    return os.environ.get(ENV_REDIS_HOST, REDIS_HOST)


def redis_port() -> int:
    """The Redis port the run uses now (a fault may point the run at a private server)."""
    return int(os.environ.get(ENV_REDIS_PORT, str(REDIS_PORT)))


def amqp_url() -> str:
    """The AMQP URL the run uses now (a fault may point the run at a proxy or a private server)."""
    return os.environ.get(ENV_AMQP_URL, AMQP_URL)


def pg_dsn() -> str:
    """The administrative DSN on which :func:`pg_database` makes a run's database."""
    return os.environ.get(ENV_PG_DSN, PG_DSN)


@contextlib.contextmanager
def endpoints(overrides: dict[str, str]) -> Iterator[None]:
    """Point this process (and the workers it starts afterwards) at other endpoints:
    ``overrides`` maps ``ENV_*`` names to values; the previous values come back after."""
    assert set(overrides) <= {ENV_REDIS_HOST, ENV_REDIS_PORT, ENV_AMQP_URL, ENV_PG_DSN}, overrides
    before = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def redis_url(db: int = REDIS_DB) -> str:
    return f"redis://{redis_host()}:{redis_port()}/{db}"


def redis_client():  # noqa: ANN201 - redis is an optional dependency group
    import redis

    return redis.Redis(host=redis_host(), port=redis_port(), db=REDIS_DB, socket_timeout=10,
                       socket_connect_timeout=5)


def redis_delete_prefix(prefix: str) -> None:
    """Delete the run's own keys (never FLUSHDB: other runs may share the database)."""
    assert len(prefix) >= 6, "a prefix this short could match another run's keys"
    client = redis_client()
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
    finally:
        client.close()


def amqp_delete_queues(names: list[str]) -> None:
    from kombu import Connection

    with Connection(amqp_url(), connect_timeout=5) as conn:
        channel = conn.channel()
        for name in names:
            with contextlib.suppress(Exception):
                channel.queue_delete(name)


def amqp_drain(queue: str, bound: int) -> Iterator[tuple[dict, bytes]]:
    """Every message left in ``queue`` (headers, body), taken off it; at most ``bound``."""
    from kombu import Connection

    with Connection(amqp_url(), connect_timeout=5) as conn:
        channel = conn.channel()
        for _ in range(bound):
            try:
                message = channel.basic_get(queue, no_ack=True)
            except Exception:  # the queue does not exist: nothing left in it
                return
            if message is None:
                return
            yield dict(message.headers or {}), message.body


def amqp_ready(queue: str) -> int:
    """Messages ready in ``queue`` (not delivered to any consumer); 0 when it does not exist."""
    from kombu import Connection

    with Connection(amqp_url(), connect_timeout=5) as conn:
        try:
            return int(conn.channel().queue_declare(queue, passive=True).message_count)
        except Exception:  # the queue does not exist (yet): nothing waits in it
            return 0


@contextlib.contextmanager
def pg_database(name: str) -> Iterator[str]:
    """A database of its own on the shared server; dropped afterwards. Yields its DSN."""
    import psycopg

    assert name.isidentifier() and name.islower()
    admin = psycopg.connect(pg_dsn(), autocommit=True, connect_timeout=5)
    try:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
        base = pg_dsn().rsplit("/", 1)[0]
        yield f"{base}/{name}"
    finally:
        with contextlib.suppress(Exception):
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
