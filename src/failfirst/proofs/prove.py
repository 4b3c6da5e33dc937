"""What every failure mode must show, in one place: a non-vacuous proof and a
reproducible counterexample.

A proof explores every schedule within the scenario's bounds with the guardrail
on and finds no violation; it is vacuous unless some schedules reached the fault
under study (``reached``) and the same exploration with the guardrail off finds a
violation of the scenario's invariants (the negative control). It is also vacuous
in part when a fault point the scenario declares is never struck, or a state its
"sometimes" assertions name is never reached: every (point, kind) of the fault plan
must be struck by some explored schedule, with the guardrail on or — for a point
only the unguarded code has (the separate effect transaction the commit boundary
removes) — off, and every "sometimes" state reached on its side. A reproduction is
the shrunk counterexample of the guardrail-off exploration, and replaying its
schedule must give the same history and the same violations; shrunk over the
scenario too (:func:`failfirst.proofs.minimize.shrink_scenario`), it keeps only the
jobs and workers the violation needs, and its reproduction names them.
"""

from __future__ import annotations

from dataclasses import dataclass

from failfirst.proofs.explorer import Counterexample, Exploration, explore, with_bounds
from failfirst.proofs.minimize import shrink_scenario
from failfirst.proofs.run import replay
from failfirst.proofs.tally import Tally
from failfirst.proofs.words import bounds_in_words, plural
from failfirst.sim.scenario import Scenario


class ProofError(AssertionError):
    """A proof or a reproduction that does not hold, with every reason."""


@dataclass(frozen=True)
class Proof:
    #: Guardrail on: every schedule within the bounds.
    proof: Exploration
    #: Guardrail off: the same bounds, up to the first violation.
    control: Exploration
    #: Guardrail off, exhaustive, at the fewest faults that strike every point and reach
    #: every "sometimes" state the two above missed (None: they missed none).
    unguarded: Exploration | None = None


def summary(proof: Exploration, unguarded: Exploration | None = None,
            control: Exploration | None = None, reached_as: str = "reached the fault") -> str:
    """The proof in a few lines: its bounds, its reduction, what its schedules stand
    for, and its fault coverage. ``reached_as`` says what reaching the fault means for
    this failure mode (``"with a redelivery"``), after the count."""
    b = proof.bounds
    reduction = {"full": "symmetry and sleep sets", "symmetry": "symmetry of idle workers",
                 "none": "none"}.get(proof.reduction, proof.reduction)
    cut = (f", and cut off {proof.sleep_blocked} paths that only reorder independent steps"
           if proof.sleep_blocked else "")
    lines = [f"{proof.fm} proof: bounds {bounds_in_words(b)}; reduction: {reduction}. "
             f"{plural(proof.schedules, 'schedule')} explored "
             f"({plural(proof.distinct, 'distinct history', 'distinct histories')}){cut}: "
             f"they stand for every schedule within the bounds; {proof.reached:,} {reached_as}, "
             f"{proof.violating:,} violate an invariant."]
    struck = []
    for point, kinds in proof.coverage.items():
        for kind, n in kinds.items():
            if n:
                struck.append(f"{point}/{kind} {n}")
            elif unguarded is not None and unguarded.coverage.get(point, {}).get(kind):
                struck.append(f"{point}/{kind} only without the guardrail "
                              f"({unguarded.coverage[point][kind]} of {unguarded.schedules} "
                              f"schedules at {plural(unguarded.bounds['max_faults'], 'fault')})")
            elif control is not None and control.coverage.get(point, {}).get(kind):
                struck.append(f"{point}/{kind} only without the guardrail (by the negative control)")
            else:
                struck.append(f"{point}/{kind} NEVER")
    lines.append("Fault points struck (schedules): " + "; ".join(struck) + ".")
    if proof.sometimes:
        lines.append("Reached (schedules): " + "; ".join(f"{name} {n}" for name, n in proof.sometimes.items()
                                                         if n or unguarded is None)
                     + ".")
    return "\n".join(lines)


def _unguarded(scenario: Scenario, missing: set[tuple[str, str]], sometimes: set[str]) -> Exploration:
    """The guardrail-off exploration that strikes the ``missing`` points and reaches the
    ``sometimes`` states: exhaustive at 1 fault, then 2, ... up to the scenario's bound,
    stopping at the first bound where all of them are met (a point struck with fewer
    faults is struck within the bound too)."""
    def met(tally: Tally) -> bool:
        return (all(tally.coverage.get(pair) for pair in missing)
                and all(tally.sometimes.get(name) for name in sometimes))

    found = None
    for faults in range(1, scenario.faults.max_faults + 1):
        found = explore(with_bounds(scenario, faults), guard=False, shrink_counterexample=False)
        if met(_as_tally(found)):
            return found
    assert found is not None or scenario.faults.max_faults == 0
    return found if found is not None else explore(scenario, guard=False, shrink_counterexample=False)


def _as_tally(x: Exploration) -> Tally:
    tally = Tally(False)
    tally.coverage.update({(p, k): n for p, kinds in x.coverage.items() for k, n in kinds.items()})
    tally.sometimes.update(x.sometimes)
    return tally


def prove(scenario: Scenario, *, workers: int = 1, show: bool = True,
          reached_as: str = "reached the fault") -> Proof:
    """Explore with the guardrail on and off; raise ProofError unless the proof is
    exhaustive, clean, reached the fault, struck every fault point and reached every
    "sometimes" state, and its negative control violates one of the scenario's
    invariants. ``show`` prints the proof's :func:`summary` (a chapter's proof cell
    shows it, once), ``reached_as`` wording what reaching the fault means."""
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
    missed_on = [s.name for s in scenario.sometimes if s.guard and not proof.sometimes.get(s.name)]
    if missed_on:
        problems.append(f"never reached with the guardrail on at these bounds: {', '.join(missed_on)}")
    missing = set(proof.never_struck) & set(control.never_struck)
    off_states = {s.name for s in scenario.sometimes if not s.guard and not control.sometimes.get(s.name)}
    unguarded = _unguarded(scenario, missing, off_states) if missing or off_states else None
    if unguarded is not None:
        never = sorted(p for p in missing if not unguarded.coverage.get(p[0], {}).get(p[1]))
        if never:
            problems.append("never struck at these bounds, guardrail on or off: "
                            + ", ".join(f"{point}/{kind}" for point, kind in never))
        unreached = sorted(name for name in off_states if not unguarded.sometimes.get(name))
        if unreached:
            problems.append(f"never reached with the guardrail off: {', '.join(unreached)}")
    if problems:
        raise ProofError(f"{scenario.id}: " + "; ".join(problems))
    if show:
        print(summary(proof, unguarded, control, reached_as))
    return Proof(proof, control, unguarded)


def reproduce(scenario: Scenario) -> Counterexample:
    """The minimal guardrail-off counterexample; raise ProofError unless it violates one
    of the scenario's invariants and its schedule replays to the same digest and
    violations. Its ``reduced`` is the same violation with only the jobs and workers
    it needs, checked to replay the same way from its own reproduction."""
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
    assert cx.result is not None
    reduced = shrink_scenario(scenario, False, cx.result)
    again = replay(reduced.scenario, reduced.result.schedule, guard=False)
    if again.digest != reduced.result.digest:
        raise ProofError(f"{scenario.id}: replaying {reduced.replay_command()} gave another history")
    cx.reduced = reduced
    return cx
