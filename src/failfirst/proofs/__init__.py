"""The proofs: invariant checkers, single runs judged by them, the explorer, and the
arguments built on it.

- :mod:`~failfirst.proofs.checkers`: INV_001..INV_007, judged from the history and
  the final store alone;
- :mod:`~failfirst.proofs.run`: one run of a scenario, simulated then judged
  (``run_scenario``, ``replay``, ``simulate``);
- :mod:`~failfirst.proofs.explorer`: exhaustive, random and PCT exploration of fault
  schedules, and shrinking to a minimal counterexample; beside it the searches
  (:mod:`~failfirst.proofs.search`), what they count (:mod:`~failfirst.proofs.tally`,
  :mod:`~failfirst.proofs.coverage`), the split over processes
  (:mod:`~failfirst.proofs.parallel`), PCT's bound (:mod:`~failfirst.proofs.pct`), the
  tree estimate (:mod:`~failfirst.proofs.estimate`), checkpoints
  (:mod:`~failfirst.proofs.checkpoint`), shrinking a schedule
  (:mod:`~failfirst.proofs.shrinking`) and over the scenario
  (:mod:`~failfirst.proofs.minimize`);
- :mod:`~failfirst.proofs.prove`: a non-vacuous proof (guardrail on) with its negative
  control (guardrail off), and a reproduction;
- :mod:`~failfirst.proofs.differential`: the same schedules on another store give the
  same histories; :mod:`~failfirst.proofs.refinement`: recovered states are states
  normal processing reaches.

Layer 3: imports :mod:`failfirst.store`, :mod:`failfirst.processor` and
:mod:`failfirst.sim`.
"""
