"""Where a real run works: a store named by a SQLite path or a store URL.

``--db PATH`` names a SQLite file; ``--store URL`` names ``sqlite:PATH`` or a
PostgreSQL database. This module says which is which, how a message shows the store
(a path escaped, a URL without its password), which command finishes a run on it,
and opens an existing one for ``resume`` and ``check``.
"""

from __future__ import annotations

import os

from failfirst.store import JobStore, open_store, parse_store_url
from failfirst.store.clock import RealClock
from failfirst.store.paths import shown as shown_path
from failfirst.store.sqlite import Store


def is_store_url(db: str) -> bool:
    return db.startswith(("sqlite:", "postgresql://", "postgres://"))


def resolved(db: str) -> str:
    """A path made absolute (children and messages agree on it); a URL as given."""
    return db if is_store_url(db) else os.path.abspath(db)


def shown(db: str) -> str:
    """How messages and results name the store: a URL without its password, a path
    escaped when it holds a character that would break a one-line message."""
    return parse_store_url(db).redacted if is_store_url(db) else shown_path(db)


def resume_command(db: str) -> str:
    """The command that finishes a run on this store."""
    return f"failfirst resume {'--store' if is_store_url(db) else '--db'} {shown(db)}"


def open_existing(db: str, *, read_only: bool = False) -> JobStore:
    """The store of an earlier run: an existing failfirst database, refused (StoreError,
    nothing written) when it is anything else. ``read_only`` (``check``): nothing is
    created, migrated or written, whatever names the store."""
    if is_store_url(db):
        return open_store(db, None, create=False, read_only=read_only)
    return Store.open_file(db, RealClock(), create=False, read_only=read_only)
