"""The shop's tasks, written as people write Celery tasks."""

import httpx

from shop import db, settings
from shop.celery_app import app


@app.task(autoretry_for=(httpx.HTTPError,), max_retries=3, retry_backoff=True)
def charge_order(order_id: int) -> str:
    """Naive: charge, then mark the order paid. A worker that dies after the charge and
    before the commit leaves the order unpaid, and the retry charges it again."""
    with db.connect() as conn:
        (amount,) = conn.execute("SELECT amount_cents FROM orders WHERE id = ?", (order_id,)).fetchone()
    with httpx.Client(base_url=settings.PAYMENTS_URL, timeout=5.0) as payments:
        reply = payments.post("/v1/charges", json={"order": order_id, "amount_cents": amount})
        reply.raise_for_status()
    charge_id = reply.json()["id"]
    with db.connect() as conn:
        conn.execute("UPDATE orders SET paid = 1, charge_id = ? WHERE id = ?", (charge_id, order_id))
    return charge_id


@app.task(autoretry_for=(httpx.HTTPError,), max_retries=3, retry_backoff=True)
def charge_order_fixed(order_id: int) -> str:
    """Fixed: the charge carries an idempotency key derived from the order (the same on
    every attempt, so the provider charges once however often it is asked), and the
    order is marked paid together with the receipt's outbox row, in one transaction."""
    with db.connect() as conn:
        amount, paid, charge_id = conn.execute(
            "SELECT amount_cents, paid, charge_id FROM orders WHERE id = ?", (order_id,)).fetchone()
    if paid:
        return charge_id
    with httpx.Client(base_url=settings.PAYMENTS_URL, timeout=5.0) as payments:
        reply = payments.post("/v1/charges", json={"order": order_id, "amount_cents": amount},
                              headers={"Idempotency-Key": f"order-{order_id}"})
        reply.raise_for_status()
    charge_id = reply.json()["id"]
    with db.connect() as conn:
        conn.execute("UPDATE orders SET paid = 1, charge_id = ? WHERE id = ?", (charge_id, order_id))
        conn.execute("INSERT OR IGNORE INTO outbox (order_id, kind) VALUES (?, 'receipt')", (order_id,))
    return charge_id


@app.task(autoretry_for=(httpx.HTTPError, LookupError), max_retries=5, retry_backoff=True)
def send_receipt(order_id: int) -> bool:
    """The outbox's relay for one order: send the receipt the payment committed, with the
    outbox row's id as the email's idempotency key, then mark the row sent. Until the
    payment has committed there is nothing to send: LookupError, retried later."""
    with db.connect() as conn:
        row = conn.execute("SELECT o.id, o.sent, r.email FROM outbox o JOIN orders r ON r.id = o.order_id "
                           "WHERE o.order_id = ?", (order_id,)).fetchone()
    if row is None:
        raise LookupError(f"order {order_id}: no receipt in the outbox yet")
    outbox_id, sent, email = row
    if sent:
        return False
    with httpx.Client(base_url=settings.EMAIL_URL, timeout=5.0) as mail:
        mail.post("/send", json={"to": email, "template": "receipt", "order": order_id},
                  headers={"Idempotency-Key": f"outbox-{outbox_id}"}).raise_for_status()
    with db.connect() as conn:
        conn.execute("UPDATE outbox SET sent = 1 WHERE id = ?", (outbox_id,))
    return True
