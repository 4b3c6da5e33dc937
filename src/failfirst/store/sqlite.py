"""The SQLite store: the schema and every SQL statement of failfirst.

All SQL of the SQLite backend lives here behind the interface of
:mod:`failfirst.store.interface`; :mod:`failfirst.store.postgresql` implements the
same interface for workers on many machines. ``:memory:`` serves
simulation; a file in WAL mode serves real runs. Write transactions start with
``BEGIN IMMEDIATE`` so that two workers never both read a job as claimable.
"""

from __future__ import annotations

import json
import os
import pathlib
import sqlite3
import stat
import time
from contextlib import AbstractContextManager
from functools import cache
from typing import Any

from failfirst.store.echo import shown_path
from failfirst.store.interface import Clock, Job, StoreError
from failfirst.store.rows import NOT_JSON, NOT_OBJECT, NOT_TEXT, event_from_row, job_from_row

#: Bump when the schema changes; a database of a newer version is refused.
SCHEMA_VERSION = 2
#: PRAGMA application_id marks a file as a failfirst database ("FFST").
APPLICATION_ID = 0x46465354

SCHEMA_SQL = """
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    type             TEXT    NOT NULL,
    payload          TEXT    NOT NULL,            -- a JSON object
    idempotency_key  TEXT    UNIQUE,
    state            TEXT    NOT NULL CHECK (state IN ('pending','leased','succeeded','dead')),
    run_at_s         REAL    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
    token            INTEGER NOT NULL DEFAULT 0,  -- fencing token of the latest lease
    lease_owner      TEXT,
    lease_expires_s  REAL,
    last_error       TEXT
);
CREATE INDEX jobs_claimable ON jobs (state, run_at_s, id);
CREATE INDEX jobs_lease ON jobs (state, lease_expires_s);

-- One row per claim: the attempt log that reconciliation reads.
CREATE TABLE attempts (
    job_id     INTEGER NOT NULL REFERENCES jobs (id),
    token      INTEGER NOT NULL,
    worker     TEXT    NOT NULL,
    claimed_s  REAL    NOT NULL,
    outcome    TEXT,                              -- NULL until the attempt ends
    PRIMARY KEY (job_id, token)
);

-- One row per applied effect part: the externally visible work of handlers.
CREATE TABLE effects (
    id      INTEGER PRIMARY KEY,
    job_id  INTEGER NOT NULL REFERENCES jobs (id),
    part    TEXT    NOT NULL,
    token   INTEGER NOT NULL,
    amount  INTEGER NOT NULL DEFAULT 0,
    parts   INTEGER NOT NULL DEFAULT 1              -- how many parts the whole effect has
);
CREATE INDEX effects_job ON effects (job_id, part);

CREATE TABLE dead_letters (
    job_id  INTEGER NOT NULL REFERENCES jobs (id),
    reason  TEXT    NOT NULL,
    t       REAL    NOT NULL
);

-- The transactional outbox (FM_009, schema version 2): a handler's messages, written
-- in the transaction of its change. The relay publishes each row, then marks it.
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY,
    message_id    TEXT    NOT NULL UNIQUE,        -- what consumers de-duplicate by
    job_id        INTEGER NOT NULL REFERENCES jobs (id),
    token         INTEGER NOT NULL,               -- the lease whose change it announces
    topic         TEXT    NOT NULL,
    body          TEXT    NOT NULL,               -- a JSON object
    created_s     REAL    NOT NULL,
    published_s   REAL                            -- NULL until the relay marks it
);
CREATE INDEX outbox_unpublished ON outbox (published_s, id);

-- The event log: the history that the checkers judge.
CREATE TABLE events (
    seq    INTEGER PRIMARY KEY,
    t      REAL    NOT NULL,
    actor  TEXT    NOT NULL,
    job    INTEGER,
    kind   TEXT    NOT NULL,
    "from" TEXT,
    "to"   TEXT,
    token  INTEGER,
    data   TEXT    NOT NULL DEFAULT '{}'         -- kind-specific fields, JSON
);
"""

_TABLES = ("events", "outbox", "dead_letters", "effects", "attempts", "jobs")
#: Upgrades in place: from version N, the statements that make version N + 1. Opening
#: an older file runs them in one transaction, so a crash leaves it as it was.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: tuple(s.strip() for s in SCHEMA_SQL[SCHEMA_SQL.index("CREATE TABLE outbox"):
                                           SCHEMA_SQL.index("-- The event log")].split(";")
             if s.strip()),
}
#: Tables and indexes each migration adds: an older file must have all but these.
_ADDED_BY = {1: ("outbox", "outbox_unpublished")}
_NEXT_RUN_AT_SQL = "SELECT min(run_at_s) FROM jobs WHERE state = 'pending'"
_NEXT_EXPIRY_SQL = "SELECT min(lease_expires_s) FROM jobs WHERE state = 'leased'"
_WAKE_TIMES_SQL = (
    "SELECT min(CASE WHEN state = 'pending' THEN run_at_s END), "
    "min(CASE WHEN state = 'leased' THEN lease_expires_s END) FROM jobs"
)
#: One reusable encoder: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


_JOB_COLUMNS = (
    "id, type, payload, idempotency_key, state, run_at_s, attempts, max_attempts, "
    "token, lease_owner, lease_expires_s, last_error"
)
_template_image: bytes | None = None
_JOB_RECORDS_SQL = (
    "SELECT id, state, token, CASE "
    f"WHEN typeof(payload) != 'text' THEN '{NOT_TEXT}' "
    f"WHEN NOT json_valid(payload) THEN '{NOT_JSON}' "
    f"WHEN json_type(payload) != 'object' THEN '{NOT_OBJECT}' END "
    "FROM jobs ORDER BY id"
)


_job = job_from_row  # a payload that is not a JSON object never raises: see rows

class Store:
    """A connection to one failfirst database, with explicit transactions."""

    def __init__(self, conn: sqlite3.Connection, clock: Clock, *, log_in_memory: bool = False) -> None:
        self._conn = conn
        self.clock = clock
        self.in_transaction = False
        #: Bumped by every write to ``jobs`` and every rollback: lets the simulator skip
        #: re-reading wake-up times.
        self.version = 0
        self._wake_version = -1
        self._wake: tuple[float | None, float | None] = (None, None)
        # A simulation's event log lives in memory with the same transactional rules
        # (appended on COMMIT, dropped on ROLLBACK); a file keeps it in its events table.
        self._log: list[dict[str, Any]] | None = [] if log_in_memory else None
        self._pending: list[dict[str, Any]] = []
        #: Transactions begun on this connection: effect events carry it, so a checker
        #: can tell parts committed together from parts committed apart.
        self.tx_count = 0

    # -- opening --------------------------------------------------------------

    @classmethod
    def memory(cls, clock: Clock) -> Store:
        """A fresh in-memory store, copied from a prepared image (fast: simulation opens many)."""
        global _template_image
        if _template_image is None:
            seed = sqlite3.connect(":memory:")
            _initialise(seed)
            _template_image = seed.serialize()
            seed.close()
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.deserialize(_template_image)
        return cls(conn, clock, log_in_memory=True)

    @classmethod
    def open_file(cls, path: str, clock: Clock, *, create: bool = True, read_only: bool = False) -> Store:
        """Open (or create) a database file in WAL mode; refuse foreign or newer files.
        ``read_only``: open an existing failfirst database for reading only (to judge it).

        Everything is checked before anything is written (the switch to WAL included):
        a path that is not a regular file, a file that is not SQLite, another
        application's database (even one that borrows failfirst's application id), a
        damaged or locked one. A refused file is left byte-identical, with no ``-wal``,
        ``-shm`` or ``-journal`` file beside it. The path reaches exactly the file it
        names, whatever characters it holds (``#``, ``?``, ``%``, spaces, newlines).
        """
        shown = shown_path(path)
        full = os.path.abspath(path)  # starts with "/": SQLite never reads it as a URI
        create = create and not read_only
        try:
            st = os.stat(full)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise StoreError(f"{shown}: {exc.strerror}") from None
        if st is None:
            if not create:
                raise StoreError(f"{shown}: no such database")
            directory = os.path.dirname(full)
            if not os.path.isdir(directory):
                raise StoreError(f"{shown}: directory {shown_path(directory)} does not exist")
            if not os.access(directory, os.W_OK):
                raise StoreError(f"{shown}: not writable")
        else:
            if stat.S_ISDIR(st.st_mode):
                raise StoreError(f"{shown}: is a directory, not a database file")
            if not stat.S_ISREG(st.st_mode):  # /dev/null, a FIFO, a socket
                raise StoreError(f"{shown}: not a regular file")
            if not os.access(full, os.R_OK):
                raise StoreError(f"{shown}: not readable")
            if not read_only and not (os.access(full, os.W_OK)
                                      and os.access(os.path.dirname(full), os.W_OK)):
                raise StoreError(f"{shown}: not writable")
            # Not to be created: it must already be a failfirst database, even when empty.
            if not create or st.st_size > 0 or _sidecar_size(full, "-wal") > 0:
                _check_foreign_file(full, shown, empty_ok=create)
        if read_only:
            # A file at rest (no -wal: nobody has it open in WAL mode) is read as immutable,
            # so the look makes no -wal or -shm beside it; a file in use is read through
            # its WAL, as any reader would.
            at_rest = not os.path.lexists(full + "-wal")
            try:
                return cls(sqlite3.connect(readonly_uri(full, immutable=at_rest), uri=True,
                                           isolation_level=None, timeout=30.0), clock)
            except sqlite3.Error as exc:
                raise _sqlite_problem(shown, exc) from None
        # "Created" means this call made the file: two processes may both find it missing,
        # and only the one whose exclusive create wins may remove it again on failure
        # (removing the other's file under it broke that one).
        try:
            created = st is None and _create_exclusively(full)
        except OSError as exc:  # /proc, a read-only file system: refused before anything else
            raise StoreError(f"{shown}: cannot create it ({exc.strerror})") from None
        conn = None
        try:
            conn = sqlite3.connect(full, isolation_level=None, timeout=30.0)
            _switch_to_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe in WAL
            conn.execute("PRAGMA busy_timeout=30000")
            if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    _initialise(conn, in_transaction=True)
                conn.execute("COMMIT")
            _migrate(conn)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if created:  # leave nothing behind of a file this call made
                for suffix in ("", *_SIDECARS):
                    _remove_quietly(full + suffix)
            raise _sqlite_problem(shown, exc) from None
        return cls(conn, clock)

    def reset(self, clock: Clock) -> None:
        """Empty every table, keeping the connection and its prepared statements: the
        explorer runs thousands of schedules, and preparing statements anew per run
        would cost more than running them."""
        assert not self.in_transaction
        for table in _TABLES:
            self._conn.execute(f"DELETE FROM {table}")  # rowids restart at 1: seq stays 1-based
        self.clock = clock
        self.version += 1
        self.tx_count = 0
        if self._log is not None:
            self._log = []
        self._pending.clear()

    def close(self) -> None:
        self._conn.close()

    # -- a judge's view and a run's lock ----------------------------------------

    def snapshot(self) -> AbstractContextManager[Store]:
        """``with store.snapshot():`` one read transaction (``BEGIN DEFERRED`` and a first
        read): in WAL mode every read inside sees the same commit, whatever other
        processes write meanwhile. Nothing may be written inside."""
        return _Snapshot(self)

    def hold_run_lock(self) -> None:
        """A SQLite file has no lock a run could hold without risk: a second descriptor
        on the file would drop SQLite's own POSIX locks when it closes. The owner record
        in the history decides (a file is used on one host: the owner's process is
        looked up there)."""
        return None

    def run_lock_held(self) -> None:
        return None

    def image(self) -> bytes:
        """The whole database as bytes: for comparing states (recovery idempotence)."""
        return self._conn.serialize()

    # -- transactions ---------------------------------------------------------

    def transaction(self) -> AbstractContextManager[Store]:
        """``with store.transaction():`` BEGIN IMMEDIATE ... COMMIT; any exception
        (a crash included) rolls everything back, the event log with it."""
        return _Transaction(self)

    def _begin(self) -> None:
        assert not self.in_transaction, "transactions do not nest"
        self._conn.execute("BEGIN IMMEDIATE")
        self.in_transaction = True
        self.tx_count += 1

    def _end(self, commit: bool) -> None:
        try:
            if commit:
                self._conn.execute("COMMIT")
                if self._log is not None:
                    self._log.extend(self._pending)
            else:
                self._conn.execute("ROLLBACK")
                self.version += 1  # what was read inside the transaction is gone
        finally:
            self._pending.clear()
            self.in_transaction = False

    def _write(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        assert self.in_transaction, "every write happens inside a transaction"
        return self._conn.execute(sql, params)

    # -- jobs -----------------------------------------------------------------

    def insert_job(
        self, type_: str, payload_json: str, idempotency_key: str | None,
        run_at_s: float, max_attempts: int,
    ) -> int:
        cur = self._write(
            "INSERT INTO jobs (type, payload, idempotency_key, state, run_at_s, max_attempts) "
            "VALUES (?, ?, ?, 'pending', ?, ?)",
            (type_, payload_json, idempotency_key, run_at_s, max_attempts),
        )
        self.version += 1
        return cur.lastrowid

    def job_by_key(self, idempotency_key: str) -> int | None:
        row = self._conn.execute(
            "SELECT id FROM jobs WHERE idempotency_key = ?", (idempotency_key,)
        ).fetchone()
        return row[0] if row else None

    def job(self, job_id: int) -> Job | None:
        row = self._conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def jobs(self) -> list[Job]:
        return [_job(r) for r in self._conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY id")]

    def job_states(self) -> dict[int, str]:
        """Job id -> state, for every job (what checkers compare with the history)."""
        return dict(self._conn.execute("SELECT id, state FROM jobs").fetchall())

    def job_records(self) -> list[tuple[int, str, int, str | None]]:
        """(id, state, token, why the payload is not a JSON object or None) of every job,
        in id order: what the checkers compare with the history. The payloads are judged
        here, in SQL, so a well-formed store costs no decoding."""
        return self._conn.execute(_JOB_RECORDS_SQL).fetchall()

    def job_state(self, job_id: int) -> tuple[str, int] | None:
        return self._conn.execute("SELECT state, token FROM jobs WHERE id = ?", (job_id,)).fetchone()

    def has_claimable(self, now_s: float) -> bool:
        """Is some pending job due? (A look before taking the write lock.)"""
        if self._log is None:
            return self._conn.execute(
                "SELECT 1 FROM jobs WHERE state = 'pending' AND run_at_s <= ? LIMIT 1", (now_s,)
            ).fetchone() is not None
        run_at_s = self._wake_times()[0]
        return run_at_s is not None and run_at_s <= now_s

    def has_expired_lease(self, now_s: float) -> bool:
        """Has some lease ended at or before ``now_s``? (The reaper's look before locking.)"""
        if self._log is None:
            return bool(self.expired_leases(now_s, 1))
        expires_s = self._wake_times()[1]
        return expires_s is not None and expires_s <= now_s

    def next_claimable_job(self, now_s: float) -> Job | None:
        """The pending job that is due first (FIFO by run_at, then id)."""
        row = self._conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = 'pending' AND run_at_s <= ? "
            "ORDER BY run_at_s, id LIMIT 1", (now_s,),
        ).fetchone()
        return _job(row) if row else None

    def next_run_at_s(self) -> float | None:
        """When the earliest pending job becomes claimable (None: nothing pending)."""
        if self._log is None:  # a file: other processes write it too, so never memoise
            return self._conn.execute(_NEXT_RUN_AT_SQL).fetchone()[0]
        return self._wake_times()[0]

    def expired_leases(self, now_s: float, limit: int) -> list[tuple[int, int, int, int]]:
        """(id, token, attempts, max_attempts) of leases that expired at or before now_s."""
        return self._conn.execute(
            "SELECT id, token, attempts, max_attempts FROM jobs "
            "WHERE state = 'leased' AND lease_expires_s <= ? ORDER BY lease_expires_s, id LIMIT ?",
            (now_s, limit),
        ).fetchall()

    def next_lease_expiry_s(self) -> float | None:
        """When the earliest lease ends (None: nothing leased)."""
        if self._log is None:
            return self._conn.execute(_NEXT_EXPIRY_SQL).fetchone()[0]
        return self._wake_times()[1]

    def _wake_times(self) -> tuple[float | None, float | None]:
        # Idle actors ask after every step; the answers change only when ``jobs`` does,
        # which bumps ``version`` (a rollback included). One query answers both.
        if self._wake_version != self.version:
            self._wake_version = self.version
            self._wake = self._conn.execute(_WAKE_TIMES_SQL).fetchone()
        return self._wake

    def compare_and_set_state(
        self, job_id: int, from_state: str, to_state: str, token: int | None, *,
        bump_token: bool, columns: dict[str, Any],
    ) -> int | None:
        """Move a job from ``from_state`` to ``to_state`` if it is there (and, when ``token``
        is given, holds that token); return its token afterwards, or None when refused.
        Only :func:`failfirst.processor.transitions.apply` calls this."""
        sets = "".join(f", {name} = ?" for name in columns)
        sql = f"UPDATE jobs SET state = ?, token = token + ?{sets} WHERE id = ? AND state = ?"
        params: tuple = (to_state, int(bump_token), *columns.values(), job_id, from_state)
        if token is None:  # the token is not known: read it back (RETURNING costs ~5 us more)
            row = self._write(sql + " RETURNING token", params).fetchone()
            new_token = None if row is None else row[0]
        else:
            done = self._write(sql + " AND token = ?", (*params, token)).rowcount == 1
            new_token = token + int(bump_token) if done else None
        if new_token is not None:
            self.version += 1
        return new_token

    def extend_lease(self, job_id: int, token: int | None, expires_s: float) -> bool:
        """Heartbeat: push the lease deadline out; False when the lease is no longer ours."""
        self.version += 1
        if token is None:
            cur = self._write(
                "UPDATE jobs SET lease_expires_s = ? WHERE id = ? AND state = 'leased'",
                (expires_s, job_id),
            )
        else:
            cur = self._write(
                "UPDATE jobs SET lease_expires_s = ? WHERE id = ? AND state = 'leased' AND token = ?",
                (expires_s, job_id, token),
            )
        return cur.rowcount == 1

    def leases_ending_after(self, until_s: float, limit: int) -> list[tuple[int, int]]:
        """(id, token) of leases whose deadline lies beyond ``until_s`` (or is missing):
        leases taken without lease expiry, which would otherwise never end."""
        return self._conn.execute(
            "SELECT id, token FROM jobs WHERE state = 'leased' "
            "AND (lease_expires_s IS NULL OR lease_expires_s > ?) ORDER BY id LIMIT ?",
            (until_s, limit),
        ).fetchall()

    def job_leased_by(self, owner: str) -> int | None:
        row = self._conn.execute(
            # The newest lease: a restarted worker's old lease may not have expired yet.
            "SELECT id FROM jobs WHERE state = 'leased' AND lease_owner = ? "
            "ORDER BY lease_expires_s DESC, id DESC LIMIT 1",
            (owner,),
        ).fetchone()
        return row[0] if row else None

    def counts_by_state(self) -> dict[str, int]:
        return dict(self._conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())

    # -- attempts, effects, dead letters --------------------------------------

    def insert_attempt(self, job_id: int, token: int, worker: str, claimed_s: float) -> None:
        self._write(
            "INSERT INTO attempts (job_id, token, worker, claimed_s) VALUES (?, ?, ?, ?)",
            (job_id, token, worker, claimed_s),
        )

    def end_attempt(self, job_id: int, token: int, outcome: str) -> None:
        self._write(
            "UPDATE attempts SET outcome = ? WHERE job_id = ? AND token = ? AND outcome IS NULL",
            (outcome, job_id, token),
        )

    def attempts(self, job_id: int | None = None) -> list[tuple[int, int, str, float, str | None]]:
        sql = "SELECT job_id, token, worker, claimed_s, outcome FROM attempts"
        if job_id is None:
            return self._conn.execute(sql + " ORDER BY job_id, token").fetchall()
        return self._conn.execute(sql + " WHERE job_id = ? ORDER BY token", (job_id,)).fetchall()

    def insert_effect(
        self, job_id: int, part: str, token: int, amount: int, parts: int, *, once: bool,
    ) -> bool:
        """Write one effect part. With ``once``, the effect is keyed by (job, part):
        a second write of the same part is a no-op and returns False."""
        if once:
            cur = self._write(
                "INSERT INTO effects (job_id, part, token, amount, parts) SELECT ?, ?, ?, ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM effects WHERE job_id = ? AND part = ?)",
                (job_id, part, token, amount, parts, job_id, part),
            )
            return cur.rowcount == 1
        self._write(
            "INSERT INTO effects (job_id, part, token, amount, parts) VALUES (?, ?, ?, ?, ?)",
            (job_id, part, token, amount, parts),
        )
        return True

    def effect_parts_expected(self, job_id: int) -> dict[int, int]:
        """Lease token -> the number of parts its effect declared."""
        return dict(self._conn.execute(
            "SELECT token, max(parts) FROM effects WHERE job_id = ? GROUP BY token", (job_id,)
        ).fetchall())

    def effects(self, job_id: int | None = None) -> list[tuple[int, str, int, int]]:
        """(job_id, part, token, amount) rows, in the order they were written."""
        sql = "SELECT job_id, part, token, amount FROM effects"
        if job_id is None:
            return self._conn.execute(sql + " ORDER BY id").fetchall()
        return self._conn.execute(sql + " WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()

    def delete_effect_part(self, job_id: int, part: str, token: int) -> int:
        """Reconciliation only: remove a part written by an attempt that never finished."""
        return self._write(
            "DELETE FROM effects WHERE job_id = ? AND part = ? AND token = ?", (job_id, part, token)
        ).rowcount

    def insert_dead_letter(self, job_id: int, reason: str, t: float) -> None:
        self._write("INSERT INTO dead_letters (job_id, reason, t) VALUES (?, ?, ?)", (job_id, reason, t))

    def dead_letters(self) -> list[tuple[int, str, float]]:
        return self._conn.execute("SELECT job_id, reason, t FROM dead_letters ORDER BY rowid").fetchall()

    def delete_dead_letter(self, job_id: int) -> None:
        self._write("DELETE FROM dead_letters WHERE job_id = ?", (job_id,))

    # -- the transactional outbox (FM_009) -----------------------------------------

    def insert_outbox_message(
        self, message_id: str, job_id: int, token: int, topic: str, body_json: str, created_s: float,
    ) -> None:
        """One outbox row, inside the transaction that commits the change it announces."""
        self._write(
            "INSERT INTO outbox (message_id, job_id, token, topic, body, created_s) "
            "VALUES (?, ?, ?, ?, ?, ?)", (message_id, job_id, token, topic, body_json, created_s))

    def unpublished_outbox(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` outbox rows the relay has not marked, oldest first, as messages."""
        rows = self._conn.execute(
            "SELECT message_id, job_id, token, topic, body FROM outbox "
            "WHERE published_s IS NULL ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [{"id": r[0], "job": r[1], "token": r[2], "topic": r[3], "body": json.loads(r[4])}
                for r in rows]

    def next_outbox_s(self) -> float | None:
        """When the oldest unmarked outbox row was written (the relay's wake-up), or None."""
        return self._conn.execute(
            "SELECT min(created_s) FROM outbox WHERE published_s IS NULL").fetchone()[0]

    def mark_outbox_published(self, message_id: str, published_s: float) -> bool:
        """Mark a row published; False when it already was."""
        return self._write(
            "UPDATE outbox SET published_s = ? WHERE message_id = ? AND published_s IS NULL",
            (published_s, message_id)).rowcount == 1

    def outbox(self) -> list[tuple[str, int, int, str, float | None]]:
        """Every outbox row: (message id, job, token, topic, published_s)."""
        return self._conn.execute(
            "SELECT message_id, job_id, token, topic, published_s FROM outbox ORDER BY id").fetchall()

    # -- the event log --------------------------------------------------------

    def append_event(
        self, *, actor: str, job: int | None, kind: str, from_state: str | None = None,
        to_state: str | None = None, token: int | None = None, **data: Any,
    ) -> None:
        """Record one event. Inside a transaction it commits or rolls back with it;
        outside (a crash, a pause, a downstream call) it is written on its own."""
        t = self.clock.now_s()
        if self._log is not None:
            event = {"seq": len(self._log) + len(self._pending) + 1, "t": t, "actor": actor,
                     "job": job, "kind": kind, "from": from_state, "to": to_state, "token": token}
            event.update(data)
            (self._pending if self.in_transaction else self._log).append(event)
            return
        self._conn.execute(
            'INSERT INTO events (t, actor, job, kind, "from", "to", token, data) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (t, actor, job, kind, from_state, to_state, token,
             json.dumps(data, sort_keys=True, separators=(",", ":"))),
        )

    def events(self) -> list[dict[str, Any]]:
        """The committed history, in order."""
        if self._log is not None:
            return list(self._log)
        # A damaged row is decoded, never raised: the checkers report it (rows.MALFORMED).
        return [event_from_row(row) for row in self._conn.execute(
            'SELECT seq, t, actor, job, kind, "from", "to", token, data FROM events ORDER BY seq')]

    # -- batches: several jobs per transaction (real runs, see failfirst.processor.queue) --------

    def next_claimable_jobs(self, now_s: float, limit: int) -> list[Job]:
        """Up to ``limit`` pending jobs that are due, in claim order (FIFO by run_at, id)."""
        rows = self._conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = 'pending' AND run_at_s <= ? "
            "ORDER BY run_at_s, id LIMIT ?", (now_s, limit),
        ).fetchall()
        return [_job(r) for r in rows]

    def compare_and_set_states(
        self, from_state: str, to_state: str, rows: list[tuple[int, int, tuple[Any, ...]]], *,
        bump_token: bool, columns: tuple[str, ...],
    ) -> int:
        """:meth:`compare_and_set_state` for many jobs: each row is (job id, the token the
        job must hold, values of ``columns``); a job moves only from ``from_state`` with
        exactly that token. Returns how many moved. Only
        :func:`failfirst.processor.transitions.apply_many` calls this."""
        sets = "".join(f", {name} = ?" for name in columns)
        bump = int(bump_token)
        assert self.in_transaction, "every write happens inside a transaction"
        cur = self._conn.executemany(
            f"UPDATE jobs SET state = ?, token = token + ?{sets} "
            "WHERE id = ? AND state = ? AND token = ?",
            [(to_state, bump, *values, job_id, from_state, token) for job_id, token, values in rows],
        )
        self.version += 1
        return cur.rowcount

    def insert_attempts(self, rows: list[tuple[int, int, str, float]]) -> None:
        """``insert_attempt`` for many (job id, token, worker, claimed_s) rows."""
        assert self.in_transaction, "every write happens inside a transaction"
        self._conn.executemany(
            "INSERT INTO attempts (job_id, token, worker, claimed_s) VALUES (?, ?, ?, ?)", rows)

    def end_attempts(self, rows: list[tuple[int, int]], outcome: str) -> None:
        """``end_attempt`` for many (job id, token) rows."""
        assert self.in_transaction, "every write happens inside a transaction"
        self._conn.executemany(
            "UPDATE attempts SET outcome = ? WHERE job_id = ? AND token = ? AND outcome IS NULL",
            [(outcome, job_id, token) for job_id, token in rows],
        )

    def insert_effects_once(self, rows: list[tuple[int, str, int, int, int]]) -> int:
        """:meth:`insert_effect` with ``once`` for many (job id, part, token, amount, parts)
        rows; returns how many were new (a part already written is not written again)."""
        assert self.in_transaction, "every write happens inside a transaction"
        return self._conn.executemany(
            "INSERT INTO effects (job_id, part, token, amount, parts) SELECT ?, ?, ?, ?, ? "
            "WHERE NOT EXISTS (SELECT 1 FROM effects WHERE job_id = ? AND part = ?)",
            [(job_id, part, token, amount, parts, job_id, part)
             for job_id, part, token, amount, parts in rows],
        ).rowcount

    def append_events(
        self, rows: list[tuple[str, int | None, str, str | None, str | None, int | None,
                               dict[str, Any]]],
    ) -> None:
        """:meth:`append_event` for many (actor, job, kind, from, to, token, data) rows,
        with one timestamp; in a file, one executemany instead of a statement each."""
        if self._log is not None or not self.in_transaction:
            for actor, job, kind, from_state, to_state, token, data in rows:
                self.append_event(actor=actor, job=job, kind=kind, from_state=from_state,
                                  to_state=to_state, token=token, **data)
            return
        t = self.clock.now_s()
        self._conn.executemany(
            'INSERT INTO events (t, actor, job, kind, "from", "to", token, data) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(t, actor, job, kind, from_state, to_state, token, _encode(data) if data else "{}")
             for actor, job, kind, from_state, to_state, token, data in rows],
        )


class _Transaction:
    """The context manager of :meth:`Store.transaction` (a class: it runs on every step)."""

    __slots__ = ("store",)

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> Store:
        self.store._begin()
        return self.store

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        self.store._end(commit=exc_type is None)
        return False


class _Snapshot:
    """The context manager of :meth:`Store.snapshot`."""

    __slots__ = ("store",)

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> Store:
        assert not self.store.in_transaction, "a snapshot is its own transaction"
        conn = self.store._conn
        conn.execute("BEGIN DEFERRED")
        # A deferred transaction takes its snapshot at its first read: take it now.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return self.store

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        self.store._conn.execute("ROLLBACK")  # nothing was written: ending it is enough
        return False


def _initialise(conn: sqlite3.Connection, in_transaction: bool = False) -> None:
    statements = [s for s in SCHEMA_SQL.split(";") if s.strip()]
    for statement in statements:
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    if not in_transaction:
        conn.commit()


#: What SQLite may put beside a database file.
_SIDECARS = ("-wal", "-shm", "-journal")
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: How long the read-only check waits for another process's lock before saying so.
PROBE_BUSY_TIMEOUT_S = 2.0


def readonly_uri(path: str, *, immutable: bool = False) -> str:
    """A read-only SQLite URI naming exactly ``path``: every character a URI gives a
    meaning to (``#``, ``?``, ``%``, a space, a newline) is percent-encoded."""
    uri = pathlib.Path(os.path.abspath(path)).as_uri()  # file:///..., percent-encoded
    return uri + ("?mode=ro&immutable=1" if immutable else "?mode=ro")


#: SQLite answers a journal-mode switch that meets another connection's lock with
#: SQLITE_BUSY at once (the busy handler is not consulted): retry it this often.
WAL_SWITCH_ATTEMPTS = 3000
WAL_SWITCH_PAUSE_S = 0.01


def _create_exclusively(path: str) -> bool:
    """Make ``path`` an empty file; False when another process made it first."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """``PRAGMA journal_mode=WAL``, waiting (bounded: 30 s) for a process that is
    creating or switching the same new file at this very moment."""
    for attempt in range(WAL_SWITCH_ATTEMPTS):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = (getattr(exc, "sqlite_errorname", "") or "").startswith("SQLITE_BUSY")
            if not busy or attempt == WAL_SWITCH_ATTEMPTS - 1:
                raise
            time.sleep(WAL_SWITCH_PAUSE_S)  # real-time: another process holds the file's lock


def _sidecar_size(path: str, suffix: str) -> int:
    try:
        return os.stat(path + suffix).st_size
    except OSError:
        return 0


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


@cache
def _expected_schema(version: int = SCHEMA_VERSION) -> dict[str, tuple[str, ...]]:
    """Table or index name -> its columns (an index: ``("index", table)``), as
    :data:`SCHEMA_SQL` makes them — for an older ``version``, without what the
    migrations since added."""
    conn = sqlite3.connect(":memory:")
    try:
        _initialise(conn)
        schema = _schema_of(conn)
    finally:
        conn.close()
    for since in range(version, SCHEMA_VERSION):
        for name in _ADDED_BY[since]:
            del schema[name]
    return schema


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a file of an older schema version to :data:`SCHEMA_VERSION`, in place, one
    transaction per version step (``_check_foreign_file`` has checked its tables)."""
    for _ in range(SCHEMA_VERSION):  # bounded: one pass per version step
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] == version:  # not raced
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _schema_of(conn: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for kind, name, table in conn.execute(
        "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall():
        if kind == "table":
            out[name] = tuple(r[0] for r in conn.execute(
                "SELECT name FROM pragma_table_info(?) ORDER BY cid", (name,)))
        else:
            out[name] = (kind, table)
    return out


def _sqlite_problem(shown: str, exc: sqlite3.Error) -> StoreError:
    """One true sentence for a SQLite error met while opening ``shown``."""
    code = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StoreError(f"{shown}: the database is locked by another process (try again later)")
    if code.startswith("SQLITE_NOTADB") or "not a database" in text:
        return StoreError(f"{shown}: not a SQLite database")
    if code.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return StoreError(f"{shown}: the database file is damaged ({text})")
    return StoreError(f"{shown}: cannot be used as a SQLite database ({text})")


def _check_foreign_file(path: str, shown: str | None = None, *, empty_ok: bool = False) -> None:
    """Refuse, without writing, a file that is not a failfirst database of this schema.

    Read-only and WAL-aware (a run killed before its checkpoint leaves its schema in
    the ``-wal`` file); a WAL file nobody has open is read as immutable, so SQLite
    makes no ``-wal`` or ``-shm`` file for the look. (The look needs SQLite's shared
    memory only when a ``-wal`` file is there without its ``-shm``; a refused file
    loses that ``-shm`` again. A read-only look never makes a ``-journal``.)

    ``empty_ok``: an empty SQLite database (no application id, no version, no table) is
    accepted, to be made a failfirst database: it is what another process creating the
    same new file shows before its first transaction commits."""
    shown = shown or shown_path(path)
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise StoreError(f"{shown}: {exc.strerror}") from None
    if header and (len(header) < 100 or not header.startswith(_SQLITE_MAGIC)):
        raise StoreError(f"{shown}: not a SQLite database")
    wal_mode = len(header) == 100 and header[18] == 2
    before = {s for s in _SIDECARS if os.path.lexists(path + s)}
    at_rest = wal_mode and "-wal" not in before
    accepted = False
    try:
        try:
            accepted = _probe(path, shown, immutable=at_rest, empty_ok=empty_ok)
        except sqlite3.Error:
            if not (at_rest and os.path.lexists(path + "-wal")):
                raise
            # Not at rest after all: another process is creating or writing it right now
            # (its -wal appeared). Look again as any reader of a live file would.
            accepted = _probe(path, shown, immutable=False, empty_ok=empty_ok)
    except sqlite3.Error as exc:
        raise _sqlite_problem(shown, exc) from None
    finally:
        # A refused file is left as it was found: the look makes a -shm only beside a -wal
        # that had none; that one goes again. Nothing else is removed: a -wal or -shm that
        # appeared meanwhile is another process's (one creating this very file).
        if not accepted and "-wal" in before and "-shm" not in before:
            _remove_quietly(path + "-shm")


def _probe(path: str, shown: str, *, immutable: bool, empty_ok: bool) -> bool:
    """The read-only look of :func:`_check_foreign_file`: True when accepted; StoreError
    when refused; sqlite3.Error when SQLite could not answer."""
    probe = sqlite3.connect(readonly_uri(path, immutable=immutable), uri=True,
                            timeout=PROBE_BUSY_TIMEOUT_S)
    try:
        app_id = probe.execute("PRAGMA application_id").fetchone()[0]
        version = probe.execute("PRAGMA user_version").fetchone()[0]
        if empty_ok and app_id == 0 and version == 0 and not _schema_of(probe):
            return True
        if app_id != APPLICATION_ID:
            raise StoreError(f"{shown}: not a failfirst database (application_id {app_id:#x})")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{shown}: schema version {version} is newer than this failfirst ({SCHEMA_VERSION})")
        if version < 1 or _schema_of(probe) != _expected_schema(version):
            raise StoreError(f"{shown}: not a failfirst database (failfirst's application id, "
                             f"but not its schema version {SCHEMA_VERSION} tables)")
        verdict = probe.execute("PRAGMA quick_check(1)").fetchone()[0]
        if verdict != "ok":
            raise StoreError(f"{shown}: the database file is damaged ({verdict})")
        return True
    finally:
        probe.close()
