"""The deterministic simulation: scenarios, choice sources, the scheduler that
interleaves actors and injects faults at step boundaries, the simulated services
handlers call, and the histories runs leave.

- :mod:`~failfirst.sim.scenario`: what a failure mode's experiment is (jobs, workers,
  fault plan, guardrails, bounds);
- :mod:`~failfirst.sim.choices`: every decision of a run comes from one choice source
  (seeded random, replay, enumeration, Hypothesis);
- :mod:`~failfirst.sim.scheduler`: :class:`~failfirst.sim.scheduler.Simulation`, one run;
- :mod:`~failfirst.sim.reduction`: what each step read and wrote, and the sleep sets
  that skip reordered schedules (enforced at scheduling time, hence here, beside the
  scheduler; the proofs drive it);
- :mod:`~failfirst.sim.services` and :mod:`~failfirst.sim.service_recovery`: the
  simulated downstream services (a flaky dependency, a payment provider, a broker, a
  fenced resource) and their recovery;
- :mod:`~failfirst.sim.history`: canonical JSON and the digest of a run;
- :mod:`~failfirst.sim.catalogue`: failure-mode ids and their bundles;
  :mod:`~failfirst.sim.happy`: the scenario with no faults;
- :mod:`~failfirst.sim.sometimes`: "sometimes" assertions several scenarios share;
  :mod:`~failfirst.sim.drain`: one worker runs until it idles (recovery tests).

Layer 2: imports :mod:`failfirst.store` and :mod:`failfirst.processor`.
"""
