"""The task's own retry settings are the ones judged: read from a Celery task, a Dramatiq
actor, an RQ Retry, and applied by the simulated queue."""

from __future__ import annotations

import pytest
from tasks_fixtures import PAYMENTS, URL  # noqa: I001 (tests/ is on sys.path)

import failfirst
from failfirst.processor import backoff
from failfirst.tasks import task_spec


@pytest.fixture
def celery_app():
    from celery import Celery

    return Celery("frameworks", broker="memory://")


def test_celery_settings_are_read_from_the_task(celery_app):
    import httpx

    @celery_app.task(name="t.auto", autoretry_for=(httpx.HTTPError,), max_retries=2, retry_backoff=3,
                     retry_backoff_max=40, acks_late=True)
    def auto(order):
        return order

    @celery_app.task(name="t.manual", bind=True, default_retry_delay=7)
    def manual(self, order):
        return order

    spec = task_spec(auto)
    assert (spec.framework, spec.retry.max_attempts, spec.retry.backoff) == ("celery", 3, backoff.FULL_JITTER)
    assert (spec.retry.base_s, spec.retry.cap_s, spec.retry.redelivered) == (3.0, 40.0, True)
    assert spec.retry.retry_on(httpx.ConnectError("x")) and not spec.retry.retry_on(KeyError("x"))
    spec = task_spec(manual)
    assert (spec.retry.max_attempts, spec.retry.backoff, spec.retry.base_s) == (4, backoff.EXPONENTIAL, 7.0)
    assert spec.retry.redelivered is False  # Celery's default: acknowledged early


def test_celery_retries_run_through_the_task_and_stop_at_max_retries(celery_app):
    """A bound task that retries through self.retry(): the payments API always answers 503,
    so the job makes 1 + max_retries attempts and is dead-lettered; never more (INV_005)."""
    import httpx

    @celery_app.task(name="t.retrying", bind=True, max_retries=2, default_retry_delay=5, acks_late=True)
    def retrying(self, order):
        reply = httpx.post(URL, json={"order": order})
        if reply.status_code >= 500:
            raise self.retry(exc=RuntimeError(f"status {reply.status_code}"))
        return reply.json()["id"]

    down = PAYMENTS.scripted(**{"POST /v1/charges": ["error"] * 10})
    bounds = dict(services=[down], invariants=["INV_004", "INV_005", "INV_008"], max_faults=0)
    failfirst.prove(retrying, 1, **bounds)
    run = failfirst.prove(retrying, 1, replay_schedule="s1f0:", **bounds).result
    kinds = [e["kind"] for e in run.events]
    assert kinds.count("claim") == 3 and kinds.count("retry") == 2 and kinds.count("dead") == 1
    delays = [e["delay_s"] for e in run.events if e["kind"] == "retry"]
    assert delays == [5.0, 5.0]  # default_retry_delay, as the task says


def test_dramatiq_settings_are_read_from_the_actor():
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    dramatiq.set_broker(StubBroker())

    @dramatiq.actor(max_retries=4, min_backoff=1000, max_backoff=30000, throws=(KeyError,))
    def send(order):
        return order

    spec = task_spec(send)
    assert (spec.framework, spec.retry.max_attempts) == ("dramatiq", 5)
    assert spec.retry.backoff == backoff.EQUAL_JITTER
    assert (spec.retry.base_s, spec.retry.cap_s, spec.retry.redelivered) == (2.0, 30.0, True)
    assert not spec.retry.retry_on(KeyError("x")) and spec.retry.retry_on(ValueError("x"))


def test_rq_retry_is_given_with_the_call():
    from rq import Retry

    def job(order):
        return order

    spec = task_spec(job, retry=Retry(max=3, interval=[10, 30, 60]))
    assert (spec.framework, spec.retry.max_attempts, spec.retry.backoff) == ("rq", 4, backoff.EXPONENTIAL)
    assert (spec.retry.base_s, spec.retry.cap_s) == (10.0, 60.0)
    assert task_spec(job).framework == "function"


def test_a_dramatiq_actor_and_an_rq_function_run_unchanged_under_the_judge():
    import dramatiq
    from dramatiq.brokers.stub import StubBroker
    from rq import Retry
    from tasks_fixtures import charge, charge_with_key

    dramatiq.set_broker(StubBroker())
    naive_actor = dramatiq.actor(charge, actor_name="naive_charge", max_retries=2)
    keyed_actor = dramatiq.actor(charge_with_key, actor_name="keyed_charge", max_retries=2)
    with pytest.raises(failfirst.tasks.Falsified, match="payments applied 'charge' 2 times"):
        failfirst.prove(naive_actor, 1, services=[PAYMENTS], invariants=["INV_001"], max_faults=1)
    failfirst.prove(keyed_actor, 1, services=[PAYMENTS], invariants=["INV_001", "INV_004"], max_faults=1)
    with pytest.raises(failfirst.tasks.Falsified, match="payments applied 'charge' 2 times"):
        failfirst.prove(charge, 1, retry=Retry(max=2, interval=5), services=[PAYMENTS],
                        invariants=["INV_001"], max_faults=1)
