"""What every failure mode must show, in one place: a non-vacuous proof and a
reproducible counterexample.

A proof explores every schedule within the scenario's bounds with the guardrail
on and finds no violation; it is vacuous unless some schedules reached the fault
under study (``reached``) and the same exploration with the guardrail off finds a
violation of the scenario's invariants (the negative control). A reproduction is
the shrunk counterexample of the guardrail-off exploration, and replaying its
schedule must give the same history and the same violations.
"""

from __future__ import annotations

from dataclasses import dataclass

from failfirst.proofs.explorer import Counterexample, Exploration, explore
from failfirst.proofs.run import replay
from failfirst.sim.scenario import Scenario


class ProofError(AssertionError):
    """A proof or a reproduction that does not hold, with every reason."""


@dataclass(frozen=True)
class Proof:
    #: Guardrail on: every schedule within the bounds.
    proof: Exploration
    #: Guardrail off: the same bounds, up to the first violation.
    control: Exploration


def summary(proof: Exploration) -> str:
    """The proof in one line: its bounds, its reduction and what its schedules stand for."""
    b = proof.bounds
    reduction = {"full": "symmetry and sleep sets", "symmetry": "symmetry of idle workers",
                 "none": "none"}.get(proof.reduction, proof.reduction)
    cut = (f", and cut off {proof.sleep_blocked} paths that only reorder independent steps"
           if proof.sleep_blocked else "")
    return (f"{proof.fm} proof: bounds {b['workers']} workers, {b['jobs']} jobs, at most "
            f"{b['max_faults']} faults and {b['max_steps']} steps; reduction: {reduction}. "
            f"{proof.schedules} schedules explored{cut}: they stand for every schedule within "
            f"the bounds; {proof.reached} reached the fault, {proof.violating} violate an invariant.")


def prove(scenario: Scenario, *, workers: int = 1, show: bool = True) -> Proof:
    """Explore with the guardrail on and off; raise ProofError unless the proof is
    exhaustive, clean, reached the fault, and its negative control violates one of
    the scenario's invariants. ``show`` prints the proof's :func:`summary` (a chapter's
    proof cell shows it)."""
    proof = explore(scenario, guard=True, workers=workers)
    control = explore(scenario, guard=False, stop_at_first=True, shrink_counterexample=False)
    problems = []
    if not proof.exhaustive:
        problems.append("the exploration with the guardrail on was not exhaustive")
    if proof.violating:
        cx = proof.counterexample
        problems.append(f"{proof.violating} schedules violate an invariant with the guardrail on; "
                        f"the simplest: {cx.schedule if cx else '?'} {cx.violations if cx else ''}")
    if proof.reached == 0:
        problems.append("vacuous: no schedule reached the fault under study")
    if control.violating == 0:
        problems.append("vacuous: the same exploration with the guardrail off finds no violation")
    elif not set(scenario.invariants) & set(control.counterexample.result.invariants_violated):
        problems.append(f"the negative control violates {control.counterexample.result.invariants_violated},"
                        f" none of the scenario's {list(scenario.invariants)}")
    if problems:
        raise ProofError(f"{scenario.id}: " + "; ".join(problems))
    if show:
        print(summary(proof))
    return Proof(proof, control)


def reproduce(scenario: Scenario) -> Counterexample:
    """The minimal guardrail-off counterexample; raise ProofError unless it violates one
    of the scenario's invariants and its schedule replays to the same digest and
    violations."""
    found = explore(scenario, guard=False, stop_at_first=True)
    cx = found.counterexample
    if cx is None:
        raise ProofError(f"{scenario.id}: no schedule violates an invariant with the guardrail off")
    named = {v["invariant"] for v in cx.violations}
    if not named & set(scenario.invariants):
        raise ProofError(f"{scenario.id}: the counterexample violates {sorted(named)}, none of "
                         f"{list(scenario.invariants)}")
    again = replay(scenario, cx.schedule, guard=False)
    if again.digest != cx.digest or [v.to_json() for v in again.violations] != cx.violations:
        raise ProofError(f"{scenario.id}: replaying {cx.schedule} gave another history")
    return cx
