"""A proof must not be vacuous: prove() refuses one that never reached the fault or
whose negative control finds nothing, and reproduce() refuses a scenario with no
counterexample."""

from __future__ import annotations

import dataclasses

import pytest

from failfirst.proofs.explorer import with_bounds
from failfirst.proofs.prove import ProofError, prove, reproduce
from failure_modes.FM_001_retry_duplication.scenario import SCENARIO

NO_FAULTS = with_bounds(dataclasses.replace(SCENARIO, jobs=SCENARIO.jobs[:1]), max_faults=0)


def test_a_proof_without_faults_is_refused_as_vacuous():
    with pytest.raises(ProofError) as raised:
        prove(NO_FAULTS)
    message = str(raised.value)
    assert "no schedule reached the fault" in message
    assert "guardrail off finds no violation" in message


def test_a_control_that_violates_only_other_invariants_is_refused():
    elsewhere = dataclasses.replace(with_bounds(SCENARIO, 1), jobs=SCENARIO.jobs[:1],
                                    invariants=("INV_005",))
    with pytest.raises(ProofError, match="none of the scenario's"):
        prove(elsewhere)


def test_reproduce_refuses_a_scenario_without_counterexample():
    with pytest.raises(ProofError, match="no schedule violates"):
        reproduce(NO_FAULTS)


def test_a_real_proof_and_reproduction_pass():
    small = dataclasses.replace(with_bounds(SCENARIO, 1), jobs=SCENARIO.jobs[:2])
    result = prove(small)
    assert result.proof.violating == 0 and result.control.violating > 0
    assert "INV_001" in {v["invariant"] for v in reproduce(small).violations}
