"""huey's side of the throughput benchmark: a SqliteHuey app whose one task writes one row.

Imported by the benchmark (to enqueue) and by the consumer process it starts (to
run the tasks), so the task has the same name on both sides. The file comes from
the environment variable ``FAILFIRST_HUEY_DB``.

Durability is set to match failfirst's store: WAL with ``synchronous=NORMAL``
(huey's own default is WAL with SQLite's default ``synchronous=FULL``, an fsync
per commit, which would make this comparison about the disk, not the queue).
"""

from __future__ import annotations

import os
import sqlite3

from huey import SqliteHuey
from huey.storage import SqliteStorage

DB = os.environ.get("FAILFIRST_HUEY_DB", "huey-bench.db")
SYNCHRONOUS = "NORMAL"


class NormalSyncStorage(SqliteStorage):
    """huey's SqliteStorage, with synchronous=NORMAL on every connection it opens."""

    def _create_connection(self) -> sqlite3.Connection:
        conn = super()._create_connection()
        conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        return conn


huey = SqliteHuey("bench", filename=DB, storage_class=NormalSyncStorage, journal_mode="wal")

_effects: dict[str, object] = {}


def effects_connection() -> sqlite3.Connection:
    """One connection per process (a forked worker must not share its parent's)."""
    if _effects.get("pid") != os.getpid():
        conn = sqlite3.connect(DB, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        _effects.update(pid=os.getpid(), conn=conn)
    conn = _effects["conn"]
    assert isinstance(conn, sqlite3.Connection)
    return conn


def create_effects_table() -> None:
    effects_connection().execute(
        "CREATE TABLE IF NOT EXISTS effects (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")


@huey.task()
def write_one_row(n: int) -> None:
    """The same effect as failfirst's handler: one row, carrying the job's number."""
    effects_connection().execute("INSERT INTO effects (n) VALUES (?)", (n,))


def run_consumer(workers: int) -> None:
    """huey's consumer with ``workers`` worker processes (no periodic tasks)."""
    huey.create_consumer(workers=workers, worker_type="process", periodic=False).run()
