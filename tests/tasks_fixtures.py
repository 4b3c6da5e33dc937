"""Tasks for tests/test_tasks*.py: plain functions, a Celery app, a Dramatiq actor,
each calling a simulated payments API through httpx (importable by name, so a
subprocess can prove them too)."""

from __future__ import annotations

import sqlite3

import httpx

from failfirst.tasks import Service, SQLite

PAYMENTS = Service("https://payments.example", effects={"POST /v1/charges": "charge"})
URL = "https://payments.example/v1/charges"
#: What a crashed attempt's cleanup would write, if it ever ran.
CLEANUP_RAN: list[str] = []


def charge(order: int) -> str:
    reply = httpx.post(URL, json={"order": order})
    reply.raise_for_status()
    return reply.json()["id"]


def charge_with_key(order: int) -> str:
    reply = httpx.post(URL, json={"order": order}, headers={"Idempotency-Key": f"order-{order}"})
    reply.raise_for_status()
    return reply.json()["id"]


class Cleanup:
    def __enter__(self) -> Cleanup:
        return self

    def __exit__(self, *exc: object) -> None:
        CLEANUP_RAN.append("__exit__")


def charge_with_cleanup(order: int) -> str:
    """Naive, with cleanup after the call: a crash after it must run none of it."""
    client = httpx.Client()
    try:
        with Cleanup():
            reply = client.post(URL, json={"order": order})
            CLEANUP_RAN.append("after the call")
    finally:
        CLEANUP_RAN.append("finally")
        client.close()
    return reply.json()["id"]


def no_calls(order: int) -> int:
    return order


def undeclared_host(order: int) -> None:
    httpx.get("https://inventory.example/items")


# -- SQL: a table whose rows are effects ------------------------------------------------

SCHEMA = "CREATE TABLE receipts (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL);"


def connect() -> sqlite3.Connection:
    raise AssertionError("a proof replaces this seam")


def write_receipt(order: int) -> None:
    conn = connect()
    conn.execute("INSERT INTO receipts (order_id) VALUES (?)", (order,))
    conn.commit()


def write_receipt_then_charge(order: int) -> None:
    with connect() as conn:
        conn.execute("INSERT INTO receipts (order_id) VALUES (?)", (order,))
    charge_with_key(order)


DATABASE = SQLite(SCHEMA, connect=f"{__name__}:connect", effects={"receipts": "order_id"})
