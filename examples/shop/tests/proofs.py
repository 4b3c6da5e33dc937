"""What the shop's proofs share: the services its tasks call and its database, as the
simulator stands them in (failfirst.tasks.Service, failfirst.tasks.SQLite)."""

from shop import db

from failfirst.tasks import Service, SQLite

#: The payments API: a POST to /v1/charges charges the card (once per job, or INV_001).
PAYMENTS = Service("https://payments.example", effects={"POST /v1/charges": "charge"})
#: The email API: a POST to /send sends an email.
EMAIL = Service("https://email.example", effects={"POST /send": "email"})
#: The shop's database, reached through shop.db.connect, with one order in it.
DATABASE = SQLite(db.SCHEMA, connect="shop.db:connect", effects={"outbox": "order_id"},
                  setup="INSERT INTO orders (id, email, amount_cents) VALUES (42, 'ada@example.com', 2599)")
