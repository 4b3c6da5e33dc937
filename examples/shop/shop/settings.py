"""Where the shop's services are: environment variables, as a deployed app reads them."""

import os

DATABASE = os.environ.get("SHOP_DATABASE", "shop.db")
PAYMENTS_URL = os.environ.get("SHOP_PAYMENTS_URL", "https://payments.example")
EMAIL_URL = os.environ.get("SHOP_EMAIL_URL", "https://email.example")
BROKER_URL = os.environ.get("SHOP_BROKER_URL", "redis://127.0.0.1:6379/0")
#: Keys the app's broker writes start with this (the machine's Redis is shared).
BROKER_PREFIX = os.environ.get("SHOP_BROKER_PREFIX", "shop:")
#: Redis redelivers a message not acknowledged within this many seconds.
VISIBILITY_TIMEOUT_S = float(os.environ.get("SHOP_VISIBILITY_TIMEOUT_S", "3600"))
