"""The shop's tasks under the judge: every fault schedule within the bounds."""

import pytest
from shop import tasks

import failfirst
from failfirst.tasks import Falsified, call

from .proofs import DATABASE, EMAIL, PAYMENTS


def test_the_naive_charge_charges_twice():
    """A worker that dies after the payments API charged and before the task marked the
    order paid: the job is delivered again, and the retry charges again."""
    with pytest.raises(Falsified) as failure:
        failfirst.prove(tasks.charge_order, 42, services=[PAYMENTS], database=DATABASE,
                        invariants=["INV_001"], max_faults=2)
    report = str(failure.value)
    assert "payments applied 'charge' 2 times" in report
    # Minimal: one crash, between the charge and the acknowledgement.
    assert "Minimal counterexample (1 fault)" in report
    assert "FAULT crash: w1 dies after the service applied the request" in report
    assert f"--failfirst-replay={failure.value.schedule}" in report


def test_the_fixed_charge_charges_once(failfirst_prove):
    proof = failfirst_prove(tasks.charge_order_fixed, 42, services=[PAYMENTS], database=DATABASE,
                            invariants=["INV_001", "INV_004"], max_faults=2)
    assert proof.exhaustive and proof.reached > 0


def test_the_receipt_goes_out_once_through_the_outbox():
    proof = failfirst.prove(calls=[call(tasks.charge_order_fixed, 42), call(tasks.send_receipt, 42)],
                            services=[PAYMENTS, EMAIL], database=DATABASE,
                            invariants=["INV_001", "INV_004"], max_faults=1)
    assert proof.exhaustive and proof.reached > 0
