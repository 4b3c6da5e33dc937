"""Real runs: worker processes on a real store (a SQLite file or PostgreSQL), faults
struck at them for real, and the verdict on what they left. One driver for every store
and every fault:

- :mod:`~failfirst.realrun.driver`: a run (claim the store, drive the fleet and the
  reaper, strike faults by progress or at a rate, judge) — ``failfirst stress``,
  ``failfirst resume``, ``make stress``, ``make stress-pg``, the benchmarks;
- :mod:`~failfirst.realrun.fleet`: the one place that starts worker processes, and
  the guarantees that none outlives its parent;
- :mod:`~failfirst.realrun.process`: one worker process (``python -m
  failfirst.realrun.process``), the worker loop driven by the store's clock;
- :mod:`~failfirst.realrun.faults`: the faults, plug-ins of one shape (SIGKILL, a
  terminated connection, a server crash, a partition, a pause);
- :mod:`~failfirst.realrun.verdict`: ``failfirst check`` and the judgement of every
  run, from one snapshot of the store;
- :mod:`~failfirst.realrun.ownership`: who holds a store (a live run is refused);
- :mod:`~failfirst.realrun.where`: how a run names its store.

Layer 4: imports :mod:`failfirst.store`, :mod:`failfirst.processor` and
:mod:`failfirst.proofs` (the checkers judge a real run as they judge a simulated one).
"""
