"""A small shop: a Celery app whose tasks charge orders through a payments API (httpx)
and record them in SQLite. The worked example of failfirst's "Your own task" chapter:
``charge_order`` is the naive task, ``charge_order_fixed`` the fixed one, and
``send_receipt`` sends the receipt through an outbox."""
