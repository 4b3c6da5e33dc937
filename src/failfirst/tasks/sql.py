"""The task's SQL database: SQLite, reached through the seam the task already uses.

A task gets its connection from one function of its own app (``shop.db.connect``); a
proof points that function at a fresh database per run (:class:`SQLite` names it with
``connect="shop.db:connect"``), and the connection it hands out is the standard
library's, wrapped so that each ``commit`` (an explicit one, or the one ``with conn:``
makes) is two fault points and an event:

- ``sql_commit``: before the commit; a crash here rolls the open transaction back, as
  the database does for a connection whose process died;
- ``sql_committed``: after it; a crash here leaves the commit in place and the task
  never learns of it.

Commits count when they go through the connection (``conn.commit()``, ``with conn:``);
a cursor's own ``cursor.connection.commit()`` reaches the standard library's object and
is not a fault point.

Each commit is a ``sql_commit`` event with the rows it inserted into the tables named in
``effects``; a row's identity (``effects={"receipts": "order_id"}``: its ``order_id``)
inserted more than once over a run is an effect applied twice (INV_001, see
:mod:`failfirst.tasks.checks`). The rows are collected by triggers into a side table in
the same transaction, so a rolled-back insert never counts.

Every run's database is SQLite in memory (shared cache, one per run), and a connection
never waits for a lock: a conflicting write fails at once with SQLite's "locked" error,
which the task sees as it would see ``database is locked``, since a simulated worker
cannot wait for another to move.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from failfirst.processor.worker import Point
from failfirst.tasks import greenlets

if TYPE_CHECKING:
    from failfirst.tasks.world import Attempt

_ROWS_TABLE = "_failfirst_rows"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RUNS = itertools.count(1)


@dataclass(frozen=True)
class SQLite:
    """The task's database: its ``schema`` (SQL script), ``setup`` (a script or a
    function of a connection: the rows a test starts from), the seam the task connects
    through (``"module:function"``), and ``effects``: table -> the column that names a
    row (each such row inserted at most once in a run)."""

    schema: str
    connect: str
    setup: str | Callable[[sqlite3.Connection], None] = ""
    effects: dict[str, str] = field(default_factory=dict)
    row_factory: Any = None

    def __post_init__(self) -> None:
        if ":" not in self.connect:
            raise ValueError(f"SQLite: connect must be 'module:function', got {self.connect!r}")
        for table, column in self.effects.items():
            if not (_NAME.match(table) and _NAME.match(column)):
                raise ValueError(f"SQLite: effects: {table}.{column} is not a plain SQL name")


class Database:
    """One run's database: made from the spec, kept open by an anchor connection."""

    def __init__(self, spec: SQLite) -> None:
        self.spec = spec
        self.uri = f"file:failfirst-run-{next(_RUNS)}?mode=memory&cache=shared"
        self._anchor = sqlite3.connect(self.uri, uri=True, isolation_level=None)
        self._anchor.executescript(spec.schema)
        if callable(spec.setup):
            spec.setup(self._anchor)
        elif spec.setup:
            self._anchor.executescript(spec.setup)
        self._anchor.execute(f"CREATE TABLE {_ROWS_TABLE} (tbl TEXT NOT NULL, ident TEXT)")
        for table, column in spec.effects.items():
            self._anchor.execute(
                f"CREATE TRIGGER _failfirst_{table} AFTER INSERT ON {table} BEGIN "
                f"INSERT INTO {_ROWS_TABLE} VALUES ('{table}', NEW.{column}); END")

    def connect(self, attempt: Attempt | None) -> Connection:
        raw = sqlite3.connect(self.uri, uri=True, timeout=0, check_same_thread=False)
        if self.spec.row_factory is not None:
            raw.row_factory = self.spec.row_factory
        return Connection(raw, attempt)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the run's database (for a test's own assertions on the final state)."""
        return self._anchor.execute(sql, params).fetchall()

    def close(self) -> None:
        self._anchor.close()


class Connection:
    """A sqlite3 connection whose commits are fault points and events; everything else
    is the standard library's."""

    def __init__(self, raw: sqlite3.Connection, attempt: Attempt | None) -> None:
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "_attempt", attempt)
        if attempt is not None and greenlets.inside_worker():
            greenlets.on_crash(self._die)

    def _die(self) -> None:
        """The worker process died: the database rolls its open transaction back."""
        try:
            self._raw.rollback()
            self._raw.close()
        except sqlite3.ProgrammingError:
            pass  # already closed by the task

    def commit(self) -> None:
        attempt = self._attempt
        if attempt is None or not self._raw.in_transaction:
            self._raw.commit()
            return
        greenlets.step(Point("sql_commit", attempt.job))
        rows = self._raw.execute(f"SELECT tbl, ident FROM {_ROWS_TABLE}").fetchall()
        if rows:
            self._raw.execute(f"DELETE FROM {_ROWS_TABLE}")
        changes = self._raw.total_changes
        self._raw.commit()
        attempt.event(attempt.worker, "sql_commit", rows=[[t, str(i)] for t, i in rows],
                      changes=changes - len(rows))
        for table, ident in rows:
            attempt.event("db", "applied", service="db", effect=f"insert {table}",
                          ref=f"{table}:{ident}", identity=str(ident), key=None, route=f"INSERT {table}")
        greenlets.step(Point("sql_committed", attempt.job))

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        # As sqlite3.Connection's: commit on success, roll back on an exception.
        if exc_type is None:
            self.commit()
        else:
            self._raw.rollback()
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._raw, name, value)
