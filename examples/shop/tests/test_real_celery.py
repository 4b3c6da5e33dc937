"""The same tasks on a real Celery worker (the machine's Redis, a database number and a
key prefix of their own), killed with a real SIGKILL after the charge and before the
acknowledgement: the naive task charges twice there too, the fixed one once.

The harness waits for events, never for time: the payments server announces each
request and charge on its stdout and holds its first reply until released, so the kill
lands between the charge and anything the task does after it. Every wait is bounded;
a run that does not reach its fault fails as a setup error saying which event never came.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SHOP = HERE.parent
REDIS = ("127.0.0.1", 6379)
REDIS_DB = 13
#: Bounds on waits for events (never a synchronisation: each wait ends at its event).
EVENT_TIMEOUT_S = 90.0


class SetupError(Exception):
    """The run did not produce the event it needs."""


def need_redis() -> None:
    try:
        socket.create_connection(REDIS, timeout=2).close()
    except OSError:
        reason = f"Redis is not running on {REDIS[0]}:{REDIS[1]}"
        if os.environ.get("FAILFIRST_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " (FAILFIRST_REQUIRE_SERVICES=1)")
        pytest.skip(reason)


class Announcements:
    """The payments server's stdout, line by line (its own buffer: select() must not be
    asked about bytes a buffered reader already took)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.fd = process.stdout.fileno()
        self.pending = b""

    def wait_for(self, prefix: str, what: str) -> str:
        """The next line starting with ``prefix``; earlier lines are passed over."""
        for _ in range(10_000):  # bounded: each iteration takes a line or a read
            if b"\n" in self.pending:
                line, self.pending = self.pending.split(b"\n", 1)
                if line.decode().startswith(prefix):
                    return line.decode().strip()
                continue
            ready, _, _ = select.select([self.fd], [], [], EVENT_TIMEOUT_S)
            if not ready:
                raise SetupError(f"waited {EVENT_TIMEOUT_S:g} s for {what}: it never came")
            data = os.read(self.fd, 4096)
            if not data:
                raise SetupError(f"the payments server exited before {what}")
            self.pending += data
        raise SetupError(f"{what} never came")


class Shop:
    """A payments server, a database, and Celery workers started on demand."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ledger = folder / "ledger.jsonl"
        self.database = folder / "shop.db"
        with sqlite3.connect(self.database) as conn:
            from shop import db

            db.create(conn)
            conn.execute("INSERT INTO orders (id, email, amount_cents) VALUES (42, 'ada@example.com', 2599)")
        self.server = subprocess.Popen(
            [sys.executable, str(HERE / "payments_server.py"), "--ledger", str(self.ledger), "--hold-first"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.announcements = Announcements(self.server)
        port = self.wait_for("port ", "the server's port").split()[1]
        prefix = f"failfirst-shop-{uuid.uuid4().hex[:8]}:"
        self.env = {**os.environ, "PYTHONPATH": str(SHOP), "SHOP_DATABASE": str(self.database),
                    "SHOP_PAYMENTS_URL": f"http://127.0.0.1:{port}",
                    "SHOP_BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{REDIS_DB}",
                    "SHOP_BROKER_PREFIX": prefix, "SHOP_VISIBILITY_TIMEOUT_S": "2"}
        self.workers: list[subprocess.Popen] = []

    def wait_for(self, prefix: str, what: str) -> str:
        return self.announcements.wait_for(prefix, what)

    def worker(self) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "shop.celery_app", "worker", "--pool=solo",
             "--loglevel=WARNING", "--without-heartbeat", "--without-mingle", "--without-gossip",
             "-n", f"shop-{len(self.workers)}@%h"],
            env=self.env, cwd=self.folder, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workers.append(process)
        return process

    def send(self, task: str) -> None:
        program = f"from shop.celery_app import app; app.send_task({task!r}, args=[42])"
        subprocess.run([sys.executable, "-c", program], env=self.env, cwd=self.folder, check=True, timeout=60)

    def charges(self) -> list[dict]:
        if not self.ledger.exists():
            return []
        return [json.loads(line) for line in self.ledger.read_text().splitlines()]

    def close(self) -> None:
        for process in [*self.workers, self.server]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL) if process in self.workers else process.kill()
            process.wait(timeout=30)
        if self.server.stdout:
            self.server.stdout.close()
        if self.server.stdin:
            self.server.stdin.close()
        self._purge()

    def _purge(self) -> None:
        """Delete this run's keys (its own prefix) from the shared Redis."""
        import redis

        client = redis.Redis(host=REDIS[0], port=REDIS[1], db=REDIS_DB)
        keys = list(client.scan_iter(match=self.env["SHOP_BROKER_PREFIX"] + "*", count=1000))
        keys += [k for k in client.scan_iter(match="_kombu.binding.*", count=1000)
                 if self.env["SHOP_BROKER_PREFIX"].encode() in k]
        if keys:
            client.delete(*keys)
        client.close()


def kill_after_the_charge(shop: Shop, task: str) -> str:
    """Run ``task`` on a real worker, SIGKILL it after the charge and before the reply,
    start another worker, and return once the message was delivered again (the second
    request reached the payments API)."""
    first = shop.worker()
    shop.send(task)
    shop.wait_for("charged 42", "the first charge")
    os.killpg(first.pid, signal.SIGKILL)  # the worker dies after the charge, before the ack
    assert first.wait(timeout=60) == -signal.SIGKILL
    shop.server.stdin.write("release\n")
    shop.server.stdin.flush()
    shop.worker()  # Redis delivers the unacknowledged message again (visibility timeout 2 s)
    return shop.wait_for("request 42", "the redelivered task's request")


@pytest.mark.services
def test_the_naive_task_charges_twice_on_a_real_worker(tmp_path):
    need_redis()
    shop = Shop(tmp_path)
    try:
        kill_after_the_charge(shop, "shop.tasks.charge_order")
        shop.wait_for("charged 42", "the second charge")
        assert [c["order"] for c in shop.charges()] == [42, 42], "the double charge"
    finally:
        shop.close()


@pytest.mark.services
def test_the_fixed_task_charges_once_on_a_real_worker(tmp_path):
    need_redis()
    shop = Shop(tmp_path)
    try:
        line = kill_after_the_charge(shop, "shop.tasks.charge_order_fixed")
        assert line == "request 42 order-42", "the retry carries the same idempotency key"
        assert [c["order"] for c in shop.charges()] == [42]
    finally:
        shop.close()
