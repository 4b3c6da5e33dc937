"""The Celery app, configured as a deployment would be: Redis as the broker, late
acknowledgement (so a task whose worker dies is delivered again)."""

from celery import Celery

from shop import settings

app = Celery("shop", broker=settings.BROKER_URL, include=["shop.tasks"])
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={"global_keyprefix": settings.BROKER_PREFIX,
                              "visibility_timeout": settings.VISIBILITY_TIMEOUT_S,
                              # kombu 5.7 looks for abandoned messages every 10 x 10 s by
                              # default: a short visibility timeout alone does not bring a
                              # dead worker's task back sooner. Look every second.
                              "unacked_restore_interval": 1, "unacked_restore_throttle": 1},
    broker_connection_retry_on_startup=True,
)
