"""The shop's database: one function hands out connections (the seam a test points
elsewhere), and the schema."""

import sqlite3

from shop import settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    paid INTEGER NOT NULL DEFAULT 0,
    charge_id TEXT
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0
);
"""


def connect() -> sqlite3.Connection:
    return sqlite3.connect(settings.DATABASE, timeout=5.0)


def create(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)
