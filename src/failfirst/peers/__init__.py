"""The crash experiment against the queues people run (``failfirst peers``).

One workload, a set of faults and one judge, applied to Celery, RQ, huey, Dramatiq,
procrastinate, pgqueuer and failfirst itself:

- :mod:`failfirst.peers.ledger`: the independent ledger every handler appends to
  (``started`` and ``finished`` rows, no uniqueness; the named points' rows) and the
  workload's handler, which holds at its point when the run targets it;
- :mod:`failfirst.peers.faults`: the faults as plug-ins, one per column of the matrix
  (the kill points ``kill@claimed``, ``kill@effect``, ``kill@backoff``,
  ``kill@prefetched``; more register themselves);
- :mod:`failfirst.peers.judge`: one category per job from the ledger and the
  system's public state, nothing else;
- :mod:`failfirst.peers.harness`: one run (enqueue, start the workers as their
  documentation says to run them, let the fault act, restart, wait for the quiet
  period, read each kill's struck point, judge) with every wait bounded and every
  child killed;
- one adapter module per system (``sys_*.py``): adding a system is adding an adapter;
- :mod:`failfirst.peers.matrix`: every configuration under every fault that applies,
  several seeds, ``results.json``.
"""
