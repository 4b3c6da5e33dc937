"""Open the store a URL names: the one place that picks a backend.

:mod:`failfirst.store.url` parses a URL and knows no backend; the backends import the
parser. This module imports both, so no import runs in a circle.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from failfirst.store.interface import Clock, JobStore, StoreError
from failfirst.store.url import MEMORY, StoreURL, parse_store_url


def require_driver(url: StoreURL) -> None:
    """One line naming the extra to install when a postgresql:// store has no driver:
    psycopg is the ``postgresql`` extra, so a reader on SQLite does not install it."""
    if importlib.util.find_spec("psycopg") is None:
        raise StoreError(f"store URL {url.redacted}: PostgreSQL needs psycopg, which is not installed: "
                         "pip install 'failfirst[postgresql]'")


def open_store(url: str | StoreURL, clock: Clock | None = None, *, create: bool = True,
               read_only: bool = False) -> JobStore:
    """Open the store a URL names, for real runs (or, for ``sqlite::memory:``, a fresh
    in-memory store). ``clock`` None: the backend's own clock for real runs — the wall
    clock for a SQLite file, the server's clock for PostgreSQL. ``read_only``: an
    existing store, to judge it: nothing is created or migrated, nothing written."""
    parsed = parse_store_url(url) if isinstance(url, str) else url
    if parsed.kind == "postgresql":
        require_driver(parsed)
        from failfirst.store.postgresql import PostgresStore

        return PostgresStore.open(parsed, clock, create=create, read_only=read_only)
    from failfirst.store.clock import RealClock, SimClock
    from failfirst.store.sqlite import Store

    if parsed.path == MEMORY:
        return Store.memory(clock or SimClock())
    return Store.open_file(parsed.path, clock or RealClock(), create=create, read_only=read_only)


def simulation_store(url: str | StoreURL | None, clock: Clock, *, owner_pid: int | None = None) -> Any:
    """A store for simulated runs, reused across runs (emptied by ``reset``): SQLite in
    memory (None, the default) or a private schema on a PostgreSQL server."""
    if url is None:
        from failfirst.store.sqlite import Store

        return Store.memory(clock)
    parsed = parse_store_url(url) if isinstance(url, str) else url
    if parsed.kind == "postgresql":
        require_driver(parsed)
        from failfirst.store.postgresql import PostgresStore

        return PostgresStore.simulation(parsed, clock, owner_pid=owner_pid)
    if parsed.path != MEMORY:
        raise StoreError(f"store URL {parsed.redacted}: a simulation runs on sqlite::memory: "
                         "or on postgresql://")
    from failfirst.store.sqlite import Store

    return Store.memory(clock)
